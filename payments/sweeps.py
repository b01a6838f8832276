"""The outbox sweep: jobs that never reached the broker, or were lost with it, published again."""

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from gateways.base import RefundStatus
from gateways.models import CallbackStatus, GatewayCallback
from paywave.jobs import overdue_republish

from .dispatch import payment_dispatch, refund_dispatch
from .models import Payment, PaymentStatus, Refund

logger = logging.getLogger(__name__)


def payments_sweep_outbox() -> int:
    """Publish the next step of in-progress payments whose step is overdue; how many.

    The job carries the payment's current token, so if the original job was only
    late, not lost, whichever runs second finds nothing to do.
    """
    overdue = Payment.objects.filter(
        status__in=[PaymentStatus.PENDING, PaymentStatus.PROCESSING],
        needs_reconciliation=False,
        next_attempt_at__lt=_grace_ago(),
    )
    published = overdue_republish(overdue, claim_by="dispatch_token", publish=payment_dispatch)
    if published:
        logger.warning("outbox sweep published %d overdue payment jobs", published)
    return published


def refunds_sweep() -> int:
    """Pending refunds whose next try is a grace period overdue (their job was lost, or a
    worker died during a try): publish their job again, with their current token."""
    overdue = Refund.objects.filter(
        status=RefundStatus.PENDING,
        parked_at__isnull=True,
        job_token__isnull=False,
        next_attempt_at__lt=_grace_ago(),
    )
    return overdue_republish(overdue, claim_by="job_token", publish=refund_dispatch)


def callbacks_sweep(*, dispatch: Callable[[int], bool]) -> int:
    """Verified callbacks whose job never ran (broker down at receipt): publish again.

    No token: a callback's job does nothing once the callback is processed.
    """
    overdue = GatewayCallback.objects.filter(
        status=CallbackStatus.RECEIVED, received_at__lt=_grace_ago()
    )
    return overdue_republish(overdue, order_by="id", publish=dispatch)


def _grace_ago() -> datetime:
    return timezone.now() - timedelta(seconds=settings.PAYWAVE_OUTBOX_GRACE_SECONDS)
