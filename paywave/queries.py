"""Small query helpers shared by the apps."""

import functools
import threading
from typing import Any


def one_or_none(queryset: Any) -> Any:
    """The row a unique lookup finds, or None.

    `QuerySet.first()` orders by the model's ordering (or the primary key) to pick a
    first row; for a lookup by a unique key there is only one, so no ORDER BY is built
    or run.
    """
    found = list(queryset.order_by()[:1])
    return found[0] if found else None


def insert_parts(instance: Any, *, exclude: set[str]) -> tuple[list[str], list[str], list[Any]]:
    """What an INSERT of an unsaved instance writes, for SQL the ORM cannot build (one
    statement writing two tables): its quoted columns, one placeholder each, cast to the
    column's type (a VALUES list or a SELECT has no column to infer it from), and the
    values as the database takes them (encrypted fields encrypted). Fields in `exclude`
    (attnames) are left out; every other value must already be on the instance."""
    from django.db import connection

    model: Any = type(instance)
    fields, columns, placeholders = _insert_shape(model, frozenset(exclude), connection.alias)
    return (
        list(columns),
        list(placeholders),
        [field.get_db_prep_save(getattr(instance, field.attname), connection) for field in fields],
    )


@functools.cache
def _insert_shape(
    model: Any, exclude: frozenset[str], alias: str
) -> tuple[tuple[Any, ...], tuple[str, ...], tuple[str, ...]]:
    """A model's fields, quoted columns and cast placeholders on a connection: fixed for
    the life of the process (the models and the database do not change under it), and
    built on every payment change otherwise."""
    from django.db import connections

    connection = connections[alias]
    fields = tuple(f for f in model._meta.concrete_fields if f.attname not in exclude)
    return (
        fields,
        tuple(connection.ops.quote_name(field.column) for field in fields),
        tuple(f"CAST(%s AS {field.db_type(connection)})" for field in fields),
    )


def insert_row(instance: Any) -> None:
    """`instance.save(force_insert=True)`, in one INSERT whose text is built once per model
    and connection: Model.save builds and compiles its INSERT on every call, a few percent
    of an accept's or a charge's CPU for each row it writes.

    Each field's pre_save runs as save runs it (auto_now_add fills created_at); a key the
    database assigns is read back (RETURNING), a key with a default (a UUID) is written as
    the instance has it. A model someone listens to (pre_save or post_save receivers), or
    a database other than PostgreSQL, is saved by save() itself.
    """
    from django.db import connection, transaction
    from django.db.models.signals import post_save, pre_save

    model: Any = type(instance)
    if (
        connection.vendor != "postgresql"
        or pre_save.has_listeners(model)
        or post_save.has_listeners(model)
    ):
        instance.save(force_insert=True)
        return
    pk = model._meta.pk
    returning = bool(pk.db_returning)
    if returning:
        assert getattr(instance, pk.attname) is None, "an unsaved instance"
    fields, _, _ = _insert_shape(model, _returned(model), connection.alias)
    values = [
        field.get_db_prep_save(field.pre_save(instance, True), connection) for field in fields
    ]
    # As Model.save: a failed statement marks the caller's atomic block for rollback.
    with transaction.mark_for_rollback_on_error(connection.alias), connection.cursor() as cursor:
        cursor.execute(_insert_sql(model, connection.alias), values)
        if returning:
            (key,) = cursor.fetchone()
            setattr(instance, pk.attname, key)
    instance._state.adding = False
    instance._state.db = connection.alias


def _returned(model: Any) -> frozenset[str]:
    """The columns an INSERT leaves to the database: a key it assigns."""
    pk = model._meta.pk
    return frozenset({pk.attname}) if pk.db_returning else frozenset()


@functools.cache
def _insert_sql(model: Any, alias: str) -> str:
    from django.db import connections

    pk = model._meta.pk
    _, columns, _ = _insert_shape(model, _returned(model), alias)
    quote = connections[alias].ops.quote_name
    returning = f" RETURNING {quote(pk.column)}" if pk.db_returning else ""
    # Only the model's table and column names are in the text; every value is a parameter.
    return (
        f"INSERT INTO {quote(model._meta.db_table)} ({', '.join(columns)}) "  # noqa: S608
        f"VALUES ({', '.join(['%s'] * len(columns))}){returning}"
    )


