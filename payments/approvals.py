"""Payments that wait for their payer's approval at the gateway (PayPal): captured once.

Three signs of an approval race each other: the payer's return through PayWave's
return page (a job on the callbacks queue), PayPal's CHECKOUT.ORDER.APPROVED
callback, and reconciliation reading the order. Whichever comes first captures;
the others find the payment settled, or capture again with the same request id,
which PayPal answers with the one capture it made. The payment moves by
compare-and-set from `requires_action`, so it is settled once however many of
them get there.

A payer who cancels at PayPal comes back through the cancel page: the payment is
`canceled` unless the order was approved meanwhile. One never approved is `expired`
at `approval_expires_at`. A capture PayPal declines (INSTRUMENT_DECLINED) leaves the
payment waiting: the payer must approve again, with another funding source.
"""

import logging
from typing import Any

from django.db import transaction
from django.utils import timezone

from gateways.base import (
    REVERSED_CHARGE_STATUSES,
    ChargeNotFound,
    ChargeResult,
    ChargeStatus,
    GatewayError,
)
from gateways.models import Gateway
from gateways.registry import adapter_for
from gateways.selectors import gateway_routed
from paywave.observability.alerts import AlertKind, operator_alert
from paywave.observability.metrics import record_approval

from .models import FailureCode, Payment, PaymentMethod
from .models import PaymentStatus as S
from .processing import payment_settle_paid
from .transitions import TransitionConflict, payment_note, payment_transition

logger = logging.getLogger(__name__)

RETURN_ACTOR = "payer-return"


class ApprovalUnreadable(Exception):
    """The gateway could not be asked about the order now; ask again later."""


def waits_for_approval(payment: Payment) -> bool:
    return (
        payment.method == PaymentMethod.PAYPAL
        and payment.status == S.REQUIRES_ACTION
        and not payment.needs_reconciliation
    )


def capture_key(payment: Payment) -> str:
    """One capture request id per payment and gateway: every capture of it is the same one."""
    return f"paywave-{payment.id}-{payment.gateway}-capture"


def approval_settle(
    payment: Payment,
    gateway: Gateway,
    *,
    actor: str,
    said: str,
    order: ChargeResult | None = None,
    capture: bool = False,
) -> str:
    """Capture the payment's order if its payer approved it, and settle the payment from
    what PayPal answers; a word saying what became of it.

    `order`: the order as just read (a callback's read-back), else it is read here.
    `capture`: capture without reading first (the payer just came back approving).
    Raises ApprovalUnreadable when PayPal cannot answer.
    """
    adapter = adapter_for(gateway)
    reference = payment.gateway_reference
    try:
        if capture:
            order = adapter.capture(reference, capture_key(payment))
        elif order is None:
            order = adapter.retrieve(reference)
        if order.status == ChargeStatus.PENDING and not order.capture_reference:
            order = adapter.capture(reference, capture_key(payment))  # approved: take the money
    except ChargeNotFound:
        return _end(
            payment, S.FAILED, f"{said}: {gateway.code} has no such order", actor,
            FailureCode.PAYMENT_DECLINED, "PayPal has no such order.",
        )  # fmt: skip
    except GatewayError as exc:
        record_approval(gateway.code, actor, "unreadable", payment_id=payment.id)
        raise ApprovalUnreadable(f"{type(exc).__name__}: {exc.message}") from exc
    verdict = _apply(payment, gateway, order, actor=actor, said=f"{said}; {order.raw_status}")
    record_approval(gateway.code, actor, verdict, payment_id=payment.id)
    return verdict


def approval_cancel(payment: Payment, gateway: Gateway, *, actor: str) -> str:
    """The payer cancelled at PayPal: `canceled`, unless the order was approved meanwhile."""
    try:
        order = adapter_for(gateway).retrieve(payment.gateway_reference)
    except ChargeNotFound:
        order = None
    except GatewayError as exc:
        raise ApprovalUnreadable(f"{type(exc).__name__}: {exc.message}") from exc
    if order is not None and order.status != ChargeStatus.REQUIRES_ACTION:
        return approval_settle(
            payment, gateway, actor=actor, said="payer cancelled after approving", order=order
        )
    verdict = _end(
        payment, S.CANCELED, "the payer cancelled at PayPal", actor,
        FailureCode.CANCELED, "The payer cancelled at PayPal.",
    )  # fmt: skip
    record_approval(gateway.code, actor, verdict, payment_id=payment.id)
    return verdict


