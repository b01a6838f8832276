"""Disputes found by asking, not only by being told (beat: `payments.poll_disputes`).

A gateway's dispute callback can be lost like any other. Every run asks each enabled
gateway for the disputes opened since its last run (`adapter.disputes_since`, from a
cursor in the cache, a few days back when there is none) and reads again every open
dispute not read for a while (`adapter.dispute`), so a dispute that opened or closed
unheard is applied within one poll period. A gateway that lists no disputes
(`Unsupported`) is skipped; one that cannot answer now is asked again next run.
"""

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.db.models import Q
from django.utils import timezone

from gateways.base import DisputeResult, GatewayError, Unsupported
from gateways.models import Gateway
from gateways.registry import adapter_for
from paywave.observability.alerts import AlertKind, operator_alert

from .disputes import dispute_apply, gateway_read
from .models import OPEN_DISPUTE_STATUSES, Dispute, Payment

logger = logging.getLogger(__name__)

ACTOR = "dispute-poll"
# With no cursor (the cache lost it, or the first run): how far back disputes are listed.
FIRST_LOOKBACK = timedelta(days=3)
# Each run lists from a little before the last one began: a dispute created while it ran
# is listed again, and applying it twice changes nothing.
OVERLAP = timedelta(minutes=5)
# Open disputes read again per run, the longest unread first.
RECHECK_BATCH = 200


def disputes_poll() -> dict[str, int]:
    """One run: what was applied, what could not be matched, what failed."""
    counts = {"listed": 0, "applied": 0, "unmatched": 0, "rechecked": 0, "failed": 0}
    now = timezone.now()
    for gateway in Gateway.objects.filter(enabled=True).order_by("code"):
        _discover(gateway, now, counts)
    _recheck(now, counts)
    return counts


def _cursor_key(gateway: Gateway) -> str:
    return f"paywave:disputes:polled:{gateway.code}"


def _discover(gateway: Gateway, now: datetime, counts: dict[str, int]) -> None:
    since = cache.get(_cursor_key(gateway))
    since = datetime.fromisoformat(since) - OVERLAP if since else now - FIRST_LOOKBACK
    try:
        found = gateway_read(gateway.code, adapter_for(gateway).disputes_since, since)
    except Unsupported:
        return
    except GatewayError as exc:
        _failed(counts, gateway, exc, "disputes not listed")
        return
    counts["listed"] += len(found)
    for result in found:
        _apply(gateway, result, counts)
    cache.set(_cursor_key(gateway), now.isoformat(), timeout=None)


def _apply(gateway: Gateway, result: DisputeResult, counts: dict[str, int]) -> None:
    payment = (
        Payment.objects.filter(gateway=gateway.code)
        .filter(Q(gateway_reference=result.charge_reference) | Q(pix_txid=result.charge_reference))
        .only("pk")
        .first()
    )
    if payment is None:
        counts["unmatched"] += 1
        operator_alert(
            AlertKind.DISPUTE_UNMATCHED,
            f"dispute {result.reference} at {gateway.code} is on charge "
            f"{result.charge_reference}, which no payment of ours has",
            dedupe_key=f"{gateway.code}:{result.reference}",
            gateway=gateway.code,
            dispute_reference=result.reference,
        )
        return
    if dispute_apply(payment.pk, gateway.code, result, actor=ACTOR) is not None:
        counts["applied"] += 1


def _recheck(now: datetime, counts: dict[str, int]) -> None:
    stale = now - timedelta(seconds=settings.PAYWAVE_DISPUTE_RECHECK_SECONDS)
    due = Dispute.objects.filter(status__in=OPEN_DISPUTE_STATUSES, checked_at__lt=stale).order_by(
        "checked_at"
    )[:RECHECK_BATCH]
    gateways = {gateway.code: gateway for gateway in Gateway.objects.all()}
    for dispute in due:
        gateway = gateways.get(dispute.gateway)
        if gateway is None:
            continue
        try:
            read = adapter_for(gateway).dispute
            result = gateway_read(gateway.code, read, dispute.reference)
        except GatewayError as exc:
            _failed(counts, gateway, exc, f"open dispute {dispute.reference} not read again")
            # To the back of the queue: one the gateway no longer answers for never holds
            # up the others.
            Dispute.objects.filter(pk=dispute.pk).update(checked_at=now)
            continue
        dispute_apply(dispute.payment_id, gateway.code, result, actor=ACTOR)
        counts["rechecked"] += 1


def _failed(counts: dict[str, int], gateway: Gateway, exc: GatewayError, what: str) -> None:
    counts["failed"] += 1
    logger.warning(
        "%s: %s cannot answer now (%s)",
        what,
        gateway.code,
        exc.message,
        extra={"gateway": gateway.code, "outcome": exc.outcome},
    )
