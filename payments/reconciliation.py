"""Reconciliation: payments whose outcome we do not know are looked up at their gateway.

Run on beat, as a job per kind of work and part of the payments
(`payments_reconcile_publish`). These payments are looked at:

- `processing` for longer than PAYWAVE_RECONCILE_AFTER_SECONDS, or parked (the
  engine could not tell whether a gateway holds a charge): the charge is looked
  up; found, the payment takes its state; certainly absent, processing resumes
  (retries, then fallback); still unknown, the payment stays parked.
- `awaiting_payment` PIX charges whose look is due (`next_attempt_at`): paid at the
  gateway (the callback was lost) becomes `succeeded`; still waiting, the charge is
  looked at again after as long as it has waited so far, between
  PAYWAVE_PIX_CHECK_FIRST_SECONDS and PAYWAVE_PIX_CHECK_MAX_SECONDS.
- `awaiting_payment` PIX charges past their expiry: paid after all (a lost
  callback) becomes `succeeded`, otherwise the charge is cancelled at the
  gateway and the payment `expired`.

Refunds the gateway may hold (`needs_reconciliation`: an ambiguous try or a
"pending" answer) are looked up by their own idempotency key once the worker has
parked them or lost their job, and settled `succeeded` or `failed` as the gateway
says; while it cannot say, they stay parked (`refunds_reconcile`).
"""

import logging
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import partial, reduce
from operator import or_
from typing import Any

from django.conf import settings
from django.db import DatabaseError, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from gateways.base import (
    PAID_CHARGE_STATUSES,
    ChargeNotFound,
    ChargeResult,
    ChargeStatus,
    Declined,
    GatewayError,
    RefundStatus,
)
from gateways.models import Gateway
from gateways.registry import adapter_for
from gateways.selectors import gateway_routed
from gateways.table import gateway_table
from paywave.jobs import token_swap
from paywave.observability.alerts import AlertKind, operator_alert
from paywave.observability.metrics import pix_checks_start_at_zero, record_pix_check

from .approvals import ApprovalUnreadable, approval_settle
from .dispatch import payment_dispatch, reconcile_part_dispatch
from .models import (
    AttemptOutcome,
    FailureCode,
    ParkedReason,
    Payment,
    PaymentMethod,
    Refund,
)
from .models import PaymentStatus as S
from .processing import (
    LookupInconclusive,
    attempt_mark_lost,
    charge_lookup,
    charge_result_apply,
    payment_park,
    payment_settle_paid,
)
from .refunds import (
    KEY_FORGOTTEN,
    REFUND_LOOKUP_WINDOW,
    refund_apply_result,
    refund_ask_gateway,
    refund_fail,
    refund_park,
)
from .transitions import TransitionConflict, payment_note, payment_transition

logger = logging.getLogger(__name__)

ACTOR = "reconciliation"
BATCH = 200


def _tally(
    work: Iterable[tuple[Callable[[Any], str], Any]],
    *,
    what: str,
    id_field: str,
    fields: dict[str, str] | None = None,
) -> dict[str, int]:
    """Run each (reconcile_one, item); a count per verdict, logged with `fields`. One
    item's surprise is logged as an "error" verdict and never stops the others."""
    counts: dict[str, int] = {}
    for reconcile_one, item in work:
        try:
            verdict = reconcile_one(item)
        except Exception:
            logger.exception("%s failed", what, extra={id_field: str(item.id)})
            verdict = "error"
        counts[verdict] = counts.get(verdict, 0) + 1
    if counts:
        logger.info("%s: %s", what, counts, extra={"reconciliation": counts, **(fields or {})})
    return counts


@dataclass(frozen=True)
class _Due:
    """One kind of reconciliation's work: what looks one payment up, the payments due
    now, the field they are taken by (oldest first), and how long after that field's
    time a payment falls due."""

    reconcile_one: Callable[[Payment], str]
    payments: QuerySet[Payment]
    by: str
    after: timedelta = timedelta(0)