def approval_expire_if_due(payment: Payment, *, actor: str) -> str | None:
    """`expired` if the payer's time to approve is over; None if it is not."""
    if payment.approval_expires_at is None or payment.approval_expires_at > timezone.now():
        return None
    return _end(
        payment, S.EXPIRED, "not approved at PayPal in time", actor,
        FailureCode.EXPIRED, "The payer did not approve the payment at PayPal in time.",
    )  # fmt: skip


def _apply(
    payment: Payment, gateway: Gateway, order: ChargeResult, *, actor: str, said: str
) -> str:
    if order.status == ChargeStatus.SUCCEEDED or order.status in REVERSED_CHARGE_STATUSES:
        verdict = payment_settle_paid(payment, gateway, order, reason=said, actor=actor)
        if verdict == "moved":
            _alert_if_ended_unpaid(payment, gateway, said)
        return verdict
    if order.status == ChargeStatus.REQUIRES_ACTION:
        if order.failure_code:  # the capture was declined: back to the approval page
            _event(payment, f"{said}: capture declined ({order.failure_code}); "
                            "the payer must approve again", actor)  # fmt: skip
            return "declined_approve_again"
        return approval_expire_if_due(payment, actor=actor) or "waiting"
    if order.status == ChargeStatus.PENDING:
        return "pending"  # captured, the money not final yet: PayPal's callback settles it
    if order.status == ChargeStatus.CANCELED:
        return _end(payment, S.CANCELED, said, actor, FailureCode.CANCELED,
                    "PayPal voided the order.")  # fmt: skip
    message = order.failure_message or f"PayPal answered {order.raw_status}."
    return _end(payment, S.FAILED, said, actor, FailureCode.PAYMENT_DECLINED, message)


def _alert_if_ended_unpaid(payment: Payment, gateway: Gateway, said: str) -> None:
    """Captured while another path ended the payment (cancelled, expired): a person decides."""
    status = Payment.objects.filter(pk=payment.pk).values_list("status", flat=True).first()
    if status in (S.CANCELED, S.EXPIRED, S.FAILED):
        operator_alert(
            AlertKind.PAID_AFTER_CANCEL,
            f"payment {payment.id} is {status} but {said}: refund the payer or reinstate "
            "the payment",
            payment_id=str(payment.id),
            gateway=gateway.code,
        )


def _end(payment: Payment, status: str, reason: str, actor: str, code: str, message: str) -> str:
    try:
        payment_transition(
            payment_id=payment.pk,
            from_statuses=[S.REQUIRES_ACTION],
            to_status=status,
            reason=reason[:255],
            actor=actor,
            next_action=None,
            failure_code=code,
            failure_message=message[:255],
        )
    except TransitionConflict:
        return "moved"
    return str(status)


def _event(payment: Payment, reason: str, actor: str) -> None:
    """The payment's story shows what happened while it keeps its status."""
    with transaction.atomic():
        payment_note(payment.pk, S.REQUIRES_ACTION, reason=reason, actor=actor)
    logger.info(reason, extra={"payment_id": str(payment.id), "gateway": payment.gateway})


def approval_payment(payment_id: Any) -> tuple[Payment, Gateway] | None:
    """The payment and its gateway, if it still waits for its payer's approval."""
    payment = Payment.objects.filter(pk=payment_id).first()
    if payment is None or not waits_for_approval(payment):
        return None
    gateway = gateway_routed(payment.gateway)
    return None if gateway is None else (payment, gateway)


def payer_return_process(payment_id: Any, outcome: str) -> str:
    """The payer came back from PayPal's page: `approved` captures, `cancelled` cancels."""
    found = approval_payment(payment_id)
    if found is None:
        return "moved"
    payment, gateway = found
    if outcome == "cancelled":
        return approval_cancel(payment, gateway, actor=RETURN_ACTOR)
    return approval_settle(
        payment, gateway, actor=RETURN_ACTOR, said="the payer came back from PayPal", capture=True
    )
