"""What staff may do to a payment from the admin; every path goes through the services."""

import uuid
from typing import Any

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from paywave.api.errors import Conflict
from paywave.values.money_text import money_display

from .dispatch import payment_dispatch
from .models import Payment, PaymentAttempt, PaymentEvent, PaymentStatus, Refund
from .refunds import refund_create
from .services import payment_cancel

# Where each action can do something (and refunds.REFUNDABLE): the payment's page offers it.
RETRYABLE = (PaymentStatus.PENDING, PaymentStatus.PROCESSING)
CANCELABLE = (PaymentStatus.PENDING, PaymentStatus.AWAITING_PAYMENT)


def payment_retry_now(*, payment_id: Any, actor: str) -> None:
    """Take the payment's next step now: skip a backoff wait, or resume a parked payment.

    A parked payment resumes from its lookup: if the gateway still cannot say
    whether it holds a charge, the payment is parked again, never charged twice.
    The payment's event log names who asked (its status stays what it was).
    """
    payment = Payment.objects.get(pk=payment_id)
    if payment.status not in RETRYABLE:
        raise Conflict(f"A {payment.status} payment has nothing to retry.", code="not_retryable")
    in_flight = PaymentAttempt.objects.filter(
        payment_id=payment_id, outcome="in_flight", deadline_at__gt=timezone.now()
    ).exists()
    if in_flight:
        raise Conflict("A gateway call for this payment is under way.", code="attempt_in_flight")
    token = uuid.uuid4()
    with transaction.atomic():
        moved = Payment.objects.filter(pk=payment_id, status=payment.status).update(
            dispatch_token=token,
            next_attempt_at=timezone.now(),
            needs_reconciliation=False,
            reconciliation_reason="",
            parked_reason="",
            version=F("version") + 1,
        )
        if not moved:
            raise Conflict(
                "The payment changed meanwhile; look again.", code="payment_state_conflict"
            )
        reason = "retry requested"
        if payment.needs_reconciliation:
            reason = f"resumed from reconciliation ({payment.reconciliation_reason})"[:255]
        PaymentEvent.objects.create(
            payment_id=payment_id,
            from_status=payment.status,
            to_status=payment.status,
            reason=reason,
            actor=actor,
        )
    payment_dispatch(payment_id, token)


def payment_cancel_by_staff(*, payment: Payment, staff: str) -> None:
    payment_cancel(client_id=str(payment.client_id), payment_id=payment.pk, actor=f"staff:{staff}")


def payment_refund_by_staff(*, payment: Payment, staff: str, amount: int | None = None) -> Refund:
    """Refund `amount` minor units of the payment (None: all that is left).

    Besides the refund (whose actor is the staff user), the payment's event log says
    who asked for how much, whatever becomes of the refund at the gateway.
    """
    actor = f"staff:{staff}"
    with transaction.atomic():
        refund = refund_create(
            client_id=str(payment.client_id), payment_id=payment.pk, amount=amount, actor=actor
        )
        status = refund.payment.status  # locked by refund_create until this commits
        PaymentEvent.objects.create(
            payment_id=payment.pk,
            from_status=status,
            to_status=status,
            reason=(
                f"refund {refund.id} of {money_display(refund.amount, refund.payment.currency)}"
                " requested"
            ),
            actor=actor,
        )
    return refund
