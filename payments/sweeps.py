"""The outbox sweep: jobs that never reached the broker, or were lost with it, published again."""

import logging
from collections.abc import Callable
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from gateways.models import CallbackStatus, GatewayCallback

from .dispatch import payment_dispatch
from .models import Payment, PaymentStatus, Refund, RefundStatus
from .refunds import refund_dispatch

logger = logging.getLogger(__name__)

BATCH = 500


def payments_sweep_outbox() -> int:
    """Publish the next step of in-progress payments whose step is overdue; how many.

    The job carries the payment's current token, so if the original job was only
    late, not lost, whichever runs second finds nothing to do.
    """
    now = timezone.now()
    grace = timedelta(seconds=settings.PAYWAVE_OUTBOX_GRACE_SECONDS)
    overdue = list(
        Payment.objects.filter(
            status__in=[PaymentStatus.PENDING, PaymentStatus.PROCESSING],
            needs_reconciliation=False,
            next_attempt_at__lt=now - grace,
        )
        .order_by("next_attempt_at")
        .values_list("id", "dispatch_token")[:BATCH]
    )
    published = 0
    for payment_id, token in overdue:
        # Not swept again before another grace period, unless this publish fails.
        moved = Payment.objects.filter(pk=payment_id, dispatch_token=token).update(
            next_attempt_at=now
        )
        if not moved:
            continue  # it took a step meanwhile
        if not payment_dispatch(payment_id, token):
            Payment.objects.filter(pk=payment_id, dispatch_token=token).update(
                next_attempt_at=now - grace
            )
            break  # the broker is down: the next sweep tries again
        published += 1
    if overdue:
        logger.warning("outbox sweep published %d overdue payment jobs", published)
    return published


def refunds_sweep() -> int:
    """Pending refunds whose next try is a grace period overdue (their job was lost, or a
    worker died during a try): publish their job again, with their current token."""
    now = timezone.now()
    grace = timedelta(seconds=settings.PAYWAVE_OUTBOX_GRACE_SECONDS)
    overdue = list(
        Refund.objects.filter(
            status=RefundStatus.PENDING,
            parked_at__isnull=True,
            job_token__isnull=False,
            next_attempt_at__lt=now - grace,
        )
        .order_by("next_attempt_at")
        .values_list("id", "job_token")[:BATCH]
    )
    published = 0
    for refund_id, token in overdue:
        # Not swept again before another grace period, unless this publish fails.
        mine = Refund.objects.filter(pk=refund_id, job_token=token)
        if not mine.update(next_attempt_at=now):
            continue  # it took a try meanwhile
        if not refund_dispatch(refund_id, token):
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