def _due(now: datetime) -> dict[str, _Due]:
    """Reconciliation's work by kind, in the order a run takes it; parked payments left
    out (they are in `paywave_payments_parked`; a run adds them: `payments_reconcile`)."""
    stuck_after = timedelta(seconds=settings.PAYWAVE_RECONCILE_AFTER_SECONDS)
    abandoned_after = timedelta(seconds=settings.PAYWAVE_ACTION_TIMEOUT_SECONDS)
    unflagged = Payment.objects.filter(needs_reconciliation=False)
    awaiting = unflagged.filter(status=S.AWAITING_PAYMENT)
    waiting = unflagged.filter(status=S.REQUIRES_ACTION)
    return {
        "processing_stuck": _Due(
            payment_reconcile_processing,
            unflagged.filter(status=S.PROCESSING, updated_at__lt=now - stuck_after),
            "updated_at",
            stuck_after,
        ),
        # Flagged ones (paid for another amount, or reversed) wait for a person.
        "pix_expired": _Due(
            payment_reconcile_expired_pix, awaiting.filter(pix_expires_at__lt=now), "pix_expires_at"
        ),
        "pix_check": _Due(
            payment_check_waiting_pix,
            awaiting.filter(next_attempt_at__lte=now, pix_expires_at__gte=now),
            "next_attempt_at",
        ),
        "action_abandoned": _Due(
            payment_reconcile_abandoned,
            waiting.exclude(method=PaymentMethod.PAYPAL).filter(
                updated_at__lt=now - abandoned_after
            ),
            "updated_at",
            abandoned_after,
        ),
        # PayPal: every order waiting for its payer is read once per poll interval.
        "approval": _Due(
            payment_reconcile_approval,
            waiting.filter(method=PaymentMethod.PAYPAL, next_attempt_at__lte=now),
            "next_attempt_at",
        ),
    }


def reconciliation_overdue_seconds() -> dict[str, float]:
    """Per kind, how long the oldest payment due for reconciliation has waited past its
    time (0 when none): each run takes at most BATCH of each kind and part, so a kind whose
    payments fall due faster falls behind; so does one whose gateway cannot answer. One
    read per kind, on an index of its status."""
    now = timezone.now()
    overdue = {}
    for kind, due in _due(now).items():
        oldest = due.payments.order_by(due.by).values_list(due.by, flat=True).first()
        waited = (now - (oldest + due.after)).total_seconds() if oldest else 0.0
        overdue[kind] = max(waited, 0.0)
    return overdue


@dataclass(frozen=True)
class Part:
    """One of `of` parts of the payments, by the last hex digit of their id (random in a
    UUID 4, so the parts are even); `of` divides 16."""

    index: int = 0
    of: int = 1

    def __post_init__(self) -> None:
        if self.of not in PARTS_ALLOWED or not 0 <= self.index < self.of:
            raise ValueError(f"part {self.index} of {self.of}: `of` is one of {PARTS_ALLOWED}")

    def payments(self) -> Q:
        digits = [d for d in "0123456789abcdef" if int(d, 16) % self.of == self.index]
        return reduce(or_, (Q(id__endswith=d) for d in digits)) if self.of > 1 else Q()


PARTS_ALLOWED = (1, 2, 4, 8, 16)
WHOLE = Part()


def payments_reconcile(
    *, kind: str | None = None, part: Part = WHOLE, at: datetime | None = None
) -> dict[str, int]:
    """Reconciliation's work of every kind, or of one, for the payments of `part`, due at
    `at` (now): each run takes at most BATCH of each kind, oldest first, and looks them
    up in turn; a count per verdict. Beat's run publishes it as a job per kind and part
    (`payments_reconcile_publish`), which the workers take side by side; the jobs of a
    run share its time, so that no payment is of two kinds in one run (a PIX charge
    both due for a look and expired)."""
    due = _due(at or timezone.now())
    # Parked because a gateway could not tell: looked up again. Parked for what a gateway
    # did tell (another amount, a reversed charge, an unusable code): left for a person.
    parked = Payment.objects.filter(
        status=S.PROCESSING,
        needs_reconciliation=True,
        parked_reason__in=[ParkedReason.CHARGE_UNCONFIRMED, ""],
    )
    stuck = due["processing_stuck"]
    due["processing_stuck"] = replace(stuck, payments=parked | stuck.payments)
    taken = due if kind is None else {kind: due[kind]}
    work = [
        (each.reconcile_one, payment)
        for each in taken.values()
        for payment in each.payments.filter(part.payments()).order_by(each.by)[:BATCH]
    ]
    run = {"reconciliation_kind": kind or "every", "reconciliation_part": f"{part.index}/{part.of}"}
    return _tally(work, what="reconciliation", id_field="payment_id", fields=run)


