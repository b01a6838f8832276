"""What staff may do to a payment from the admin; every path goes through the services."""

import uuid
from typing import Any

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from gateways.models import Gateway
from gateways.registry import adapter_for
from paywave.api.errors import ApplicationError, Conflict
from paywave.values.money_text import money_display

from .dispatch import payment_dispatch
from .disputes import dispute_apply, gateway_read
from .models import Dispute, Payment, PaymentAttempt, PaymentStatus, Refund
from .reconciliation import payment_check_waiting_pix
from .refunds import refund_create
from .services import payment_cancel
from .transitions import payment_note

# Where each action can do something (and refunds.REFUNDABLE): the payment's page offers it.
RETRYABLE = (PaymentStatus.PENDING, PaymentStatus.PROCESSING)
CANCELABLE = (PaymentStatus.PENDING, PaymentStatus.AWAITING_PAYMENT)
LOOKABLE = (PaymentStatus.AWAITING_PAYMENT,)  # a PIX code shown to its payer


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
            reason = f"resumed from reconciliation ({payment.reconciliation_reason})"
        payment_note(payment_id, payment.status, reason=reason, actor=actor)
    payment_dispatch(payment_id, token)


def payment_look_up_by_staff(*, payment: Payment, staff: str) -> str:
    """Ask the gateway now whether the payer paid a PIX charge still waiting (a payer who
    says they paid), rather than at reconciliation's next look: what it found, as
    reconciliation's look says it. Paid, the payment succeeds; otherwise the event log
    says who asked and what the gateway said."""
    if payment.status not in LOOKABLE:
        raise Conflict(
            f"A {payment.status} payment is not waiting for its payer.", code="not_waiting"
        )
    actor = f"staff:{staff}"
    verdict = payment_check_waiting_pix(payment, actor=actor, when_due=False)
    if verdict not in ("succeeded", "moved"):  # a success is its own event, with the actor
        looked_up = f"looked up at {payment.gateway or 'no gateway'}: {verdict}"
        payment_note(payment.pk, payment.status, reason=looked_up, actor=actor)
    return verdict


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
        money = money_display(refund.amount, refund.payment.currency)
        payment_note(
            payment.pk, status, reason=f"refund {refund.id} of {money} requested", actor=actor
        )
    return refund


def dispute_submit_evidence(*, dispute_id: Any, text: str, staff: str) -> Dispute:
    """Answer an open dispute through its gateway's API with `text`, and submit it.

    Raises Unsupported where the gateway takes answers only in its own dashboard, and the
    gateway's other errors as they are; nothing is recorded then. What the gateway reports
    after the answer is applied as any read of the dispute is.
    """
    dispute = Dispute.objects.get(pk=dispute_id)
    if not dispute.is_open:
        raise Conflict(f"The dispute is {dispute.status}: it takes no more evidence.")
    text = text.strip()
    if not text:
        raise ApplicationError("Write the evidence to send.", fields={"text": "Required."})
    gateway = Gateway.objects.get(code=dispute.gateway)
    submit = adapter_for(gateway).submit_dispute_evidence
    result = gateway_read(gateway.code, submit, dispute.reference, text)
    actor = f"staff:{staff}"
    with transaction.atomic():
        dispute_apply(dispute.payment_id, dispute.gateway, result, actor=actor)
        dispute.refresh_from_db()
        dispute.evidence_text = text
        dispute.evidence_submitted_at = timezone.now()
        dispute.evidence_submitted_by = staff
        dispute.save(
            update_fields=[
                "evidence_text", "evidence_submitted_at", "evidence_submitted_by", "updated_at",
            ]
        )  # fmt: skip
        status = Payment.objects.values_list("status", flat=True).get(pk=dispute.payment_id)
        submitted = f"dispute {dispute.reference}: evidence submitted ({len(text)} characters)"
        payment_note(dispute.payment_id, status, reason=submitted, actor=actor)
    return dispute
