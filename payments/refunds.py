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

A job carries the refund's `job_token`; a try starts by swapping the token by
compare-and-set, so one job at a time talks to the gateway and a duplicate job
(redelivered, or published again by the outbox sweep during a backoff) does nothing.
A refund that may exist and is older than REFUND_LOOKUP_WINDOW is never sent again:
past the window a gateway may have forgotten the key and make a second refund.
"""

import logging
import uuid
from datetime import timedelta
from typing import Any
from uuid import UUID

from django.conf import settings
from django.db import transaction
from django.db.models import F, Sum
from django.utils import timezone

from gateways.base import (
    Ambiguous,
    Declined,
    DisputeStatus,
    GatewayError,
    RefundResult,
    RefundStatus,
)
from gateways.models import Gateway
from gateways.registry import adapter_for
from paywave.api.errors import ApplicationError, Conflict, NotFound
from paywave.backoff import backoff_delay
from paywave.domain_events import publish
from paywave.jobs import token_swap
from paywave.observability.alerts import AlertKind, operator_alert
from paywave.observability.log_context import log_context
from paywave.queries import one_or_none

from .dispatch import refund_dispatch
from .disputes import disputed_now
from .events import RefundChanged
from .models import Dispute, Payment, Refund
from .models import PaymentStatus as S
from .processing import NextStep
from .serializers import iso_timestamp
from .transitions import payment_transition

logger = logging.getLogger(__name__)

REFUNDABLE = (S.SUCCEEDED, S.PARTIALLY_REFUNDED)
# Replaying a refund is a lookup only while the gateway remembers its idempotency key
# (Stripe: 24 h); later, a replay could make a second refund.
REFUND_LOOKUP_WINDOW = timedelta(hours=20)
# A try holds the refund this long (its gateway call is bounded well below): the outbox
# sweep publishes the job again only once this, and a grace period, passed.
TRY_LEASE = timedelta(minutes=2)
KEY_FORGOTTEN = "older than the gateways keep its idempotency key: check by hand"


def refund_document(refund: Refund) -> dict[str, Any]:
    return {
        "id": str(refund.id),
        "payment_id": str(refund.payment_id),
        "amount": refund.amount,
        "status": refund.status,
        "failure_message": refund.failure_message or None,
        "created_at": iso_timestamp(refund.created_at),
    }


def refundable_amount(payment: Payment) -> int:
    """What is left to refund: pending refunds count as if they had succeeded, and what
    lost disputes gave back to the payer is gone."""
    promised = (
        Refund.objects.filter(payment=payment)
        .exclude(status=RefundStatus.FAILED)
        .aggregate(total=Sum("amount"))["total"]
    )
    charged_back = Dispute.objects.filter(payment=payment, status=DisputeStatus.LOST).aggregate(
        total=Sum("amount")
    )["total"]
    return payment.amount - (promised or 0) - (charged_back or 0)


def refund_create(*, client_id: str, payment_id: UUID, amount: int | None, actor: str) -> Refund:
    with transaction.atomic():
        payment = one_or_none(
            Payment.objects.select_for_update().filter(pk=payment_id, client__pk=client_id)
        )
        if payment is None:
            raise NotFound("No such payment.", code="payment_not_found")
        if payment.status not in REFUNDABLE:
            raise Conflict(
                f"A {payment.status} payment cannot be refunded; only a succeeded one.",
                code="payment_not_refundable",
            )
        if disputed_now(payment):
            # The gateways refuse it too: the disputed money is not the merchant's to give.
            raise Conflict(
                "The payment is disputed; it can be refunded once the dispute is closed.",
                code="payment_disputed",
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
            payment=payment,
            amount=amount,
            gateway=payment.gateway,
            actor=actor,
            job_token=uuid.uuid4(),
        )
        # A subscriber may refuse it: the money a payment credited to a wallet leaves it
        # before it goes back to the payer (wallets: `insufficient_funds`, 409, writes nothing).
        _publish(refund, payment, from_status="")
        transaction.on_commit(lambda: refund_dispatch(refund.id, refund.job_token))
    return refund


def refund_process(refund_id: Any, token: str | None = None) -> NextStep | None:
    """Take the refund's next try at the gateway; the next job to publish, if any.

    `token` None (a job published before jobs carried one) matches the current token.
    """
    refund = one_or_none(Refund.objects.select_related("payment").filter(pk=refund_id))
    if refund is None or refund.status != RefundStatus.PENDING or refund.parked_at is not None:
        return None
    if token is not None and str(refund.job_token) != token:
        return None  # a duplicate or superseded job
    with log_context(payment_id=str(refund.payment_id), refund_id=str(refund.pk)):
        if (
            refund.needs_reconciliation
            and refund.created_at < timezone.now() - REFUND_LOOKUP_WINDOW
        ):
            refund_park(refund, KEY_FORGOTTEN)
            return None
        if not _claim_try(refund):
            return None
        gateway = one_or_none(Gateway.objects.filter(code=refund.gateway))
        if gateway is None:
            _give_up(refund, f"gateway {refund.gateway} is no longer configured")
            return None
        with log_context(gateway=gateway.code, attempt=refund.tries):
            try:
                result = refund_ask_gateway(refund, gateway)
            except Declined as exc:
                refund_fail(refund, f"The gateway refused the refund ({exc.code or exc.message}).")
                return None
            except GatewayError as exc:
                return _retry_later(refund, exc)
            return _on_result(refund, result)


def _claim_try(refund: Refund) -> bool:
    """Count the try and swap the token, if no other job did since `refund` was read.

    The rule: a pending refund, not parked, with the token and the try count it was read
    with; the claim counts the try and leases the row for TRY_LEASE.
    """
    now = timezone.now()
    token = token_swap(
        Refund.objects.filter(
            pk=refund.pk, status=RefundStatus.PENDING, parked_at__isnull=True, tries=refund.tries
        ),
        field="job_token",
        expected=refund.job_token,
        tries=F("tries") + 1,
        next_attempt_at=now + TRY_LEASE,
        updated_at=now,
    )
    if token is not None:
        refund.job_token, refund.tries = token, refund.tries + 1
    return token is not None


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
        return RefundStatus.SUCCEEDED
    if result.status == RefundStatus.FAILED:
        refund_fail(refund, f"The gateway refused the refund ({result.raw_status}).")
        return RefundStatus.FAILED
    Refund.objects.filter(pk=refund.pk, status=RefundStatus.PENDING).update(
        gateway_reference=result.reference, needs_reconciliation=True, updated_at=timezone.now()
    )
    refund.needs_reconciliation = True
    return RefundStatus.PENDING


def refund_retry_delay(tries_so_far: int) -> float:
    """Seconds before the next try of a refund that has been tried `tries_so_far` times."""
    return backoff_delay(
        tries_so_far,
        base=settings.PAYWAVE_REFUND_RETRY_BASE_SECONDS,
        factor=settings.PAYWAVE_RETRY_FACTOR,
        jitter=settings.PAYWAVE_RETRY_JITTER,
        cap=settings.PAYWAVE_REFUND_RETRY_MAX_SECONDS,
    )


def _on_result(refund: Refund, result: RefundResult) -> NextStep | None:
    if refund_apply_result(refund, result) != RefundStatus.PENDING:
        return None
    return _retry_later(refund, None)  # pending at the gateway: ask again with the same key


def _retry_later(refund: Refund, error: GatewayError | None) -> NextStep | None:
    """After a try that settled nothing (`error` None: the gateway said pending)."""
    message = f"{type(error).__name__}: {error.message}"[:500] if error else "pending"
    if error is None or isinstance(error, Ambiguous):
        refund.needs_reconciliation = True
    if refund.tries >= settings.PAYWAVE_REFUND_TRIES:
        _give_up(refund, message)
        return None
    delay = refund_retry_delay(refund.tries)
    now = timezone.now()
    changes: dict[str, Any] = {
        "last_error": message,
        "next_attempt_at": now + timedelta(seconds=delay),
        "updated_at": now,
    }
    if refund.needs_reconciliation:  # set, never cleared: another job's try may have set it
        changes["needs_reconciliation"] = True
    mine = Refund.objects.filter(
        pk=refund.pk, status=RefundStatus.PENDING, job_token=refund.job_token
    )
    if not mine.update(**changes):
        return None  # settled or parked meanwhile
    return NextStep(str(refund.job_token), delay)


def _give_up(refund: Refund, message: str) -> None:
    """No more tries: failed if the gateway certainly holds no refund, else parked."""
    if not refund.needs_reconciliation and refund_fail(
        refund,
        "The gateway could not be reached; nothing was refunded.",
        last_error=message,
        only_if_unflagged=True,
    ):
        return
    refund_park(refund, message)


def refund_park(refund: Refund, message: str) -> None:
    """Leave the refund to reconciliation (and, past the key's life, to an operator): once."""
    reason = f"parked after {refund.tries} tries, the gateway may hold the refund; last: {message}"
    now = timezone.now()
    parked = Refund.objects.filter(
        pk=refund.pk, status=RefundStatus.PENDING, parked_at__isnull=True
    ).update(
        parked_at=now,
        job_token=None,
        last_error=reason[:500],
        needs_reconciliation=True,
        updated_at=now,
    )
    if parked:
        refund.parked_at, refund.needs_reconciliation = now, True
        operator_alert(
            AlertKind.REFUND_PARKED,
            f"refund {refund.id} outcome unknown at {refund.gateway}: {message}; "
            "reconciliation looks it up for 20 h (its key's life at the gateway), then an "
            "operator checks it at the gateway; the wallet debit is kept meanwhile",
            refund_id=str(refund.id),
            payment_id=str(refund.payment_id),
            gateway=refund.gateway,
        )


def _succeed(refund: Refund, reference: str) -> None:
    with transaction.atomic():
        payment = Payment.objects.select_for_update().get(pk=refund.payment_id)
        won = Refund.objects.filter(pk=refund.pk, status=RefundStatus.PENDING).update(
            status=RefundStatus.SUCCEEDED,
            gateway_reference=reference,
            needs_reconciliation=False,
            updated_at=timezone.now(),
        )
        if not won:
            return  # another worker settled it
        refunded = payment.amount_refunded + refund.amount
        if refunded > payment.amount or payment.status not in REFUNDABLE:
            # A dispute lost while the refund was under way gave the payer money too.
            operator_alert(
                AlertKind.CHARGE_REVERSED,
                f"payment {payment.pk} ({payment.status}): refund {refund.id} and lost "
                f"disputes gave back {refunded} of {payment.amount}: the payer got more "
                "back than was paid",
                payment_id=str(payment.pk),
                gateway=refund.gateway,
            )
            refunded = payment.amount
        if payment.status in REFUNDABLE:
            payment = payment_transition(
                payment_id=payment.pk,
                from_statuses=REFUNDABLE,
                to_status=S.REFUNDED if refunded == payment.amount else S.PARTIALLY_REFUNDED,
                reason=f"refund {refund.id} of {refund.amount}",
                actor=f"refund:{refund.actor}",
                locked=payment,
                amount_refunded=refunded,
            )
        refund.refresh_from_db()
        _publish(refund, payment, from_status=RefundStatus.PENDING)


def refund_fail(
    refund: Refund, message: str, *, last_error: str = "", only_if_unflagged: bool = False
) -> bool:
    """Fail a pending refund and give the wallet its money back; only when none exists.

    `only_if_unflagged`: not if a try (this job's or another's) may have made it.
    """
    pending = Refund.objects.filter(pk=refund.pk, status=RefundStatus.PENDING)
    if only_if_unflagged:
        pending = pending.filter(needs_reconciliation=False)
    with transaction.atomic():
        failed = pending.update(
            status=RefundStatus.FAILED,
            failure_message=message[:255],
            last_error=last_error or message[:500],
            updated_at=timezone.now(),
        )
        if not failed:
            return False
        refund.refresh_from_db()
        # Subscribers give a wallet debit back (wallets) and tell the wallet app.
        _publish(refund, refund.payment, from_status=RefundStatus.PENDING)
    return True


def _publish(refund: Refund, payment: Payment, *, from_status: str) -> None:
    """The refund's change, in the transaction that writes it (its rows are written)."""
    publish(
        RefundChanged(
            refund=refund,
            payment=payment,
            from_status=from_status,
            to_status=refund.status,
            document=refund_document(refund),
        )
    )
