"""Every index on PayWave's own tables is read by some query: none is the leading part of
another (the longer one serves every lookup the shorter would, and each index is written
by every INSERT and every UPDATE that is not HOT), and none is for prefix searches, which
no query makes (paywave.postgresql.schema)."""

from typing import Any

import pytest
from django.apps import apps
from django.db import connection

from paywave.postgresql.schema import foreign_key_indexes_dropped, prefix_search_indexes_dropped

pytestmark = [pytest.mark.services, pytest.mark.django_db]

OUR_APPS = ("payments", "paywave", "wallets", "notifications", "gateways")

_INDEXES = """
    SELECT t.relname, c.relname, string_to_array(i.indkey::text, ' ')::int[],
           i.indisunique, i.indpred IS NOT NULL OR i.indexprs IS NOT NULL,
           pg_get_indexdef(i.indexrelid)
    FROM pg_index i
    JOIN pg_class c ON c.oid = i.indexrelid
    JOIN pg_class t ON t.oid = i.indrelid
    WHERE t.relname = ANY(%s) AND t.relnamespace = current_schema()::regnamespace
"""


def _our_tables() -> list[str]:
    return [m._meta.db_table for m in apps.get_models() if m._meta.app_label in OUR_APPS]


def _indexes(tables: list[str]) -> list[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(_INDEXES, [tables])
        return cursor.fetchall()


def _column_number(table: str, column: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT attnum FROM pg_attribute WHERE attrelid = %s::regclass AND attname = %s",
            [table, column],
        )
        return cursor.fetchone()[0]


def test_no_index_is_the_leading_part_of_another() -> None:
    assert connection.vendor == "postgresql"  # with the services: never skipped on CI
    indexes = _indexes(_our_tables())
    plain = [row for row in indexes if not row[4] and "pattern_ops" not in row[5]]

    covered = [
        f"{table}: {name} ({columns}) is the start of {other}"
        for table, name, columns, unique, _, _ in plain
        if not unique
        for other_table, other, other_columns, _, _, _ in plain
        if other_table == table and other != name and other_columns[: len(columns)] == columns
    ]

    assert covered == []


def test_no_index_is_for_prefix_searches() -> None:
    indexes = _indexes(_our_tables())

    assert [f"{table}: {name}" for table, name, *_, sql in indexes if "pattern_ops" in sql] == []


@pytest.mark.django_db(transaction=True)  # CONCURRENTLY runs outside a transaction
def test_the_prefix_search_indexes_come_back_when_the_migration_is_reversed() -> None:
    operation = prefix_search_indexes_dropped("payments_payment")

    with connection.schema_editor(atomic=False) as editor:
        operation.reverse_code(apps, editor)
    restored = sorted(name for _, name, *_, sql in _indexes(["payments_payment"]) if "_ops" in sql)
    with connection.schema_editor(atomic=False) as editor:
        operation.code(apps, editor)

    assert [name.split("_", 2)[2].rsplit("_", 2)[0] for name in restored] == [
        "capture_reference",
        "gateway_reference",
        "payer_email_hash",
        "payer_tax_id_hash",
        "pix_txid",
    ]
    assert not [name for _, name, *_, sql in _indexes(["payments_payment"]) if "_ops" in sql]


@pytest.mark.django_db(transaction=True)
def test_the_foreign_keys_own_indexes_come_back_when_the_migration_is_reversed() -> None:
    operation = foreign_key_indexes_dropped(("payments", "payment", "client"))
    client_only = [_column_number("payments_payment", "client_id")]

    with connection.schema_editor(atomic=False) as editor:
        operation.reverse_code(apps, editor)
    restored = [
        name for _, name, columns, *_ in _indexes(["payments_payment"]) if columns == client_only
    ]
    with connection.schema_editor(atomic=False) as editor:
        operation.code(apps, editor)

    assert restored == ["payments_payment_client_id_fcbb7eb4"]  # the name Django gave it
    assert not [
        name for _, name, columns, *_ in _indexes(["payments_payment"]) if columns == client_only
    ]