def update_sql(queryset: Any, values: dict[str, Any]) -> tuple[str, tuple[Any, ...]]:
    """The UPDATE `queryset.update(**values)` would run, as SQL and parameters."""
    from django.db.models.sql import UpdateQuery

    query = queryset.query.chain(UpdateQuery)
    query.add_update_values(values)
    sql, params = query.get_compiler(queryset.db).as_sql()
    return sql, tuple(params)


def exact_value(field: Any, value: Any, connection: Any) -> Any:
    """`value` as an exact lookup on `field` passes it to the database."""
    return field.get_db_prep_value(field.get_prep_value(value), connection, prepared=True)


def update_parts(
    model: Any, *, where: dict[str, Any], values: dict[str, Any]
) -> tuple[str, tuple[Any, ...]]:
    """The UPDATE `model.objects.filter(**where).update(**values)` runs, as SQL and
    parameters, its text built once per shape (the fields set, the fields matched, which
    matches are IS NULL) and connection: the ORM builds and compiles it on every call, a few
    percent of a charge for each row it changes.

    `where` matches exact values (None: IS NULL), prepared as an exact lookup prepares them;
    `values` are prepared as the ORM saves them (encrypted fields encrypted). A value that
    is an expression (F("version") + 1) or a model instance is left to the ORM's compiler.
    What the ORM would read otherwise is refused (ValueError, FieldDoesNotExist): a lookup
    (`status__in`), a match on a JSON field (JSON, not SQL, equality), nothing to set.
    """
    from django.db import connection

    given = (*where.values(), *values.values())
    if any(hasattr(value, "resolve_expression") or hasattr(value, "_meta") for value in given):
        return update_sql(model._default_manager.filter(**where), values)
    shape = (tuple(values), tuple((name, where[name] is None) for name in where))
    sql, set_fields, where_fields = _update_shape(model, shape, connection.alias)
    params = [
        field.get_db_prep_save(values[name], connection)
        for name, field in zip(values, set_fields, strict=True)
    ]
    params += [
        exact_value(field, where[name], connection)
        for name, field in zip(where, where_fields, strict=True)
        if where[name] is not None
    ]
    return sql, tuple(params)


def update_rows(model: Any, *, where: dict[str, Any], values: dict[str, Any]) -> int:
    """`model.objects.filter(**where).update(**values)` through `update_parts`: the rows
    changed."""
    from django.db import connection, transaction

    sql, params = update_parts(model, where=where, values=values)
    # As QuerySet.update: a failed statement marks the caller's atomic block for rollback.
    with transaction.mark_for_rollback_on_error(connection.alias), connection.cursor() as cursor:
        cursor.execute(sql, params)
        return int(cursor.rowcount)


@functools.cache
def _update_shape(
    model: Any, shape: tuple[tuple[str, ...], tuple[tuple[str, bool], ...]], alias: str
) -> tuple[str, tuple[Any, ...], tuple[Any, ...]]:
    from django.db import connections
    from django.db.models import JSONField

    if model._meta.parents or not shape[0]:
        raise ValueError("nothing to set, or a model with parent tables: the ORM's update")
    quote = connections[alias].ops.quote_name
    set_names, matches = shape

    def field_of(name: str) -> Any:
        field = model._meta.pk if name == "pk" else model._meta.get_field(name)
        if not field.concrete or field.many_to_many:
            raise ValueError(f"{model.__name__}.{name} is not a column")
        return field

    set_fields = tuple(field_of(name) for name in set_names)
    where_fields = tuple(field_of(name) for name, _ in matches)
    if any(isinstance(field, JSONField) for field in where_fields):
        raise ValueError("a JSON field is matched by JSON equality: the ORM's update")
    table = quote(model._meta.db_table)
    assignments = ", ".join(f"{quote(field.column)} = %s" for field in set_fields)
    conditions = " AND ".join(
        f"{table}.{quote(field.column)} {'IS NULL' if is_null else '= %s'}"
        for field, (_, is_null) in zip(where_fields, matches, strict=True)
    )
    # Only the model's table and column names are in the text; every value is a parameter.
    sql = f"UPDATE {table} SET {assignments} WHERE {conditions or 'TRUE'}"  # noqa: S608
    return sql, set_fields, where_fields


class ReadShape:
    """A read of at most one row by exact values, for `compiled_read`: the queryset built
    with a stand-in value (a mark) for each value a run fills in, sliced to one row.

        PAYMENT_BY_ID = ReadShape(Payment.objects.filter(pk=MARK).order_by()[:1], pk=MARK)
        compiled_read(PAYMENT_BY_ID).run(pk=payment_id)   # the Payment, or None
    """

    def __init__(self, queryset: Any, **marks: Any) -> None:
        self.queryset = queryset
        self.marks = marks


