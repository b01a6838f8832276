"""Gateway callbacks applied to payments, on the `callbacks` queue.

A callback only says "look at this charge": its state is read back from the
gateway (`retrieve`), so a forged-but-valid-looking body, a duplicate or an
out-of-order delivery can never move a payment anywhere the gateway itself
does not say. Moves go forwards only: a late "pending" after "succeeded" is
recorded and ignored. A "succeeded" about the charge a payment already succeeded with
(Stripe's `payment_intent.succeeded` after the worker's own call took the answer) could
not move it whatever the gateway said: it is finished without asking.
"""

import logging
from typing import Any

from django.db.models import Q
from django.utils import timezone

from gateways.base import (
    PAID_CHARGE_STATUSES,
    REVERSED_CHARGE_STATUSES,
    CallbackKind,
    ChargeResult,
    ChargeStatus,
    GatewayError,
    Unsupported,
)
from gateways.models import CallbackStatus, Gateway, GatewayCallback
from gateways.registry import adapter_for
from paywave.observability.alerts import AlertKind, operator_alert

from .approvals import ApprovalUnreadable, approval_settle, waits_for_approval
from .disputes import DISPUTABLE, disputes_sync
from .models import Dispute, FailureCode, Payment, PaymentAttempt
from .models import PaymentStatus as S
from .orphans import orphans_due_now
from .processing import charge_result_apply, payment_settle_paid
from .transitions import TransitionConflict, payment_transition

logger = logging.getLogger(__name__)

ACTOR = "gateway-callback"
_PAYMENT_KINDS = {
    CallbackKind.PAYMENT_SUCCEEDED,
    CallbackKind.PAYMENT_FAILED,
    CallbackKind.PAYMENT_CANCELED,
    CallbackKind.PAYMENT_PENDING,
    CallbackKind.PAYMENT_UPDATED,
}


class CallbackLookupFailed(Exception):
    """The gateway could not be asked about the charge; try again later."""


def callback_process(callback_id: int) -> None:
    callback = GatewayCallback.objects.filter(pk=callback_id).first()
    if callback is None or callback.status != CallbackStatus.RECEIVED:
        return  # processed already (a duplicate job)
    if callback.kind not in _PAYMENT_KINDS and callback.kind != CallbackKind.DISPUTE_UPDATED:
        _finish(callback, CallbackStatus.IGNORED, f"{callback.kind}: not a payment state")
        return
    payment = _payment_for(callback)
    if callback.kind == CallbackKind.DISPUTE_UPDATED:
        _disputes_read(callback, payment)
        return
    if payment is None:
        # Perhaps a charge a fallback left behind, whose reference was never answered.
        looked_at = orphans_due_now(callback.gateway)
        _finish(callback, CallbackStatus.UNMATCHED, "no payment of ours has this charge")
        logger.warning(
            "gateway callback for an unknown charge kept for reconciliation",
            extra={
                "gateway": callback.gateway,
                "reference": callback.reference,
                "orphans_to_look_at": looked_at,
            },
        )
        return
    if payment.gateway != callback.gateway and orphans_due_now(
        callback.gateway, payment_id=payment.pk
    ):
        _finish(
            callback,
            CallbackStatus.PROCESSED,
            "about a charge the payment left behind: withdrawn or settled by the orphan sweep",
            payment_id=payment.pk,
        )
        return
    if _confirms_its_success(callback, payment):
        said = f"{callback.gateway} says {callback.kind}"
        detail = f"payment is {payment.status}; {said}: no change, not looked up"
        _finish(callback, CallbackStatus.IGNORED, detail, payment_id=payment.pk)
        return
    gateway = Gateway.objects.filter(code=callback.gateway).first()
    assert gateway is not None  # the row the callback came in through
    reference = payment.gateway_reference or callback.reference
    try:
        result = adapter_for(gateway).retrieve(reference)
    except GatewayError as exc:
        raise CallbackLookupFailed(f"{type(exc).__name__}: {exc.message}") from exc
    status, detail = _apply(payment, gateway, result)
    _finish(callback, status, detail, payment_id=payment.pk)


