"""The gateway table's cache generation (gateways.table): replaced on every write of a row.

Apart from gateways.table so that the model's bulk writes can replace it too.
"""

import logging
import uuid

from django.core.cache import cache
from django.db import transaction

logger = logging.getLogger(__name__)

GENERATION_KEY = "gateways:table:generation"


def gateway_table_changed() -> None:
    """A gateway row was written: readers read the table again, now and after the commit."""
    _replace_generation()
    transaction.on_commit(_replace_generation, robust=True)


def _replace_generation() -> None:
    try:
        cache.set(GENERATION_KEY, uuid.uuid4().hex, timeout=None)
    except Exception:
        try:
            cache.delete(GENERATION_KEY)
        except Exception:
            logger.error("gateway table cache may be stale until it expires", exc_info=True)