class CompiledRead:
    """A ReadShape compiled to SQL once per database connection, and how the ORM turns its
    row into objects, kept: compiling a read on every run is most of its CPU (building the
    select list, quoting each column), several percent of a charge or a delivery.

    A run executes the SQL with its values in place of the marks', then builds the model,
    its `select_related` objects and annotations as Django's ModelIterable does
    (Model.from_db, the fields' converters: encrypted fields are decrypted by their
    from_db_value). Values are prepared as an exact lookup prepares them, so a value the
    ORM refuses (a UUID field given "x") is refused the same way."""

    def __init__(self, shape: ReadShape, database: Any, db: str) -> None:
        from django.db.models.query import get_related_populators

        queryset = shape.queryset
        self.model = queryset.model
        compiler: Any = queryset.query.get_compiler(connection=database)
        self.sql, params = compiler.as_sql()
        self.params = list(params)
        self.database = database
        self.slots: dict[str, tuple[Any, int]] = {}
        for name, mark in shape.marks.items():
            field = self.model._meta.pk if name == "pk" else self.model._meta.get_field(name)
            marked = exact_value(field, mark, self.database)
            found = [i for i, param in enumerate(self.params) if param == marked]
            assert len(found) == 1, (name, found)  # the mark must stand out among the values
            self.slots[name] = (field, found[0])
        select, klass_info = compiler.select, compiler.klass_info  # filled by as_sql
        # What ModelIterable reads besides these (extra ordering columns, composite keys,
        # known related objects) a compiled read has none of.
        assert not compiler.has_extra_select
        assert compiler.col_count == len(select)
        columns = [column[0] for column in select]
        assert not compiler.has_composite_fields(columns)
        assert not queryset._known_related_objects
        self.compiler = compiler
        self.converters = compiler.get_converters(columns)
        fields = klass_info["select_fields"]
        self.model_columns = slice(fields[0], fields[-1] + 1)
        self.init_list = [column[0].target.attname for column in select[self.model_columns]]
        # Django 5.2's signature (the stubs are 6.0's, which adds the queryset's fetch_mode).
        self.related_populators = get_related_populators(  # type: ignore[call-arg]
            klass_info, select, db
        )
        self.annotation_col_map = dict(compiler.annotation_col_map or {})
        self.db = db

    def run(self, **values: Any) -> Any:
        """The row's model instance, or None; every mark's value must be given."""
        params = list(self.params)
        assert values.keys() == self.slots.keys(), values.keys()
        for name, value in values.items():
            field, position = self.slots[name]
            params[position] = exact_value(field, value, self.database)
        with self.database.cursor() as cursor:
            cursor.execute(self.sql, params)
            row = cursor.fetchone()
        if row is None:
            return None
        if self.converters:
            row = next(self.compiler.apply_converters([row], self.converters))
        instance = self.model.from_db(self.db, self.init_list, row[self.model_columns])
        for populator in self.related_populators:
            populator.populate(row, instance)
        for name, position in self.annotation_col_map.items():
            setattr(instance, name, row[position])
        return instance


class _ThreadReads(threading.local):
    """A thread's compiled reads, by shape and database alias: a connection is its
    thread's own, and so are the converters bound to it. Kept per thread rather than in a
    mapping keyed by connection, whose entries (they hold their connection) would outlive
    their threads."""

    def __init__(self) -> None:
        self.by_shape: dict[tuple[int, str], CompiledRead] = {}


_compiled_reads = _ThreadReads()
# Compiling runs the ORM's compiler over the shape's one queryset, which it changes as
# it goes (alias reference counts, put back at the end): two threads compiling it at
# once can leave a table out of each other's SQL.
_compiling = threading.Lock()


def compiled_read(shape: ReadShape) -> CompiledRead:
    """This thread's read of `shape`, compiled for the connection it reads the model with."""
    from django.db import connections, router

    db = router.db_for_read(shape.queryset.model)
    database = connections[db]
    key = (id(shape), db)  # shapes are module constants: their ids are never reused
    read = _compiled_reads.by_shape.get(key)
    if read is None or read.database is not database:
        with _compiling:
            read = _compiled_reads.by_shape[key] = CompiledRead(shape, database, db)
    return read
