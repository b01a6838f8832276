"""Receiving gateway callbacks: verify through the adapter, store once, hand to a worker."""

import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass

from django.db import IntegrityError, transaction

from .base import InvalidCallback
from .models import CallbackStatus, Gateway, GatewayCallback
from .registry import adapter_for

logger = logging.getLogger(__name__)

# Headers worth keeping for the record; signatures are not secrets (they are MACs).
KEPT_HEADERS = ("content-type", "user-agent", "stripe-signature", "x-signature", "x-request-id")
PROCESS_CALLBACK_TASK = "webhooks.process_callback"


@dataclass(frozen=True)
class Received:
    callback: GatewayCallback
    duplicate: bool


def callback_receive(
    *, gateway: Gateway, headers: Mapping[str, str], query: Mapping[str, str], body: bytes
) -> Received:
    """Store a verified callback (once per gateway event id) or raise InvalidCallback."""
    kept = {name: value for name, value in headers.items() if name.lower() in KEPT_HEADERS}
    text = body.decode("utf-8", errors="replace")
    try:
        event = adapter_for(gateway).parse_callback(headers=headers, query=query, body=body)
    except InvalidCallback as exc:
        GatewayCallback.objects.create(
            gateway=gateway.code,
            status=CallbackStatus.REJECTED,
            detail=str(exc)[:500],
            headers=kept,
            body=text,
        )
        logger.warning("gateway callback rejected: %s", exc, extra={"gateway": gateway.code})
        raise
    try:
        with transaction.atomic():
            callback = GatewayCallback.objects.create(
                gateway=gateway.code,
                event_id=event.event_id[:200],
                kind=event.kind.value,
                reference=event.reference[:120] or event.txid[:120],
                payment_id=_uuid_or_none(event.payment_id),
                status=CallbackStatus.RECEIVED,
                headers=kept,
                body=text,
            )
            transaction.on_commit(lambda: callback_dispatch(callback.pk))
    except IntegrityError:
        existing = GatewayCallback.objects.get(gateway=gateway.code, event_id=event.event_id[:200])
        return Received(existing, duplicate=True)
    return Received(callback, duplicate=False)


def callback_dispatch(callback_id: int, countdown: float = 0) -> bool:
    from config.celery_app import app

    try:
        app.send_task(
            PROCESS_CALLBACK_TASK, args=[callback_id], queue="webhooks", countdown=countdown or None
        )
    except Exception:
        logger.error(
            "could not publish callback job; the callback sweep publishes it",
            extra={"callback_id": callback_id},
            exc_info=True,
        )
        return False
    return True


def _uuid_or_none(value: str) -> str | None:
    try:
        return str(uuid.UUID(value)) if value else None
    except ValueError:
        return None
