"""Refunds: money back to the payer, through the gateway that took it.

A refund is created `pending` under a lock on its payment, so concurrent
refunds can never promise more than the payment's amount: pending and
succeeded refunds both count against what is left. A worker then asks the
gateway with the refund's own idempotency key (a repeated call returns the
same gateway refund), and the refund ends `succeeded` (the payment's
`amount_refunded` grows, its status becomes `partially_refunded` or
`refunded`) or `failed` (the payment unchanged, the wallet debit put back).

A refund is failed only when the gateway certainly holds none: it refused it,
or every try was refused before anything was processed. Once a try was
ambiguous (no answer after sending) or the gateway answered "pending",
`needs_reconciliation` is set and stays set: later tries replay the same key,
which returns the refund the gateway made, and when they run out the refund is
parked (still `pending`, wallet debit kept, operator alert) for reconciliation
to look up (payments/reconciliation.py).
"""

import logging
import random
from typing import Any
from uuid import UUID

from django.conf import settings
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from gateways.base import Ambiguous, Declined, GatewayError, RefundResult, RefundStatus
from gateways.models import Gateway
from gateways.registry import adapter_for
from notifications.services import event_record
from paywave.alerts import AlertKind, operator_alert
from paywave.errors import ApplicationError, Conflict, NotFound
from wallets.services import wallet_debit_for_refund, wallet_reverse_refund_debit

from .models import Payment, Refund
from .models import PaymentStatus as S
from .models import RefundStatus as R
from .transitions import payment_transition

logger = logging.getLogger(__name__)

REFUNDABLE = (S.SUCCEEDED, S.PARTIALLY_REFUNDED)


def refund_document(refund: Refund) -> dict[str, Any]:
    return {
        "id": str(refund.id),
        "payment_id": str(refund.payment_id),
        "amount": refund.amount,
        "status": refund.status,
        "failure_message": refund.failure_message or None,
        "created_at": refund.created_at.isoformat().replace("+00:00", "Z"),
    }


def refundable_amount(payment: Payment) -> int:
    """What is left to refund: pending refunds count as if they had succeeded."""
    promised = (
        Refund.objects.filter(payment=payment)
        .exclude(status=R.FAILED)
        .aggregate(total=Sum("amount"))["total"]
    )
    return payment.amount - (promised or 0)


def refund_create(*, client_id: str, payment_id: UUID, amount: int | None, actor: str) -> Refund:
    with transaction.atomic():
        payment = (
            Payment.objects.select_for_update().filter(pk=payment_id, client_id=client_id).first()
        )
        if payment is None:
            raise NotFound("No such payment.", code="payment_not_found")
        if payment.status not in REFUNDABLE:
            raise Conflict(
                f"A {payment.status} payment cannot be refunded; only a succeeded one.",
                code="payment_not_refundable",
            )
        left = refundable_amount(payment)
        if left <= 0:
            raise Conflict(
                "The payment is refunded in full (or will be, once pending refunds finish).",
                code="payment_fully_refunded",
            )
        amount = left if amount is None else amount
        if amount > left:
            raise ApplicationError(
                f"At most {left} is left to refund.",
                code="refund_exceeds_payment",
                fields={"amount": f"At most {left}."},
            )
        refund = Refund.objects.create(
            payment=payment, amount=amount, gateway=payment.gateway, actor=actor
        )
        # The money a payment credited to a wallet leaves it before it goes back to the
        # payer: `insufficient_funds` (409) here refuses the refund and writes nothing.
        wallet_debit_for_refund(payment=payment, refund_id=refund.id, amount=amount)
        transaction.on_commit(lambda: refund_dispatch(refund.id))
    return refund


def refund_dispatch(refund_id: Any, countdown: float = 0) -> None:
    from .tasks import process_refund  # the task module imports this one

    try:
        process_refund.apply_async(args=[str(refund_id)], countdown=countdown or None)
    except Exception:
        logger.error(
            "could not publish refund job; reconciliation retries it",
            extra={"refund_id": str(refund_id)},
            exc_info=True,
        )


def refund_process(refund_id: Any) -> float | None:
    """Ask the gateway for the refund; seconds until the next try, or None when settled."""
    refund = Refund.objects.select_related("payment").filter(pk=refund_id).first()
    if refund is None or refund.status != R.PENDING or refund_is_parked(refund):
        return None
    gateway = Gateway.objects.filter(code=refund.gateway).first()
    if gateway is None:
        if refund.needs_reconciliation:
            _park(refund, refund.tries, f"gateway {refund.gateway} is no longer configured")
        else:
            refund_fail(refund, f"gateway {refund.gateway} is no longer configured")
        return None
    try:
        result = refund_ask_gateway(refund, gateway)
    except Declined as exc:
        refund_fail(refund, f"The gateway refused the refund ({exc.code or exc.message}).")
        return None
    except GatewayError as exc:
        return _retry_later(refund, exc)
    return _on_result(refund, result)


def refund_is_parked(refund: Refund) -> bool:
    """The worker is done with it: only reconciliation may settle it now."""
    return refund.needs_reconciliation and refund.tries >= settings.PAYWAVE_REFUND_TRIES


