"""On PostgreSQL a statement's values travel apart from its text, and a statement a
connection runs again and again is prepared once: PostgreSQL parses and plans it once
per connection. DATABASE_PREPARED_STATEMENTS=false keeps the values apart but prepares
nothing (a pooler that cannot keep prepared statements). A prepared statement whose
table changed under it fails once, not until its connection is replaced."""

import uuid
from collections.abc import Iterator

import psycopg
import pytest
from django.db import NotSupportedError, connection

from config.settings.base import _postgresql_statements
from payments.models import Payment
from tests.helpers import prepared_statements

pytestmark = [pytest.mark.services, pytest.mark.django_db]

# psycopg prepares a statement the fifth time a connection runs it.
RUNS = 6


@pytest.fixture(autouse=True)
def _postgresql_only() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL's backend")


def test_a_statement_run_again_and_again_is_prepared_with_its_values_apart() -> None:
    for _ in range(RUNS):
        assert Payment.objects.filter(pk=uuid.uuid4()).first() is None

    prepared = [text for text in prepared_statements() if "payments_payment" in text]

    assert len(prepared) == 1
    assert '"payments_payment"."id" = $1' in prepared[0]


def test_a_statement_is_prepared_only_once_it_repeats() -> None:
    text = "SELECT %s::integer + 424242"  # run nowhere else
    prepared_after = []
    for run in range(RUNS):
        with connection.cursor() as cursor:
            cursor.execute(text, [run])
            assert cursor.fetchone() == (run + 424242,)
        prepared_after.append("$1::integer + 424242" in " ".join(prepared_statements()))

    assert prepared_after[:4] == [False] * 4
    assert prepared_after[-1] is True


@pytest.mark.parametrize(
    ("value", "threshold"), [("", 5), ("true", 5), ("false", None), ("0", None)]
)
def test_prepared_statements_can_be_turned_off(
    monkeypatch: pytest.MonkeyPatch, value: str, threshold: int | None
) -> None:
    monkeypatch.setenv("DATABASE_PREPARED_STATEMENTS", value)

    assert _postgresql_statements() == {
        "server_side_binding": True,
        "prepare_threshold": threshold,
    }


@pytest.fixture
def probe_table() -> Iterator[psycopg.Connection]:
    """A table of the test database, and another connection to it (a migration's)."""
    database = connection.settings_dict
    other = psycopg.connect(
        host=database["HOST"] or None,
        port=database["PORT"] or None,
        user=database["USER"] or None,
        dbname=database["NAME"],
        autocommit=True,
    )
    other.execute("CREATE TABLE prepared_probe (id integer PRIMARY KEY, name varchar(10))")
    other.execute("INSERT INTO prepared_probe VALUES (1, 'ana')")
    try:
        yield other
    finally:
        other.execute("DROP TABLE prepared_probe")
        other.close()


def _probe_names() -> list[tuple[str]]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT name FROM prepared_probe WHERE id = %s", [1])
        return cursor.fetchall()


@pytest.mark.django_db(transaction=True)
def test_a_statement_whose_column_changed_type_runs_afresh_after_the_check(
    probe_table: psycopg.Connection,
) -> None:
    for _ in range(RUNS):
        assert _probe_names() == [("ana",)]
    probe_table.execute("ALTER TABLE prepared_probe ALTER COLUMN name TYPE text")

    for _ in range(2):  # prepared, it fails on every run on this connection
        with pytest.raises(NotSupportedError, match="cached plan must not change result type"):
            _probe_names()
    connection.close_if_unusable_or_obsolete()  # at the end of a request or a task

    assert _probe_names() == [("ana",)]
    assert connection.connection is not None
