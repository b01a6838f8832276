"""Receiving gateway callbacks: verify through the adapter, store once, hand to a worker.

The endpoint is public, so what it rejects is not trusted: a rejected callback keeps
only its body's SHA-256 and size, why it failed and a few harmless headers, and its
warning line is written at most once a minute per source address, with a count.
"""

import contextlib
import hashlib
import logging
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from django.core.cache import cache
from django.db import IntegrityError, transaction

from .base import InvalidCallback
from .models import CallbackStatus, Gateway, GatewayCallback
from .registry import adapter_for

logger = logging.getLogger(__name__)

# Headers worth keeping for the record; signatures are not secrets (they are MACs).
KEPT_HEADERS = ("content-type", "user-agent", "stripe-signature", "x-signature", "x-request-id")
# Of a rejected callback, only these (cut short), and whether it carried a signature at all:
# a signature header (Stripe, Mercado Pago) or the secret of a registered URL (Efí's ?hmac=).
REJECTED_HEADERS = ("content-type", "user-agent")
SIGNATURE_HEADERS = ("stripe-signature", "x-signature")
SIGNATURE_QUERY = ("hmac",)
REJECTED_HEADER_CHARS = 200
# One warning line per source address per window; the rejections in between are counted.
REJECTION_LOG_WINDOW_SECONDS = 60

# What publishes a stored callback's processing job: the app that settles what callbacks
# say registers it (payments, from its AppConfig.ready), as gateways imports no app above it.
_publishers: list[Callable[..., None]] = []


def callback_publisher_register(publish: Callable[..., None]) -> None:
    """`publish(callback_id, countdown=seconds)` publishes the job; it raises if it cannot."""
    _publishers[:] = [publish]


@dataclass(frozen=True)
class Received:
    callback: GatewayCallback
    duplicate: bool


def callback_receive(
    *,
    gateway: Gateway,
    headers: Mapping[str, str],
    query: Mapping[str, str],
    body: bytes,
    source: str = "",
) -> Received:
    """Store a verified callback (once per gateway event id) or raise InvalidCallback.

    `source` is the sender's address, for the rejection log only.
    """
    digest = {"body_sha256": hashlib.sha256(body).hexdigest(), "body_size": len(body)}
    try:
        event = adapter_for(gateway).parse_callback(headers=headers, query=query, body=body)
    except InvalidCallback as exc:
        GatewayCallback.objects.create(
            gateway=gateway.code,
            status=CallbackStatus.REJECTED,
            detail=str(exc)[:500],
            headers=_rejected_headers(headers, query),
            **digest,
        )
        _log_rejection(gateway=gateway.code, source=source, reason=str(exc))
        raise
    kept = {name: value for name, value in headers.items() if name.lower() in KEPT_HEADERS}
    text = body.decode("utf-8", errors="replace")
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
                **digest,
            )
            transaction.on_commit(lambda: callback_dispatch(callback.pk))
    except IntegrityError:
        existing = GatewayCallback.objects.get(gateway=gateway.code, event_id=event.event_id[:200])
        return Received(existing, duplicate=True)
    return Received(callback, duplicate=False)


def _rejected_headers(headers: Mapping[str, str], query: Mapping[str, str]) -> dict[str, str]:
    lowered = {name.lower(): value for name, value in headers.items()}
    kept = {
        name: lowered[name][:REJECTED_HEADER_CHARS] for name in REJECTED_HEADERS if name in lowered
    }
    signed = any(name in lowered for name in SIGNATURE_HEADERS) or any(
        name in query for name in SIGNATURE_QUERY
    )
    kept["signature"] = "present" if signed else "absent"
    return kept


def _log_rejection(*, gateway: str, source: str, reason: str) -> None:
    """Warn about a rejected callback at most once a window per source, with a count.

    A flood of forgeries would otherwise write a line each; the line that is written
    says how many were left unsaid since the one before (`suppressed`).
    """
    source = source or "unknown"
    count_key = f"callback-rejected:suppressed:{source}"
    try:
        first = cache.add(f"callback-rejected:logged:{source}", 1, REJECTION_LOG_WINDOW_SECONDS)
    except Exception:  # a cache outage must not hide the rejection, nor fail the request
        first = True
    if not first:
        with contextlib.suppress(Exception):  # expired between add and incr: one count lost
            cache.add(count_key, 0, timeout=86400)
            cache.incr(count_key)
        return
    try:
        suppressed = int(cache.get(count_key) or 0)
        if suppressed:
            cache.delete(count_key)
    except Exception:
        suppressed = 0
    logger.warning(
        "gateway callback rejected from %s: %s (%d more from this address since the last line)",
        source,
        reason,
        suppressed,
        extra={"gateway": gateway, "source": source, "suppressed": suppressed},
    )


def callback_dispatch(callback_id: int, countdown: float = 0) -> bool:
    """Publish the stored callback's job; False if it could not be (the sweep publishes it)."""
    try:
        if not _publishers:
            raise RuntimeError("no publisher of gateway callbacks is registered")
        _publishers[0](callback_id, countdown=countdown)
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
