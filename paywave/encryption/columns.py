"""Every encrypted column of every model, and what its stored values say about the keys.

The columns are found in the app registry by field class (paywave.encryption.fields.EncryptedField),
so a new encrypted field is rotated, reported and checked without being listed anywhere.
Everything here reads the stored text with SQL, never through the field (which would
decrypt): a stored value starts with `<key id>:` (paywave/encryption/crypto.py), which is what the
key-id index of each column holds.
"""

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.apps import AppConfig, apps
from django.db import connections, router, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Field, Model
from django.db.models.sql import Query

from paywave.encryption import crypto
from paywave.encryption.fields import EncryptedField, key_id_expression, key_id_index

# How the report and the check name values that carry no key id.
LEGACY = "no key id"  # a bare Fernet token, written before values carried key ids
PLAINTEXT = "not encrypted"  # not ciphertext at all


@dataclass(frozen=True)
class EncryptedColumn:
    model: type[Model]
    field: Field

    @property
    def label(self) -> str:
        return f"{self.model._meta.label}.{self.field.name}"

    @property
    def reads_plaintext(self) -> bool:
        assert isinstance(self.field, EncryptedField)  # encrypted_columns() keeps no other
        return self.field.reads_plaintext

    @property
    def table(self) -> str:
        return self.model._meta.db_table

    @property
    def connection(self) -> BaseDatabaseWrapper:
        return connections[router.db_for_write(self.model)]

    def has_key_id_index(self) -> bool:
        return any(
            index == key_id_index(self.field.name, name=index.name)
            for index in self.model._meta.indexes
        )

    def sql(self, template: str) -> str:
        """One of the templates below for this column: quoted names, the key-id expression."""
        quote = self.connection.ops.quote_name
        column, pk_column = self.field.column, self.model._meta.pk.column
        assert column is not None  # a concrete field of the model
        assert pk_column is not None
        return template.format(
            table=quote(self.table),
            column=quote(column),
            pk=quote(pk_column),
            prefix=self._key_id_sql(),
        )

    def _key_id_sql(self) -> str:
        """key_id_expression as Django writes it into the index (SUBSTRING on PostgreSQL,
        SUBSTR on SQLite), so the database matches the query with the index."""
        query = Query(self.model, alias_cols=False)
        compiler = query.get_compiler(connection=self.connection)
        expression = key_id_expression(self.field.name).resolve_expression(query)
        sql, params = compiler.compile(expression)
        return sql % tuple(int(param) for param in params)  # the two bounds, inlined


# SQL templates (EncryptedColumn.sql fills in the names); values are always parameters.
DISTINCT_PREFIXES = (
    "WITH RECURSIVE prefixes(prefix, n) AS ("
    " SELECT (SELECT {prefix} FROM {table} WHERE {prefix} > '' ORDER BY {prefix} LIMIT 1), 1"
    " UNION ALL"
    " SELECT (SELECT {prefix} FROM {table} WHERE {prefix} > prefixes.prefix"
    " ORDER BY {prefix} LIMIT 1), n + 1"
    " FROM prefixes WHERE prefixes.prefix IS NOT NULL AND n <= %s"
    ") SELECT prefix FROM prefixes WHERE prefix IS NOT NULL"
)
_WITH_PREFIX = "SELECT {column} FROM {table} WHERE {prefix} = %s LIMIT %s"
_USAGE = (
    "SELECT {prefix}, COUNT(*) FROM {table} WHERE {column} IS NOT NULL AND {column} <> ''"
    " GROUP BY {prefix}"
)
_TO_ROTATE = (
    "SELECT {pk}, {column} FROM {table} WHERE {column} IS NOT NULL AND {column} <> ''"
    " AND {prefix} <> %s ORDER BY {pk} LIMIT %s"
)
_TO_ROTATE_AFTER = _TO_ROTATE.replace("ORDER BY", "AND {pk} > %s ORDER BY")
_REWRITE = "UPDATE {table} SET {column} = %s WHERE {pk} = %s AND {column} = %s"


def encrypted_columns(app_configs: Iterable[AppConfig] | None = None) -> list[EncryptedColumn]:
    models = (
        apps.get_models()
        if app_configs is None
        else [model for config in app_configs for model in config.get_models()]
    )
    return [
        EncryptedColumn(model, field)
        for model in models
        if model._meta.managed and not model._meta.proxy
        for field in model._meta.local_concrete_fields
        if isinstance(field, EncryptedField)
    ]


def bucket_of(prefix: str) -> str:
    """The key id a stored value's first characters name, or LEGACY / PLAINTEXT."""
    kid = crypto.stored_key_id(prefix)
    if kid is not None:
        return kid
    return LEGACY if prefix.startswith(crypto.LEGACY_MARK) else PLAINTEXT


def distinct_prefixes(column: EncryptedColumn, *, at_most: int) -> list[str]:
    """The distinct first characters of the column's values, at most `at_most` + 1 of them.

    A loose scan of the key-id index: each step is one index probe for the next prefix
    greater than the last, so it costs (distinct prefixes + 1) probes, whatever the
    number of rows. Normally the prefixes are the key ids in use: one to three.
    """
    with column.connection.cursor() as cursor:
        cursor.execute(column.sql(DISTINCT_PREFIXES), [at_most])
        return [row[0] for row in cursor.fetchall()]


def values_with_prefix(column: EncryptedColumn, prefix: str, *, limit: int) -> list[str]:
    """Up to `limit` stored values that start with `prefix` (an index range, bounded)."""
    with column.connection.cursor() as cursor:
        cursor.execute(column.sql(_WITH_PREFIX), [prefix, limit])
        return [row[0] for row in cursor.fetchall()]


def key_usage(column: EncryptedColumn) -> Counter[str]:
    """How many values per key id (or LEGACY, PLAINTEXT): reads the whole column."""
    usage: Counter[str] = Counter()
    with column.connection.cursor() as cursor:
        cursor.execute(column.sql(_USAGE))
        for prefix, count in cursor.fetchall():
            usage[bucket_of(prefix)] += count
    return usage


@dataclass(frozen=True)
class Rotated:
    rewritten: int
    changed_meanwhile: int  # written by someone else between the read and the write


def column_rotate(column: EncryptedColumn, *, batch_size: int = 500) -> Rotated:
    """Re-encrypt every value of the column not under the newest key (so: restartable).

    Each value is written back only if it is still the one read (compare-and-set), so a
    value changed meanwhile is kept: whoever wrote it encrypted it with the newest key.
    """
    current_prefix = crypto.configured_key_ids()[0] + ":"
    rewritten = changed = 0
    last_pk: Any = None
    while True:
        with (
            transaction.atomic(using=column.connection.alias),
            column.connection.cursor() as cursor,
        ):
            if last_pk is None:
                cursor.execute(column.sql(_TO_ROTATE), [current_prefix, batch_size])
            else:
                cursor.execute(column.sql(_TO_ROTATE_AFTER), [current_prefix, last_pk, batch_size])
            rows = cursor.fetchall()
            for pk, stored in rows:
                cursor.execute(column.sql(_REWRITE), [_reencrypted(column, stored), pk, stored])
                rewritten += cursor.rowcount
                changed += 1 - cursor.rowcount
        if len(rows) < batch_size:
            return Rotated(rewritten=rewritten, changed_meanwhile=changed)
        last_pk = rows[-1][0]


def _reencrypted(column: EncryptedColumn, stored: str) -> str:
    if not crypto.is_ciphertext(stored) and column.reads_plaintext:
        return crypto.encrypt(stored)
    return crypto.reencrypt(stored)
