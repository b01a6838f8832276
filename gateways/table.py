"""The gateway table as the charging path reads it: cached, and forgotten on every write.

Routing reads the table at every charging step; it changes when staff edit a gateway.
The cache (Django's, Redis with REDIS_URL) holds the rows under a generation that every
write replaces, at once and again when the write commits: a reader that read the rows
before a write stores them under the generation it started with, which no reader asks
for again. If the cache fails, the table is read from the database; a write while it is
unreachable cannot replace the generation, so a table stored before may be served until
it expires (PAYWAVE_GATEWAY_TABLE_CACHE_SECONDS).

Each process also keeps the last table it read from the cache, under its generation:
a step then reads only the generation (one GET) while nobody writes a gateway. The copy
is dropped when the generation changes, and is used at most LOCAL_SECONDS after it was
read, so an entry served past its expiry is served LOCAL_SECONDS longer at most.
"""

import logging
import time
import uuid
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.cache import cache

from .models import Gateway
from .table_generation import GENERATION_KEY

logger = logging.getLogger(__name__)

_FIELDS = [field.attname for field in Gateway._meta.concrete_fields]
_DATETIMES = {"created_at", "updated_at"}
LOCAL_SECONDS = 30.0

# (generation, monotonic time it was read, each row's values): this process's copy.
_local: tuple[str, float, list[list[Any]]] | None = None


def gateway_table() -> list[Gateway]:
    """Every gateway, enabled or not, by priority then code."""
    global _local
    try:
        generation = cache.get(GENERATION_KEY)
        if generation is None:
            generation = uuid.uuid4().hex
            cache.add(GENERATION_KEY, generation, timeout=None)
            generation = cache.get(GENERATION_KEY, generation)
        held = _local
        if held and held[0] == generation and time.monotonic() - held[1] < LOCAL_SECONDS:
            return [_gateway(values) for values in held[2]]
        rows = cache.get(_table_key(generation))
        if rows is not None:
            table = [_values(row) for row in rows]
            _local = (generation, time.monotonic(), table)
            return [_gateway(values) for values in table]
    except Exception:  # a cache outage must never stop charging
        logger.warning("gateway table cache unavailable; reading the database", exc_info=True)
        return _read()
    gateways = _read()
    try:
        cache.set(
            _table_key(generation),
            [_row(gateway) for gateway in gateways],
            timeout=settings.PAYWAVE_GATEWAY_TABLE_CACHE_SECONDS,
        )
    except Exception:
        logger.warning("gateway table cache unavailable; not stored", exc_info=True)
    return gateways


def _read() -> list[Gateway]:
    return list(Gateway.objects.order_by("priority", "code"))


def _table_key(generation: str) -> str:
    return f"gateways:table:{generation}"


def _row(gateway: Gateway) -> list[Any]:
    return [
        value.isoformat() if name in _DATETIMES and value is not None else value
        for name, value in ((name, getattr(gateway, name)) for name in _FIELDS)
    ]


def _values(row: list[Any]) -> list[Any]:
    return [
        datetime.fromisoformat(value) if name in _DATETIMES and value is not None else value
        for name, value in zip(_FIELDS, row, strict=True)
    ]


def _gateway(values: list[Any]) -> Gateway:
    """A row of its own: the lists (methods, currencies, countries) copied, not shared."""
    own = [list(value) if isinstance(value, list) else value for value in values]
    return Gateway.from_db("default", _FIELDS, own)