def _confirms_its_success(callback: GatewayCallback, payment: Payment) -> bool:
    """Does the callback say "succeeded" about the charge the payment succeeded with?

    Then whatever the gateway answered, nothing would move: a succeeded payment moves on
    only through a refund, a dispute or a reversal, whose callbacks are of other kinds (or,
    like Mercado Pago's, say "look it up" and are looked up). Asking would cost a gateway
    call per card charge (about as much CPU as the charge).
    """
    return (
        callback.kind == CallbackKind.PAYMENT_SUCCEEDED
        and payment.status == S.SUCCEEDED
        and callback.gateway == payment.gateway
        and bool(callback.reference)
        and callback.reference == payment.gateway_reference
    )


def _disputes_read(callback: GatewayCallback, payment: Payment | None) -> None:
    """A dispute callback: read the payment's disputes back from the gateway, apply them."""
    if payment is None:
        _finish(callback, CallbackStatus.UNMATCHED, "no payment of ours has this charge")
        logger.warning(
            "dispute callback for an unknown charge: the dispute poll looks at it",
            extra={"gateway": callback.gateway, "reference": callback.reference},
        )
        return
    gateway = Gateway.objects.filter(code=callback.gateway).first()
    assert gateway is not None  # the row the callback came in through
    disputes = _read_disputes(payment, gateway)
    said = ", ".join(f"{dispute.reference} {dispute.status}" for dispute in disputes)
    _finish(
        callback,
        CallbackStatus.PROCESSED,
        f"disputes: {said or 'none at the gateway'}",
        payment_id=payment.pk,
    )


def _read_disputes(payment: Payment, gateway: Gateway) -> list[Dispute]:
    """The payment's disputes as the gateway reports them, applied; none where the gateway's
    API has no disputes to read."""
    try:
        return disputes_sync(payment, gateway, actor=ACTOR)
    except Unsupported:
        return []
    except GatewayError as exc:
        raise CallbackLookupFailed(f"{type(exc).__name__}: {exc.message}") from exc


def callback_give_up(callback_id: int, reason: str) -> None:
    """After the last retry: the payment stays as it is and reconciliation looks at it."""
    callback = GatewayCallback.objects.filter(pk=callback_id).first()
    if callback is not None and callback.status == CallbackStatus.RECEIVED:
        _finish(callback, CallbackStatus.FAILED, reason)


def _payment_for(callback: GatewayCallback) -> Payment | None:
    if callback.payment_id:
        payment = Payment.objects.filter(pk=callback.payment_id).first()
        if payment is not None and _charged_at(payment, callback):
            return payment
    if not callback.reference:
        return None
    by_reference = Payment.objects.filter(gateway=callback.gateway).filter(
        Q(gateway_reference=callback.reference)
        | Q(pix_txid=callback.reference)
        | Q(capture_reference=callback.reference)
    )
    payment = by_reference.first()
    if payment is not None:
        return payment
    attempt = PaymentAttempt.objects.filter(
        gateway=callback.gateway, gateway_reference=callback.reference
    ).first()
    return attempt.payment if attempt else None


def _charged_at(payment: Payment, callback: GatewayCallback) -> bool:
    """Did this gateway account get a charge for the payment? (payment ids can be echoed)"""
    return (
        payment.gateway == callback.gateway
        or payment.attempts.filter(gateway=callback.gateway).exists()
    )