def payments_reconcile_publish() -> dict[str, int]:
    """Beat's run: a job for each kind of reconciliation's work and each of
    PAYWAVE_RECONCILE_PARTS parts of the payments, so that that many runs of each kind
    look payments up at once, on whichever workers take them. Each expires with the
    period: a job not started by then is dropped, and the next run's takes its work.
    How many jobs the broker took."""
    parts, period = settings.PAYWAVE_RECONCILE_PARTS, settings.PAYWAVE_RECONCILE_SWEEP_SECONDS
    at = timezone.now()
    published = sum(
        reconcile_part_dispatch(kind, index, parts, at, expires=period)
        for kind in _due(at)
        for index in range(parts)
    )
    return {"published": published}


def payment_reconcile_processing(payment: Payment) -> str:
    """Settle, resume or (keep) park one processing payment; a word saying which."""
    attempts = list(payment.attempts.order_by("id"))
    last = attempts[-1] if attempts else None
    if last and last.outcome == AttemptOutcome.IN_FLIGHT:
        if last.deadline_at and last.deadline_at > timezone.now():
            return "in_flight"
        attempt_mark_lost(last)
        last.outcome = AttemptOutcome.AMBIGUOUS
    if not _take_over(payment):
        return "moved"
    if last is None or last.outcome in (AttemptOutcome.RETRYABLE, AttemptOutcome.MISCONFIGURED):
        return _resume(payment, "its job was lost")
    gateway = gateway_routed(last.gateway)
    if gateway is None:
        payment_park(payment, f"gateway {last.gateway} no longer exists", actor=ACTOR)
        return "parked"
    result: ChargeResult | None  # None: the gateway has no charge for it
    try:
        if last.outcome == AttemptOutcome.PENDING and last.gateway_reference:
            result = adapter_for(gateway).retrieve(last.gateway_reference)
        else:
            result = charge_lookup(gateway, payment)
    except (GatewayError, LookupInconclusive) as exc:
        message = getattr(exc, "message", str(exc))
        payment_park(payment, f"charge at {gateway.code} unknown: {message}", actor=ACTOR)
        return "parked"
    if result is None:
        return _resume(payment, f"no charge at {gateway.code}")
    if result.status == ChargeStatus.PENDING:
        return "pending"
    return charge_result_apply(
        payment,
        gateway,
        result,
        reason=f"reconciled: {gateway.code} reports {result.raw_status}",
        actor=ACTOR,
    )


def _take_over(payment: Payment) -> bool:
    """A new token: any job still queued for this payment becomes stale."""
    payment.dispatch_token = uuid.uuid4()
    return bool(
        Payment.objects.filter(pk=payment.pk, status=S.PROCESSING).update(
            dispatch_token=payment.dispatch_token
        )
    )


def _resume(payment: Payment, why: str) -> str:
    with transaction.atomic():
        # The rule: a payment still processing, with the token it was read with.
        token = token_swap(
            Payment.objects.filter(pk=payment.pk, status=S.PROCESSING),
            field="dispatch_token",
            expected=payment.dispatch_token,
            next_attempt_at=timezone.now(),
            needs_reconciliation=False,
            reconciliation_reason="",
            parked_reason="",
        )
        if token is None:
            return "moved"
        if payment.needs_reconciliation:
            why = f"{why} (was parked: {payment.parked_reason or 'charge_unconfirmed'})"
        payment_note(payment.pk, S.PROCESSING, reason=f"resumed: {why}", actor=ACTOR)
    logger.info("processing resumed: %s", why, extra={"payment_id": str(payment.id)})
    payment_dispatch(payment.id, token)  # if the broker is down, the outbox sweep retries
    return "resumed"


