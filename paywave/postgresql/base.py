"""Django's PostgreSQL backend: its health check answered from the socket when it can be,
and times read by psycopg's own loader.

With CONN_HEALTH_CHECKS Django asks a kept connection `SELECT 1` before the first
statement of every request and every Celery task: one round trip, and about 50 us of the
process's CPU and some of PostgreSQL's, three times for each payment (its accept, its
charge, its webhook). A connection between requests is idle: the server sends it nothing
unless it is ending it (an administrator's or a shutdown's terminate, sent as an error,
then the close) or something rare (a notice). So a socket with nothing to read is usable
as it is; anything waiting there, or a transaction left open, gets Django's `SELECT 1`,
which reads it and answers as before.
"""

import datetime
import select
from typing import Any

import psycopg
from django.db.backends.postgresql import base
from psycopg.abc import AdaptContext, Buffer
from psycopg.adapt import Loader
from psycopg.pq import Format, TransactionStatus

TIMESTAMPTZ_OID = psycopg.postgres.types["timestamptz"].oid


class DatabaseWrapper(base.DatabaseWrapper):
    def get_new_connection(self, conn_params: dict[str, Any]) -> Any:
        connection = super().get_new_connection(conn_params)
        if self.timezone is datetime.UTC:  # USE_TZ, the database's TIME_ZONE unset
            connection.adapters.register_loader("timestamptz", UtcTimestampLoader)
        return connection

    def is_usable(self) -> bool:
        connection: Any = self.connection
        if connection is None or connection.closed:
            return False
        if connection.info.transaction_status == TransactionStatus.IDLE and not _has_input(
            connection.fileno()
        ):
            return True
        return bool(super().is_usable())


def _has_input(socket: int) -> bool:
    readable, _, _ = select.select([socket], [], [], 0)
    return bool(readable)


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
        compiled = psycopg.adapters.get_loader(TIMESTAMPTZ_OID, Format.TEXT)
        assert compiled is not None  # psycopg's own, always registered
        self._load = compiled(oid, context).load

    def load(self, data: Buffer) -> datetime.datetime:
        return self._load(data)
