"""Refunds: money back to the payer, through the gateway that took it.

A refund is created `pending` under a lock on its payment, so concurrent
refunds can never promise more than the payment's amount: pending and
succeeded refunds both count against what is left. A worker then asks the
gateway with the refund's own idempotency key (a repeated call returns the
same gateway refund), and the refund ends `succeeded` (the payment's
`amount_refunded` grows, its status becomes `partially_refunded` or
`refunded`) or `failed` (the payment unchanged).
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
MAX_TRIES = 5


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
    if refund is None or refund.status != R.PENDING or refund.needs_reconciliation:
        return None
    payment = refund.payment
    gateway = Gateway.objects.filter(code=refund.gateway).first()
    if gateway is None:
        _fail(refund, f"gateway {refund.gateway} is no longer configured")
        return None
    try:
        result = adapter_for(gateway).refund(
            reference=payment.gateway_reference,
            amount=refund.amount,
            idempotency_key=refund.idempotency_key,
        )
    except Declined as exc:
        _fail(refund, f"The gateway refused the refund ({exc.code or exc.message}).")
        return None
    except GatewayError as exc:
        return _retry_later(refund, exc)
    except Exception as exc:  # unexpected: the refund may have been made; retry the same key
        logger.exception("refund call failed unexpectedly", extra={"refund_id": str(refund.id)})
        return _retry_later(refund, Ambiguous(f"unexpected {type(exc).__name__}"))
    return _on_result(refund, result)


def _on_result(refund: Refund, result: RefundResult) -> float | None:
    if result.status == RefundStatus.SUCCEEDED:
        _succeed(refund, result.reference)
        return None
    if result.status == RefundStatus.FAILED:
        _fail(refund, f"The gateway refused the refund ({result.raw_status}).")
        return None
    Refund.objects.filter(pk=refund.pk).update(
        gateway_reference=result.reference, updated_at=timezone.now()
    )
    return _retry_later(refund, None)  # pending at the gateway: ask again with the same key


def _retry_later(refund: Refund, error: GatewayError | None) -> float | None:
    tries = refund.tries + 1
    message = f"{type(error).__name__}: {error.message}"[:500] if error else "pending"
    if tries < MAX_TRIES:
        Refund.objects.filter(pk=refund.pk, status=R.PENDING).update(
            tries=tries, last_error=message, updated_at=timezone.now()
        )
        base = settings.PAYWAVE_RETRY_BASE_SECONDS * settings.PAYWAVE_RETRY_FACTOR ** (tries - 1)
        jitter = settings.PAYWAVE_RETRY_JITTER
        return base * random.uniform(1 - jitter, 1 + jitter)  # noqa: S311 (not a secret)
    if error is None or isinstance(error, Ambiguous):
        # The gateway may have refunded: park rather than tell the wallet app "failed".
        Refund.objects.filter(pk=refund.pk, status=R.PENDING).update(
            tries=tries, last_error=message, needs_reconciliation=True, updated_at=timezone.now()
        )
        operator_alert(
            AlertKind.REFUND_PARKED,
            f"refund {refund.id} outcome unknown after {tries} tries: {message}",
            refund_id=str(refund.id),
            payment_id=str(refund.payment_id),
        )
        return None
    Refund.objects.filter(pk=refund.pk, status=R.PENDING).update(tries=tries)
    _fail(refund, "The gateway could not be reached; nothing was refunded.", last_error=message)
    return None


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


def _fail(refund: Refund, message: str, *, last_error: str = "") -> None:
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
