"""paywave.postgresql: a kept connection used moments ago is checked from its socket, not
with `SELECT 1`; one the server ended is still found out and replaced, and one idle for
longer, or after an error, gets the round trip."""

import datetime
import os
import select
import socket
import time
from typing import Any
from unittest.mock import patch

import psycopg
import pytest
from django.conf import settings
from django.db import close_old_connections, connection, connections

from paywave.postgresql.base import RECENT_SECONDS, DatabaseWrapper, _has_input

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _postgresql_only() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL's backend")


def _backend_pid() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return int(cursor.fetchone()[0])


def _statements_sent_by(kept: Any) -> Any:
    return patch.object(kept, "cursor", wraps=kept.cursor)


def test_postgresql_runs_on_the_backend_with_the_socket_check() -> None:
    assert settings.DATABASES["default"]["ENGINE"] == "paywave.postgresql"
    assert settings.DATABASES["default"]["CONN_HEALTH_CHECKS"] is True
    assert isinstance(connections["default"], DatabaseWrapper)


def test_an_idle_kept_connection_is_checked_without_a_round_trip() -> None:
    pid = _backend_pid()
    kept = connection.connection
    close_old_connections()  # a request or a task starts: its first statement checks

    with _statements_sent_by(kept) as cursor:
        connection.close_if_health_check_failed()

    assert cursor.call_count == 0
    assert connection.health_check_done
    assert connection.connection is kept
    assert _backend_pid() == pid


def test_a_connection_the_server_ended_is_replaced_before_the_first_statement() -> None:
    pid = _backend_pid()
    kept = connection.connection
    with psycopg.connect(_dsn(), autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [pid])
    _wait_until_readable(kept.fileno())
    close_old_connections()

    assert _backend_pid() != pid  # checked, found ended, closed, connected again
    assert connection.connection is not kept


def test_something_waiting_on_the_socket_gets_the_round_trip() -> None:
    connection.ensure_connection()
    kept = connection.connection
    close_old_connections()

    with (
        patch("paywave.postgresql.base._has_input", return_value=True),
        _statements_sent_by(kept) as cursor,
    ):
        connection.close_if_health_check_failed()

    assert cursor.call_count == 1  # Django's SELECT 1, which reads it
    assert connection.connection is kept


def test_a_connection_idle_for_longer_gets_the_round_trip() -> None:
    """A failover, or a NAT that dropped the flow, answers only the next packet sent."""
    connection.ensure_connection()
    kept = connection.connection
    close_old_connections()
    connections["default"]._checked_at -= RECENT_SECONDS + 1

    with _statements_sent_by(kept) as cursor:
        connection.close_if_health_check_failed()
    with _statements_sent_by(kept) as again:  # found usable just now: recent again
        connection.health_check_done = False
        connection.close_if_health_check_failed()

    assert (cursor.call_count, again.call_count) == (1, 0)
    assert connection.connection is kept


def test_a_connection_that_had_an_error_gets_the_round_trip() -> None:
    connection.ensure_connection()
    kept = connection.connection
    connection.errors_occurred = True

    with _statements_sent_by(kept) as cursor:
        close_old_connections()  # Django checks it at once: is_usable()

    assert cursor.call_count == 1
    assert connection.connection is kept
    assert not connection.errors_occurred


def test_the_socket_check_takes_any_descriptor_number() -> None:
    """select() refuses descriptors from 1024 on; a busy process has such sockets."""
    ours, theirs = socket.socketpair()
    high = 1500
    try:
        os.dup2(ours.fileno(), high)
        quiet = _has_input(high)
        theirs.sendall(b"E")
        waiting = _has_input(high)
    finally:
        os.close(high)
        ours.close()
        theirs.close()

    assert (quiet, waiting) == (False, True)


def test_a_transaction_left_open_gets_the_round_trip() -> None:
    connection.ensure_connection()
    kept = connection.connection
    kept.execute("BEGIN")
    close_old_connections()
    try:
        with _statements_sent_by(kept) as cursor:
            assert connection.is_usable()
        assert cursor.call_count == 1
    finally:
        kept.execute("ROLLBACK")


def _dsn() -> str:
    params = connection.get_connection_params()
    keys = ("host", "port", "user", "password", "dbname")
    return " ".join(f"{key}={params[key]}" for key in keys if params.get(key))


def _wait_until_readable(socket: int, seconds: float = 5) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if select.select([socket], [], [], 0.05)[0]:
            return
    raise AssertionError("the server's end of the connection never arrived")


TIMES_SQL = """
SELECT t FROM unnest(ARRAY[
    '2026-12-06 17:26:40.123456+00', '1970-01-01 00:00:00+00', '2000-02-29 23:59:59.999999+00',
    '0001-01-01 00:00:00+00', '9999-12-31 23:59:59.999999+00', '2026-12-06 14:26:40-03',
    '2026-06-01 12:00:00.5+05:30', NULL
]::timestamptz[]) AS t
"""


def test_times_are_read_by_psycopgs_compiled_loader_as_django_reads_them() -> None:
    from django.db.backends.postgresql.psycopg_any import register_tzloader

    from paywave.postgresql.base import UtcTimestampLoader

    with connection.cursor() as cursor:
        loader = cursor.cursor.adapters.get_loader(1184, psycopg.pq.Format.TEXT)
        cursor.execute(TIMES_SQL)
        ours = [row[0] for row in cursor.fetchall()]
    with connection.cursor() as cursor:
        register_tzloader(connection.timezone, cursor.cursor)  # Django's own, on this cursor
        cursor.execute(TIMES_SQL)
        djangos = [row[0] for row in cursor.fetchall()]

    assert loader is UtcTimestampLoader
    assert ours == djangos
    assert [t.tzinfo for t in ours if t] == [t.tzinfo for t in djangos if t]
    assert all(t.tzinfo is datetime.UTC for t in ours if t)
    assert ours[0] == datetime.datetime(2026, 12, 6, 17, 26, 40, 123456, tzinfo=datetime.UTC)


def test_a_database_in_another_time_zone_keeps_djangos_loader() -> None:
    from django.db.backends.postgresql.psycopg_any import BaseTzLoader

    other = DatabaseWrapper({**connection.settings_dict, "TIME_ZONE": "America/Sao_Paulo"})
    try:
        other.ensure_connection()
        loader = other.connection.adapters.get_loader(1184, psycopg.pq.Format.TEXT)
    finally:
        other.close()

    assert issubclass(loader, BaseTzLoader)
