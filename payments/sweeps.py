"""The outbox sweep: jobs that never reached the broker, or were lost with it, published again."""

import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone

from gateways.base import RefundStatus
from gateways.models import CallbackStatus, GatewayCallback

from .dispatch import payment_dispatch, refund_dispatch
from .models import Payment, PaymentStatus, Refund

logger = logging.getLogger(__name__)

BATCH = 500


def payments_sweep_outbox() -> int:
    """Publish the next step of in-progress payments whose step is overdue; how many.

    The job carries the payment's current token, so if the original job was only
    late, not lost, whichever runs second finds nothing to do.
    """
    in_progress = Payment.objects.filter(
        status__in=[PaymentStatus.PENDING, PaymentStatus.PROCESSING], needs_reconciliation=False
    )
    published = _publish_overdue(in_progress, job_field="dispatch_token", publish=payment_dispatch)
    if published is not None:
        logger.warning("outbox sweep published %d overdue payment jobs", published)
    return published or 0


def refunds_sweep() -> int:
    """Pending refunds whose next try is a grace period overdue (their job was lost, or a
    worker died during a try): publish their job again, with their current token."""
    pending = Refund.objects.filter(
        status=RefundStatus.PENDING, parked_at__isnull=True, job_token__isnull=False
    )
    return _publish_overdue(pending, job_field="job_token", publish=refund_dispatch) or 0


def _publish_overdue(
    candidates: QuerySet[Any], *, job_field: str, publish: Callable[[Any, Any], bool]
) -> int | None:
    """Publish again the job of each row whose `next_attempt_at` is a grace period past,
    with the row's current token; how many (None: none was overdue)."""
    now = timezone.now()
    grace = timedelta(seconds=settings.PAYWAVE_OUTBOX_GRACE_SECONDS)
    overdue = list(
        candidates.filter(next_attempt_at__lt=now - grace)
        .order_by("next_attempt_at")
        .values_list("id", job_field)[:BATCH]
    )
    if not overdue:
        return None
    published = 0
    for pk, token in overdue:
        # Not swept again before another grace period, unless this publish fails.
        mine = candidates.model.objects.filter(pk=pk, **{job_field: token})
        if not mine.update(next_attempt_at=now):
            continue  # it took a step meanwhile
        if not publish(pk, token):
            mine.update(next_attempt_at=now - grace)
            break  # the broker is down: the next sweep tries again
        published += 1
    return published


def callbacks_sweep(*, dispatch: Callable[[int], bool]) -> int:
    """Verified callbacks whose job never ran (broker down at receipt): publish again."""
    stale = timezone.now() - timedelta(seconds=settings.PAYWAVE_OUTBOX_GRACE_SECONDS)
    ids = list(
        GatewayCallback.objects.filter(
            status=CallbackStatus.RECEIVED, received_at__lt=stale
        ).values_list("id", flat=True)[:BATCH]
    )
    published = 0
    for callback_id in ids:
        if not dispatch(callback_id):
            break
        published += 1
    return published