def payment_reconcile_expired_pix(payment: Payment) -> str:
    gateway = gateway_routed(payment.gateway)
    if gateway is None or not payment.gateway_reference:
        return _expire(payment, "expired; no gateway charge to look up")
    adapter = adapter_for(gateway)
    try:
        result = adapter.retrieve(payment.gateway_reference)
    except ChargeNotFound:
        return _expire(payment, f"expired; {gateway.code} has no such charge")
    except GatewayError as exc:
        logger.warning(
            "expired PIX charge not looked up: %s",
            exc.message,
            extra={"payment_id": str(payment.id), "gateway": gateway.code},
        )
        return "unreachable"
    if result.status in PAID_CHARGE_STATUSES:
        return _settle_paid_unheard(payment, gateway, result, ACTOR)
    try:
        adapter.cancel(payment.gateway_reference)
    except GatewayError as exc:  # the gateway expires it on its own; we stop waiting
        logger.info(
            "expired PIX charge not cancelled at the gateway: %s",
            exc.message,
            extra={"payment_id": str(payment.id), "gateway": gateway.code},
        )
    return _expire(payment, f"expired unpaid; {gateway.code} says {result.raw_status}")


def _settle_paid_unheard(
    payment: Payment, gateway: Gateway, result: ChargeResult, actor: str
) -> str:
    """A waiting PIX charge found paid: its callback never settled it."""
    reason = f"reconciled: paid at {gateway.code}, callback missed"
    return payment_settle_paid(payment, gateway, result, reason=reason, actor=actor)


def payment_check_waiting_pix(
    payment: Payment, *, actor: str = ACTOR, when_due: bool = True
) -> str:
    """A PIX charge still waiting for its payer, looked up before its expiry: "succeeded"
    if the payer paid and the callback was lost ("parked" if paid for another amount, or
    given back); otherwise it is looked at again later: "waiting" (not paid yet),
    "not_found", "unreachable" while the gateway cannot be read, "no_gateway", or
    "gateway_<status>" for a charge the gateway already ended. Nothing is cancelled or
    expired here: that is for its expiry (`payment_reconcile_expired_pix`).

    Its next look is taken before the gateway is asked, so a look still waiting on a slow
    gateway is not taken again by the next run ("moved" if another run or a callback took
    the payment first). `when_due=False` (staff) asks whatever the time.
    Counted in `paywave_pix_checks_total`."""
    verdict = _check_waiting_pix(payment, actor, when_due)
    record_pix_check(payment.gateway or "none", verdict, payment_id=payment.id)
    return verdict


def pix_checks_counted_from_zero() -> None:
    """Each PIX gateway's paid-at-the-look count shown at 0 before the first look (a
    worker calls this as it starts); the series are made again on the next start if the
    gateways cannot be read now."""
    try:
        codes = [g.code for g in gateway_table() if PaymentMethod.PIX in g.methods]
    except DatabaseError:
        logger.warning("PIX check counts not started at 0: gateways unreadable", exc_info=True)
        return
    pix_checks_start_at_zero(codes)


def _check_waiting_pix(payment: Payment, actor: str, when_due: bool) -> str:
    mine = Payment.objects.filter(pk=payment.pk, status=S.AWAITING_PAYMENT)
    if when_due:  # nobody took this look since it was read
        mine = mine.filter(next_attempt_at=payment.next_attempt_at)
    if not mine.update(next_attempt_at=_next_pix_check(payment)):
        return "moved"
    gateway = gateway_routed(payment.gateway)
    if gateway is None or not payment.gateway_reference:
        return "no_gateway"
    try:
        result = adapter_for(gateway).retrieve(payment.gateway_reference)
    except ChargeNotFound:
        logger.warning(
            "waiting PIX charge not found at its gateway; its expiry settles it",
            extra={"payment_id": str(payment.id), "gateway": gateway.code},
        )
        return "not_found"
    except GatewayError as exc:
        logger.info(
            "waiting PIX charge not looked up: %s",
            exc.message,
            extra={"payment_id": str(payment.id), "gateway": gateway.code},
        )
        return "unreachable"
    if result.status in PAID_CHARGE_STATUSES:
        return _settle_paid_unheard(payment, gateway, result, actor)
    if result.status in (ChargeStatus.AWAITING_PAYMENT, ChargeStatus.PENDING):
        return "waiting"
    return f"gateway_{result.status}"


