"""Django's PostgreSQL backend: its health check answered from the socket when it can be,
after an error one that also drops the connection's prepared statements, and times read
by psycopg's own loader.

With CONN_HEALTH_CHECKS Django asks a kept connection `SELECT 1` before the first
statement of every request and every Celery task: one round trip, and about 50 us of the
process's CPU and some of PostgreSQL's, three times for each payment (its accept, its
charge, its webhook). A connection between requests is idle: the server sends it nothing
unless it is ending it (an administrator's or a shutdown's terminate, sent as an error,
then the close) or something rare (a notice). So a connection checked less than
RECENT_SECONDS ago, idle, error-free and with nothing to read on its socket is usable as
it is, as PgBouncer reuses a server connection released moments ago without its check
query (`server_check_delay`). Anything else gets Django's `SELECT 1`, which reads what
is waiting and answers as before: a connection idle for longer (a failover or a NAT
dropping the flow answers only the next packet sent, with a reset), an error since, a
transaction left open.
"""

import datetime
import select
import time
from typing import Any

import psycopg
from django.db.backends.postgresql import base
from psycopg.abc import AdaptContext, Buffer
from psycopg.abc import Loader as AnyLoader
from psycopg.adapt import Loader
from psycopg.pq import Format, TransactionStatus

TIMESTAMPTZ_OID = psycopg.postgres.types["timestamptz"].oid
RECENT_SECONDS = 5.0


class DatabaseWrapper(base.DatabaseWrapper):
    _checked_at = float("-inf")  # when the connection was made or last found usable

    def get_new_connection(self, conn_params: dict[str, Any]) -> Any:
        connection = super().get_new_connection(conn_params)
        if self.timezone is datetime.UTC:  # USE_TZ, the database's TIME_ZONE unset
            connection.adapters.register_loader("timestamptz", UtcTimestampLoader)
        return connection

    def connect(self) -> None:
        super().connect()
        self._checked_at = time.monotonic()

    def is_usable(self) -> bool:
        connection: Any = self.connection
        if connection is None or connection.closed:
            return False
        now = time.monotonic()
        if (
            now - self._checked_at <= RECENT_SECONDS
            and not self.errors_occurred
            and connection.info.transaction_status == TransactionStatus.IDLE
            and not _has_input(connection.fileno())
        ):
            self._checked_at = now
            return True
        usable = self._forget_prepared() if self.errors_occurred else bool(super().is_usable())
        if usable:
            self._checked_at = now
        return usable

    def _forget_prepared(self) -> bool:
        """The check after an error: `DEALLOCATE ALL` instead of `SELECT 1`, a round trip
        all the same, which also drops the statements the connection prepared (psycopg
        forgets them too). A prepared statement whose result type changed under it (a
        migration altering a column it reads, from another connection) fails on every
        run, and psycopg keeps running it prepared: dropped, it is run afresh."""
        connection: Any = self.connection
        try:
            with connection.cursor() as cursor:
                cursor.execute("DEALLOCATE ALL")
        except psycopg.Error:
            return False
        return True


def _has_input(socket: int) -> bool:
    """Something to read on the socket, not waiting for it (poll: any descriptor's number)."""
    poller = select.poll()
    poller.register(socket, select.POLLIN)
    return bool(poller.poll(0))


class UtcTimestampLoader(Loader):
    """A `timestamptz` read as Django reads it in UTC, by psycopg's compiled loader.

    Django's loader (psycopg_any.BaseTzLoader) extends psycopg's pure-Python one to set
    the time zone it read in: about 3.5 us a value against 0.2, and a payment's reads
    load dozens. The session's time zone is UTC (Django sets it on connecting), in which
    psycopg's loader answers with `datetime.UTC` itself: the same value, object for
    object. `timezone` is what Django's cursor compares with its own.
    """

    timezone = datetime.UTC

    def __init__(self, oid: int, context: AdaptContext | None = None) -> None:
        super().__init__(oid, context)
        self._load = _PSYCOPG_TIMESTAMPTZ_LOADER(oid, context).load

    def load(self, data: Buffer) -> datetime.datetime:
        return self._load(data)


def _psycopg_timestamptz_loader() -> type[AnyLoader]:
    """psycopg's own text loader (compiled where psycopg_c is installed)."""
    loader = psycopg.adapters.get_loader(TIMESTAMPTZ_OID, Format.TEXT)
    assert loader is not None  # always registered by psycopg
    return loader


_PSYCOPG_TIMESTAMPTZ_LOADER = _psycopg_timestamptz_loader()  # found once, not per query
