-- Monthly range partitioning of PayWave's append-mostly tables, with retention by
-- partition: the plan in docs/SCALING.md ("The plan: partitions"). Not applied to the
-- live schema; tests/test_partitioning.py runs it on copies of the real tables.
--
-- paywave_partitioned_like(source, target, key): a table `target` with source's
--   columns, defaults, identity, CHECK constraints and foreign keys, PARTITION BY RANGE
--   (key); its primary key is (id, key): PostgreSQL requires every unique constraint
--   of a partitioned table to include the partition key. Source's other indexes are
--   made on it (each partition gets its own); its unique ones that lack the key cannot
--   be, and are returned (what the model has to give up or widen).
-- paywave_month_partition_create(parent, month): the partition of the month that
--   `month` falls in, [first day, first day of the next month), named parent_yYYYYmMM.
-- paywave_partitions_retire(parent, keep_from): every partition wholly before
--   `keep_from` (a first of month, never later than the current month's) detached,
--   then dropped; the names dropped. In production, DETACH ... CONCURRENTLY (outside a
--   transaction) keeps inserts into the other partitions running while it waits.

CREATE OR REPLACE FUNCTION paywave_partitioned_like(source regclass, target text, key text)
RETURNS text[] LANGUAGE plpgsql AS $$
DECLARE
    index record;
    skipped text[] := '{}';
BEGIN
    EXECUTE format(
        'CREATE TABLE %I (LIKE %s INCLUDING DEFAULTS INCLUDING IDENTITY INCLUDING CONSTRAINTS)'
        ' PARTITION BY RANGE (%I)', target, source, key);
    EXECUTE format('ALTER TABLE %I ADD PRIMARY KEY (id, %I)', target, key);
    FOR index IN
        SELECT i.indexrelid::regclass AS name, i.indisunique AS is_unique,
               i.indisprimary AS is_primary, pg_get_indexdef(i.indexrelid) AS definition
        FROM pg_index i WHERE i.indrelid = source ORDER BY 1
    LOOP
        CONTINUE WHEN index.is_primary;
        IF index.is_unique THEN
            skipped := skipped || index.definition;
            CONTINUE;
        END IF;
        -- "CREATE INDEX name ON public.source USING ..." -> an unnamed index on target
        EXECUTE format('CREATE INDEX ON %I %s', target,
                       substring(index.definition FROM ' USING .*$'));
    END LOOP;
    -- Foreign keys out of a partitioned table are kept (into one, they need the key).
    FOR index IN
        SELECT pg_get_constraintdef(oid) AS definition FROM pg_constraint
        WHERE conrelid = source AND contype = 'f' ORDER BY conname
    LOOP
        EXECUTE format('ALTER TABLE %I ADD %s', target, index.definition);
    END LOOP;
    RETURN skipped;
END $$;

CREATE OR REPLACE FUNCTION paywave_month_partition_create(parent regclass, month date)
RETURNS regclass LANGUAGE plpgsql AS $$
DECLARE
    first date := date_trunc('month', month)::date;
    name text := format('%s_y%sm%s', parent::text, to_char(first, 'YYYY'), to_char(first, 'MM'));
BEGIN
    -- Months in UTC, whatever the session's time zone.
    EXECUTE format('CREATE TABLE IF NOT EXISTS %I PARTITION OF %s FOR VALUES FROM (%L) TO (%L)',
                   name, parent, first::timestamp AT TIME ZONE 'UTC',
                   (first + interval '1 month')::timestamp AT TIME ZONE 'UTC');
    RETURN name::regclass;
END $$;

CREATE OR REPLACE FUNCTION paywave_partitions_retire(parent regclass, keep_from date)
RETURNS text[] LANGUAGE plpgsql AS $$
DECLARE
    partition record;
    dropped text[] := '{}';
BEGIN
    IF keep_from > date_trunc('month', now() AT TIME ZONE 'UTC')::date THEN
        RAISE EXCEPTION 'keep_from % would drop the current month''s partition', keep_from;
    END IF;
    FOR partition IN
        SELECT c.oid::regclass AS name,
               (regexp_match(pg_get_expr(c.relpartbound, c.oid), 'TO \(''([^'']+)''\)'))[1]::timestamptz
                   AS upper_bound
        FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = parent ORDER BY 2
    LOOP
        CONTINUE WHEN partition.upper_bound IS NULL  -- a DEFAULT partition: never retired
                   OR partition.upper_bound > keep_from::timestamp AT TIME ZONE 'UTC';
        dropped := dropped || partition.name::text;
        EXECUTE format('ALTER TABLE %s DETACH PARTITION %s', parent, partition.name);
        EXECUTE format('DROP TABLE %s', partition.name);
    END LOOP;
    RETURN dropped;
END $$;