def _next_pix_check(payment: Payment) -> datetime:
    """After as long as the code has waited for its payer so far, within the configured
    bounds. It was shown as its charge was made (the moment its expiry counts from), or
    later when reconciliation found a charge whose answer was lost: then the looks are
    further apart than they would be."""
    now = timezone.now()
    expires_at = payment.pix_expires_at
    shown = expires_at - payment.pix_lifetime if expires_at else payment.created_at
    waited = (now - shown).total_seconds()
    first, most = settings.PAYWAVE_PIX_CHECK_FIRST_SECONDS, settings.PAYWAVE_PIX_CHECK_MAX_SECONDS
    return now + timedelta(seconds=min(max(waited, first), most))


def payment_reconcile_abandoned(payment: Payment) -> str:
    """3-D Secure never completed: settle from the gateway, else cancel there and fail."""
    gateway = gateway_routed(payment.gateway)
    if gateway is None:
        return "unreachable"
    adapter = adapter_for(gateway)
    try:
        result = adapter.retrieve(payment.gateway_reference)
        if result.status in PAID_CHARGE_STATUSES:
            return payment_settle_paid(
                payment,
                gateway,
                result,
                reason=f"reconciled: {gateway.code} reports {result.raw_status}, callback missed",
                actor=ACTOR,
            )
        if result.status == ChargeStatus.REQUIRES_ACTION:
            adapter.cancel(payment.gateway_reference)
    except ChargeNotFound:
        pass
    except GatewayError as exc:
        logger.warning(
            "abandoned 3-D Secure payment not looked up: %s",
            exc.message,
            extra={"payment_id": str(payment.id), "gateway": gateway.code},
        )
        return "unreachable"
    return _transition(
        payment,
        S.FAILED,
        "3-D Secure not completed in time; cancelled at the gateway",
        source=S.REQUIRES_ACTION,
        next_action=None,
        failure_code=FailureCode.AUTHENTICATION_ABANDONED,
        failure_message="The card holder did not complete 3-D Secure in time.",
    )


def payment_reconcile_approval(payment: Payment) -> str:
    """A PayPal order waiting for its payer: captured if approved (the return and the
    callback were lost), expired when PayPal says it is still not approved past its time,
    else read again next interval. While PayPal cannot be read it is never expired: a
    capture may have been made whose answer was lost; it stays, visibly past its time."""
    gateway = gateway_routed(payment.gateway)
    verdict = "unreachable"
    if gateway is not None:
        try:
            verdict = approval_settle(payment, gateway, actor=ACTOR, said="reconciled")
        except ApprovalUnreadable as exc:
            logger.warning(
                "order waiting for approval not read: %s",
                exc,
                extra={"payment_id": str(payment.id), "gateway": gateway.code},
            )
    if verdict in ("waiting", "pending", "declined_approve_again", "unreachable"):
        Payment.objects.filter(pk=payment.pk, status=S.REQUIRES_ACTION).update(
            next_attempt_at=timezone.now()
            + timedelta(seconds=settings.PAYWAVE_APPROVAL_POLL_SECONDS)
        )
    return verdict


def _expire(payment: Payment, reason: str) -> str:
    return _transition(
        payment,
        S.EXPIRED,
        reason,
        failure_code=FailureCode.EXPIRED,
        failure_message="The PIX charge expired before it was paid.",
    )


def _transition(
    payment: Payment, to_status: str, reason: str, source: str = S.AWAITING_PAYMENT, **changes: Any
) -> str:
    try:
        payment_transition(
            payment_id=payment.pk,
            from_statuses=[source],
            to_status=to_status,
            reason=reason,
            actor=ACTOR,
            **changes,
        )
    except TransitionConflict:
        return "moved"
    return str(to_status)