def _apply(payment: Payment, gateway: Gateway, result: ChargeResult) -> tuple[str, str]:
    """Move the payment forwards to what the gateway reports; (callback status, detail)."""
    said = f"{gateway.code} reports {result.raw_status}"
    if waits_for_approval(payment):  # PayPal: an approved order is captured here
        try:
            verdict = approval_settle(
                payment, gateway, actor=ACTOR, said=f"callback: {said}", order=result
            )
        except ApprovalUnreadable as exc:
            raise CallbackLookupFailed(str(exc)) from exc
        if verdict in ("parked", "moved"):
            return CallbackStatus.CONFLICT, f"payment is {payment.status}; {said}: {verdict}"
        payment.refresh_from_db()
        return CallbackStatus.PROCESSED, f"payment now {payment.status}; {said}: {verdict}"
    try:
        if payment.status == S.PROCESSING:
            charge_result_apply(payment, gateway, result, reason=f"callback: {said}", actor=ACTOR)
        elif result.status in PAID_CHARGE_STATUSES and payment.status in (
            S.AWAITING_PAYMENT,
            S.REQUIRES_ACTION,
        ):
            settled = payment_settle_paid(
                payment, gateway, result, reason=f"callback: {said}", actor=ACTOR
            )
            if settled in (
                "parked",
                "moved",
            ):
                return CallbackStatus.CONFLICT, f"payment is {payment.status}; {said}: flagged"
        elif result.status in (ChargeStatus.FAILED, ChargeStatus.CANCELED) and (
            payment.status == S.REQUIRES_ACTION
        ):
            payment_transition(
                payment_id=payment.pk,
                from_statuses=[S.REQUIRES_ACTION],
                to_status=S.FAILED,
                reason=f"callback: {said}",
                actor=ACTOR,
                next_action=None,
                failure_code=FailureCode.CARD_DECLINED,
                failure_message="The card's 3-D Secure check failed.",
            )
        elif result.status == ChargeStatus.EXPIRED and payment.status == S.AWAITING_PAYMENT:
            payment_transition(
                payment_id=payment.pk,
                from_statuses=[S.AWAITING_PAYMENT],
                to_status=S.EXPIRED,
                reason=f"callback: {said}",
                actor=ACTOR,
                failure_code=FailureCode.EXPIRED,
                failure_message="The PIX charge expired before it was paid.",
            )
        elif (
            # Money taken back from a settled payment: by a dispute (a chargeback, or a
            # mediation that ended refunded), which is applied; otherwise an operator looks.
            result.status in REVERSED_CHARGE_STATUSES
            and payment.status in DISPUTABLE
            and (disputes := _read_disputes(payment, gateway))
        ):
            said += "; disputes: " + ", ".join(f"{d.reference} {d.status}" for d in disputes)
        elif result.status in REVERSED_CHARGE_STATUSES:
            operator_alert(
                AlertKind.CHARGE_REVERSED,
                f"payment {payment.id} is {payment.status} but {said}",
                payment_id=str(payment.id),
                gateway=gateway.code,
            )
            return CallbackStatus.CONFLICT, f"payment is {payment.status}; {said}"
        elif result.status == ChargeStatus.SUCCEEDED and payment.status in (
            S.CANCELED,
            S.EXPIRED,
            S.FAILED,
        ):
            operator_alert(
                AlertKind.PAID_AFTER_CANCEL,
                f"payment {payment.id} is {payment.status} but {said}: refund the "
                "payer or reinstate the payment",
                payment_id=str(payment.id),
                gateway=gateway.code,
            )
            return CallbackStatus.CONFLICT, f"payment is {payment.status}; {said}"
        else:
            return CallbackStatus.IGNORED, f"payment is {payment.status}; {said}: no change"
    except TransitionConflict as exc:
        return CallbackStatus.IGNORED, f"payment moved meanwhile ({exc.current_status}); {said}"
    payment.refresh_from_db()
    return CallbackStatus.PROCESSED, f"payment now {payment.status}; {said}"


def _finish(callback: GatewayCallback, status: str, detail: str, **changes: Any) -> None:
    GatewayCallback.objects.filter(pk=callback.pk, status=CallbackStatus.RECEIVED).update(
        status=status, detail=detail[:500], processed_at=timezone.now(), **changes
    )
