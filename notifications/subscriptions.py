"""Which endpoints each wallet app's events go to: read on every event, changed rarely.

Fanning out an event needs the wallet app's enabled endpoints. They are cached per
wallet app (JSON in `paywave.cache.json_state`) under a generation that every change to
any endpoint replaces once it commits (`endpoints_changed`); an entry of another
generation is read again. A reader that read the rows before the commit stored them
under the generation before it, so its entry is out of date as soon as the change is
seen. If the cache cannot be read or written, the rows are read from the database; an
entry is kept at most ENTRY_SECONDS, which bounds how long a change whose generation
could not be replaced goes unseen.
"""

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils.dateparse import parse_datetime

from paywave.cache.json_state import json_state

from .models import WebhookEndpoint, subscribed_to

logger = logging.getLogger(__name__)

GENERATION_KEY = "paywave:webhook-endpoints:generation"
ENTRY_SECONDS = 300
# A generation outlives every entry stored under it; when it expires, the next reader
# starts a new one and every entry is read again.
GENERATION_SECONDS = 30 * 24 * 3600


@dataclass(frozen=True)
class Subscription:
    endpoint_id: uuid.UUID
    events: tuple[str, ...]
    created_at: datetime

    def covers(self, event_type: str, at: datetime) -> bool:
        """Subscribed to the type, and existed when the event happened."""
        return self.created_at <= at and subscribed_to(self.events, event_type)


def client_subscriptions(client_id: Any) -> list[Subscription]:
    """The wallet app's enabled, not deleted endpoints, from the cache when it is current."""
    entry_key = f"paywave:webhook-endpoints:{client_id}"
    state = json_state()
    try:
        cached = state.get_many([GENERATION_KEY, entry_key])
        generation = cached.get(GENERATION_KEY)
        if generation is None:
            state.add(GENERATION_KEY, uuid.uuid4().hex, GENERATION_SECONDS)
            generation = state.get_many([GENERATION_KEY]).get(GENERATION_KEY)
        entry = cached.get(entry_key)
        if generation is not None and entry is not None and entry.get("generation") == generation:
            return [_decoded(row) for row in entry["rows"]]
    except Exception:
        logger.warning("webhook endpoints cache unreadable", exc_info=True)
        return _read(client_id)
    subscriptions = _read(client_id)
    try:
        rows = [_encoded(subscription) for subscription in subscriptions]
        state.set(entry_key, {"generation": generation, "rows": rows}, ENTRY_SECONDS)
    except Exception:
        logger.warning("webhook endpoints cache not written", exc_info=True)
    return subscriptions


def endpoints_changed() -> None:
    """Call where endpoints are created, deleted, enabled or disabled: no cached entry is
    current any more once the change commits. (Also at once, for a reader in the
    writer's own transaction, which sees the change before the commit.)"""
    _new_generation()
    transaction.on_commit(_new_generation, robust=True)


def _new_generation() -> None:
    try:
        json_state().set(GENERATION_KEY, uuid.uuid4().hex, GENERATION_SECONDS)
    except Exception:
        logger.error(
            "webhook endpoints cache not invalidated; entries expire within %d s",
            ENTRY_SECONDS,
            exc_info=True,
        )


def _read(client_id: Any) -> list[Subscription]:
    rows = WebhookEndpoint.objects.filter(
        client_id=client_id, enabled=True, deleted_at__isnull=True
    ).values_list("id", "events", "created_at")
    return [Subscription(pk, tuple(events), created_at) for pk, events, created_at in rows]


def _encoded(subscription: Subscription) -> list[Any]:
    return [
        str(subscription.endpoint_id),
        list(subscription.events),
        subscription.created_at.isoformat(),
    ]


def _decoded(row: list[Any]) -> Subscription:
    created_at = parse_datetime(row[2])
    assert created_at is not None  # written by _encoded
    return Subscription(uuid.UUID(row[0]), tuple(row[1]), created_at)