def payment_withdraw_charge(payment_id: Any) -> bool:
    """Cancel a cancelled payment's charge at its gateway; False to try again later.

    If the payer paid in the meantime, the money arrived for a cancelled payment:
    an operator alert says so (refund the payer or reinstate the payment).
    """
    payment = Payment.objects.filter(pk=payment_id, status=S.CANCELED).first()
    if payment is None or not payment.gateway_reference:
        return True
    gateway = gateway_routed(payment.gateway)
    if gateway is None:
        return True
    adapter = adapter_for(gateway)
    try:
        result = adapter.retrieve(payment.gateway_reference)
        if result.status == ChargeStatus.SUCCEEDED:
            operator_alert(
                AlertKind.PAID_AFTER_CANCEL,
                f"payment {payment.id} was cancelled but {gateway.code} reports it paid: "
                "refund the payer or reinstate the payment",
                payment_id=str(payment.id),
                gateway=gateway.code,
            )
            return True
        if result.status in (ChargeStatus.AWAITING_PAYMENT, ChargeStatus.PENDING):
            adapter.cancel(payment.gateway_reference)
    except ChargeNotFound:
        return True
    except GatewayError as exc:
        logger.warning(
            "gateway cancel failed: %s",
            exc.message,
            extra={"payment_id": str(payment.id), "gateway": gateway.code},
        )
        return False
    return True


def refunds_reconcile() -> dict[str, int]:
    """Look up the refunds whose outcome is unknown; a count per verdict.

    Parked ones, and flagged ones no worker touched for PAYWAVE_RECONCILE_AFTER_SECONDS,
    while their key lives at the gateway (REFUND_LOOKUP_WINDOW); flagged ones past it
    are parked (an operator alert) and never sent again.
    """
    now = timezone.now()
    stuck_before = now - timedelta(seconds=settings.PAYWAVE_RECONCILE_AFTER_SECONDS)
    window_start = now - REFUND_LOOKUP_WINDOW
    unknown = Refund.objects.select_related("payment").filter(
        status=RefundStatus.PENDING, needs_reconciliation=True
    )
    expired = unknown.filter(created_at__lt=window_start, parked_at__isnull=True)
    lookups = unknown.filter(created_at__gte=window_start).filter(
        Q(parked_at__isnull=False) | Q(updated_at__lt=stuck_before)
    )
    work: list[tuple[Callable[[Any], str], Any]] = [
        (_refund_expired, refund) for refund in expired[:BATCH]
    ]
    gateways = Gateway.objects.in_bulk(field_name="code")
    work += [
        (partial(refund_reconcile, gateways=gateways), refund)
        for refund in lookups.order_by("updated_at")[:BATCH]
    ]
    return _tally(work, what="refund reconciliation", id_field="refund_id")


def _refund_expired(refund: Refund) -> str:
    refund_park(refund, KEY_FORGOTTEN)
    return "parked"


def refund_reconcile(refund: Refund, *, gateways: dict[str, Gateway] | None = None) -> str:
    """Settle one refund from what its gateway holds under its key; a word saying how."""
    if gateways is None:
        gateways = Gateway.objects.in_bulk([refund.gateway], field_name="code")
    gateway = gateways.get(refund.gateway)
    if gateway is None:
        refund_park(refund, f"gateway {refund.gateway} is no longer configured")
        return "parked"
    try:
        result = refund_ask_gateway(refund, gateway)
    except Declined as exc:
        refund_fail(refund, f"The gateway refused the refund ({exc.code or exc.message}).")
        return str(RefundStatus.FAILED)
    except GatewayError as exc:
        # Touched, so the refunds behind it in the batch order get their turn next time.
        Refund.objects.filter(pk=refund.pk, status=RefundStatus.PENDING).update(
            last_error=f"reconciliation: {type(exc).__name__}: {exc.message}"[:500],
            updated_at=timezone.now(),
        )
        return "parked"
    return str(refund_apply_result(refund, result))
