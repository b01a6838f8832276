"""Django's PostgreSQL backend, its health check answered from the socket when it can be.

With CONN_HEALTH_CHECKS Django asks a kept connection `SELECT 1` before the first
statement of every request and every Celery task: one round trip, and about 50 us of the
process's CPU and some of PostgreSQL's, three times for each payment (its accept, its
charge, its webhook). A connection between requests is idle: the server sends it nothing
unless it is ending it (an administrator's or a shutdown's terminate, sent as an error,
then the close) or something rare (a notice). So a socket with nothing to read is usable
as it is; anything waiting there, or a transaction left open, gets Django's `SELECT 1`,
which reads it and answers as before.
"""

import select
from typing import Any

from django.db.backends.postgresql import base
from psycopg.pq import TransactionStatus


class DatabaseWrapper(base.DatabaseWrapper):
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