def refund_ask_gateway(refund: Refund, gateway: Gateway) -> RefundResult:
    """Make the refund, or, if the refund's idempotency key already made one, get that one.

    Every adapter passes the key to its gateway (Stripe `Idempotency-Key`, Mercado
    Pago `X-Idempotency-Key`, Gerencianet the devolution id), so a replay is also
    the lookup of a refund whose answer was lost.
    """
    try:
        return adapter_for(gateway).refund(
            reference=refund.payment.gateway_reference,
            amount=refund.amount,
            idempotency_key=refund.idempotency_key,
        )
    except GatewayError:
        raise
    except Exception as exc:  # unexpected: the refund may have been made; retry the same key
        logger.exception("refund call failed unexpectedly", extra={"refund_id": str(refund.id)})
        raise Ambiguous(f"unexpected {type(exc).__name__}") from exc


def refund_apply_result(refund: Refund, result: RefundResult) -> str:
    """Settle the refund as the gateway reports it; its status afterwards."""
    if result.status == RefundStatus.SUCCEEDED:
        _succeed(refund, result.reference)
        return R.SUCCEEDED
    if result.status == RefundStatus.FAILED:
        refund_fail(refund, f"The gateway refused the refund ({result.raw_status}).")
        return R.FAILED
    Refund.objects.filter(pk=refund.pk, status=R.PENDING).update(
        gateway_reference=result.reference, needs_reconciliation=True, updated_at=timezone.now()
    )
    refund.needs_reconciliation = True
    return R.PENDING


def refund_retry_delay(tries_so_far: int) -> float:
    """Seconds before the next try of a refund that has been tried `tries_so_far` times."""
    delay = min(
        settings.PAYWAVE_REFUND_RETRY_BASE_SECONDS
        * settings.PAYWAVE_RETRY_FACTOR ** (tries_so_far - 1),
        settings.PAYWAVE_REFUND_RETRY_MAX_SECONDS,
    )
    jitter = settings.PAYWAVE_RETRY_JITTER
    return delay * random.uniform(1 - jitter, 1 + jitter)  # noqa: S311 (not a secret)


def _on_result(refund: Refund, result: RefundResult) -> float | None:
    if refund_apply_result(refund, result) != R.PENDING:
        return None
    return _retry_later(refund, None)  # pending at the gateway: ask again with the same key


def _retry_later(refund: Refund, error: GatewayError | None) -> float | None:
    """After a try that settled nothing (`error` None: the gateway said pending)."""
    tries = refund.tries + 1
    message = f"{type(error).__name__}: {error.message}"[:500] if error else "pending"
    may_exist = refund.needs_reconciliation or error is None or isinstance(error, Ambiguous)
    if tries < settings.PAYWAVE_REFUND_TRIES:
        Refund.objects.filter(pk=refund.pk, status=R.PENDING).update(
            tries=tries,
            last_error=message,
            needs_reconciliation=may_exist,
            updated_at=timezone.now(),
        )
        return refund_retry_delay(tries)
    if may_exist:
        _park(refund, tries, message)
        return None
    # Every try was refused before the gateway did anything: certainly no refund there.
    Refund.objects.filter(pk=refund.pk, status=R.PENDING).update(tries=tries)
    refund_fail(
        refund, "The gateway could not be reached; nothing was refunded.", last_error=message
    )
    return None


def _park(refund: Refund, tries: int, message: str) -> None:
    reason = f"parked after {tries} tries, the gateway may hold the refund; last: {message}"
    parked = Refund.objects.filter(pk=refund.pk, status=R.PENDING).update(
        tries=max(tries, settings.PAYWAVE_REFUND_TRIES),
        last_error=reason[:500],
        needs_reconciliation=True,
        updated_at=timezone.now(),
    )
    if parked:
        operator_alert(
            AlertKind.REFUND_PARKED,
            f"refund {refund.id} outcome unknown at {refund.gateway}: {message}; "
            "reconciliation looks it up, the wallet debit is kept meanwhile",
            refund_id=str(refund.id),
            payment_id=str(refund.payment_id),
            gateway=refund.gateway,
        )


def _succeed(refund: Refund, reference: str) -> None:
    with transaction.atomic():
        payment = Payment.objects.select_for_update().get(pk=refund.payment_id)
        won = Refund.objects.filter(pk=refund.pk, status=R.PENDING).update(
            status=R.SUCCEEDED,
            gateway_reference=reference,
            needs_reconciliation=False,
            updated_at=timezone.now(),
        )
        if not won:
            return  # another worker settled it
        refunded = payment.amount_refunded + refund.amount
        payment_transition(
            payment_id=payment.pk,
            from_statuses=REFUNDABLE,
            to_status=S.REFUNDED if refunded == payment.amount else S.PARTIALLY_REFUNDED,
            reason=f"refund {refund.id} of {refund.amount}",
            actor=f"refund:{refund.actor}",
            amount_refunded=refunded,
        )
        refund.refresh_from_db()
        event_record(
            type="refund.succeeded",
            client_id=payment.client_id,
            subject_id=payment.id,
            data=refund_document(refund),
        )


def refund_fail(refund: Refund, message: str, *, last_error: str = "") -> None:
    """Fail a pending refund and give the wallet its money back; only when none exists."""
    with transaction.atomic():
        failed = Refund.objects.filter(pk=refund.pk, status=R.PENDING).update(
            status=R.FAILED,
            failure_message=message[:255],
            last_error=last_error or message[:500],
            updated_at=timezone.now(),
        )
        if not failed:
            return
        wallet_reverse_refund_debit(refund_id=refund.pk)
        refund.refresh_from_db()
        event_record(
            type="refund.failed",
            client_id=refund.payment.client_id,
            subject_id=refund.payment_id,
            data=refund_document(refund),
        )
