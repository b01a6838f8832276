"""The outbox sweep: jobs that never reached the broker, or were lost with it, published again."""

import logging
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from .dispatch import payment_dispatch
from .models import Payment, PaymentStatus

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
