"""Charging a payment at its gateways: one step per job, never twice, never lost.

A job carries the payment id and the payment's `dispatch_token`; only a job with
the current token may take a step, so a duplicate or stale delivery does nothing.
A step is: decide where to charge, record the attempt as in flight (the unique
attempt row is what makes two concurrent jobs unable to make the same call),
call the gateway, record the outcome, and either finish the payment or hand
back the next step (a new token and a countdown) for the task to publish.

Retries on one gateway reuse its idempotency key and send exactly the parameters
of the first call there (frozen on the attempt), so a charge that was made but
not answered is returned, not repeated. Before the engine leaves a gateway that
may hold a charge (an ambiguous outcome on any try there), it looks the charge
up. When the gateway cannot tell:

- a card payment is parked for reconciliation rather than charged elsewhere;
- a PIX payment moves on to the next PIX gateway at once: a PIX charge moves no
  money until a payer pays the code they were shown, and a code whose answer was
  lost was never shown. The possible charge is recorded as an orphan, withdrawn
  as soon as that gateway answers again (payments/orphans.py).
"""

import contextlib
import copy
import enum
import logging
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from gateways.base import (
    LIVE_CHARGE_STATUSES,
    REVERSED_CHARGE_STATUSES,
    Ambiguous,
    ChargeRequest,
    ChargeResult,
    ChargeStatus,
    Declined,
    GatewayError,
    Misconfigured,
    Payer,
    Retryable,
)
from gateways.circuit import (
    CircuitPass,
    circuit_pass,
    circuit_record_failure,
    circuit_record_success,
)
from gateways.models import Gateway
from gateways.pix.brcode import BRCodeError, parse
from gateways.registry import adapter_for
from gateways.selectors import gateway_candidates, gateway_routed
from paywave.backoff import backoff_delay
from paywave.jobs import token_swap
from paywave.observability.alerts import AlertKind, operator_alert
from paywave.observability.log_context import log_context
from paywave.observability.metrics import record_attempt
from paywave.queries import ReadShape, compiled_read, insert_row, one_or_none, update_rows

from .cache import payment_cache_put
from .charges import (
    charge_params_text,
    charge_request_from_params,
    frozen_charge_params,
    idempotency_key_for,
    settlement_problem,
)
from .hosted_tokens import hosted_return_url
from .models import (
    AttemptOutcome,
    FailureCode,
    ParkedReason,
    Payment,
    PaymentAttempt,
    PaymentMethod,
)
from .models import PaymentStatus as S
from .orphans import orphan_record
from .redirects import awaiting_approval_changes, payer_cancel_url, payer_return_url
from .serializers import payment_document
from .transitions import (
    TransitionConflict,
    payment_note,
    payment_transition,
    payment_transition_if_unchanged,
)

logger = logging.getLogger(__name__)

ACTOR = "processing"
# Outcomes after which the same gateway may be tried again.
_RETRY_SAME_GATEWAY = frozenset({AttemptOutcome.RETRYABLE, AttemptOutcome.AMBIGUOUS})
# Outcomes after which the gateway may hold a charge we do not know about.
_MAY_HOLD_CHARGE = frozenset({AttemptOutcome.AMBIGUOUS, AttemptOutcome.IN_FLIGHT})
_DECLINED_CODES: dict[str, str] = {
    PaymentMethod.CARD: FailureCode.CARD_DECLINED,
    PaymentMethod.PAYPAL: FailureCode.PAYMENT_DECLINED,
}


@dataclass(frozen=True)
class NextStep:
    """Publish the payment's job again: with this token, after this many seconds."""

    token: str
    countdown: float


class LookupInconclusive(Exception):
    """The gateway could not say whether it holds the charge."""


class Lookup(enum.Enum):
    """What looking a possible charge up before leaving its gateway found."""

    ABSENT = "absent"  # the gateway certainly holds no charge: fallback is safe
    SETTLED = "settled"  # it holds one: the payment took its state (or was parked)
    UNKNOWN = "unknown"  # it could not tell


def charge_request_for(
    payment: Payment, gateway_code: str, attempts: list[PaymentAttempt] | None = None
) -> ChargeRequest:
    """The request for this gateway: exactly what was first sent there, if anything was.

    A wallet app may edit a payment's description later; a retry or a lookup under the
    same idempotency key must not send other parameters (a gateway would refuse the key,
    or worse, take the edit for another charge).
    """
    frozen = frozen_charge_params(payment, gateway_code, attempts)
    if frozen:
        return charge_request_from_params(frozen)
    return_url, cancel_url = payment.return_url, ""
    if payment.method == PaymentMethod.PAYPAL:  # the payer comes back through PayWave
        return_url, cancel_url = payer_return_url(payment), payer_cancel_url(payment)
    elif payment.method == PaymentMethod.CARD and payment.hosted:  # ... to the hosted page
        return_url = hosted_return_url(payment)
    return ChargeRequest(
        payment_id=str(payment.id),
        amount=payment.amount,
        currency=payment.currency,
        method=payment.method,
        payer=Payer(
            name=payment.payer_name,
            country=payment.payer_country,
            email=payment.payer_email,
            tax_id=payment.payer_tax_id,
        ),
        idempotency_key=idempotency_key_for(payment, gateway_code),
        card_token=payment.card_token,
        pix_expires_in=int(payment.pix_lifetime.total_seconds()),
        description=payment.description,
        return_url=return_url,
        cancel_url=cancel_url,
    )


def retry_delay(tries_so_far: int) -> float:
    """Seconds before the next try on a gateway that has failed `tries_so_far` times."""
    return backoff_delay(
        tries_so_far,
        base=settings.PAYWAVE_RETRY_BASE_SECONDS,
        factor=settings.PAYWAVE_RETRY_FACTOR,
        jitter=settings.PAYWAVE_RETRY_JITTER,
    )


# Every step's first read, compiled once per connection (paywave.queries): building
# the SQL of a plain read of a payment, its many columns quoted one by one, cost more
# CPU than running it.
_PAYMENT_MARK = uuid.UUID("0c4e7f3a-58d2-4b5e-9a61-7d2c3e9f1b84")
_PAYMENT_BY_ID = ReadShape(
    Payment.objects.filter(pk=_PAYMENT_MARK).order_by()[:1], pk=_PAYMENT_MARK
)


def payment_process_step(payment_id: Any, token: str | None) -> NextStep | None:
    """Take the payment's next processing step; the next one to publish, if any."""
    payment: Payment | None = compiled_read(_PAYMENT_BY_ID).run(pk=payment_id)
    if payment is None:
        logger.warning("job for an unknown payment dropped", extra={"payment_id": str(payment_id)})
        return None
    if token is not None and str(payment.dispatch_token) != token:
        return None  # a duplicate or superseded job
    if payment.status not in (S.PENDING, S.PROCESSING) or payment.needs_reconciliation:
        return None

    # A pending payment has no attempt: its first is written as it becomes processing.
    attempts = [] if payment.status == S.PENDING else list(payment.attempts.order_by("id"))
    if attempts and attempts[-1].outcome == AttemptOutcome.IN_FLIGHT:
        in_flight = attempts[-1]
        now = timezone.now()
        if in_flight.deadline_at and in_flight.deadline_at > now:
            # Another job is making this call, or its worker just died: look again later.
            wait = (in_flight.deadline_at - now).total_seconds() + 0.5
            return NextStep(str(payment.dispatch_token), wait)
        attempt_mark_lost(in_flight)
        attempts = list(payment.attempts.order_by("id"))
    if attempts and attempts[-1].outcome == AttemptOutcome.PENDING:
        # A charge taken but undecided: its callback or reconciliation settles it, and
        # nothing is charged elsewhere meanwhile.
        _pending_charge_reread(payment, attempts[-1])
        return None

    gateway, number, let_through = _choose(payment, attempts)
    if gateway is None:
        return None
    return _attempt(payment, gateway, number, attempts, let_through)


def attempt_mark_lost(attempt: PaymentAttempt) -> None:
    """An attempt whose worker died mid-call: the request may have been sent."""
    PaymentAttempt.objects.filter(pk=attempt.pk, outcome=AttemptOutcome.IN_FLIGHT).update(
        outcome=AttemptOutcome.AMBIGUOUS,
        error_class="WorkerLost",
        error_message="the worker stopped during the call; the charge may exist",
    )


def _choose(
    payment: Payment, attempts: list[PaymentAttempt]
) -> tuple[Gateway | None, int, CircuitPass | None]:
    """The gateway and attempt number of the next call, and its circuit's pass (None: it
    goes though its circuit is open); (None, 0, None) if the payment was settled."""
    tries: dict[str, int] = {}
    for attempt in attempts:
        tries[attempt.gateway] = tries.get(attempt.gateway, 0) + 1
    if attempts:
        last = attempts[-1]
        current = gateway_routed(last.gateway, enabled_only=True)
        if (
            current is not None
            and last.outcome in _RETRY_SAME_GATEWAY
            and tries[current.code] < settings.PAYWAVE_TRIES_PER_GATEWAY
        ):
            let_through = circuit_pass(current.code)
            if let_through is not None or not _untried(payment, tries):
                return current, tries[current.code] + 1, let_through
        # Any try here may have made a charge, not only the last one (a timeout, then 503s).
        here = [a for a in attempts if a.gateway == last.gateway]
        if any(a.outcome in _MAY_HOLD_CHARGE for a in here):
            lookup = _settle_from_lookup(payment, last.gateway, attempts)
            if lookup is Lookup.SETTLED:
                return None, 0, None
            if lookup is Lookup.UNKNOWN:
                if payment.method != PaymentMethod.PIX:
                    return None, 0, None  # parked: a card may have been charged there
                _leave_behind(payment, last.gateway, here)

    candidates = _untried(payment, tries)
    if not candidates:
        _fail_exhausted(payment, attempts)
        return None, 0, None
    for gateway in candidates:
        let_through = circuit_pass(gateway.code)
        if let_through is not None:
            return gateway, 1, let_through
    return candidates[0], 1, None  # every circuit is open: still try rather than fail untried


def _pending_charge_reread(payment: Payment, attempt: PaymentAttempt) -> None:
    """The last call left a charge taken but undecided: read it again, never move past it.

    Decided by now: the payment takes that state. Still undecided, or unreadable: it keeps
    waiting, not due again before reconciliation's time (which reads it too, and parks
    what it cannot read).
    """
    gateway = gateway_routed(attempt.gateway)
    if gateway is not None and attempt.gateway_reference:
        try:
            result = adapter_for(gateway).retrieve(attempt.gateway_reference)
        except Exception:
            logger.warning(
                "a pending charge could not be read; the payment keeps waiting",
                extra={"payment_id": str(payment.id), "gateway": gateway.code},
                exc_info=True,
            )
        else:
            reason = f"{gateway.code} reports {result.raw_status or result.status.value}"
            charge_result_apply(payment, gateway, result, reason=reason)
            return
    Payment.objects.filter(pk=payment.pk, status=S.PROCESSING).update(
        next_attempt_at=_pending_recheck_at()
    )


def _pending_recheck_at() -> datetime:
    return timezone.now() + timedelta(seconds=settings.PAYWAVE_RECONCILE_AFTER_SECONDS)


def _leave_behind(payment: Payment, gateway_code: str, attempts: list[PaymentAttempt]) -> None:
    """A PIX charge that may exist at a gateway the payment leaves: withdraw it later."""
    references = [a.gateway_reference for a in attempts if a.gateway_reference]
    orphan_record(
        payment,
        gateway_code,
        idempotency_key=attempts[0].idempotency_key,
        charge_params=frozen_charge_params(payment, gateway_code, attempts),
        reference=references[-1] if references else "",
        reason="the tries ended with no usable answer and the lookup could not tell",
    )
    logger.warning(
        "PIX fallback past an unanswered gateway: its possible charge is an orphan to withdraw",
        extra={"payment_id": str(payment.id), "gateway": gateway_code},
    )


def _untried(payment: Payment, tries: dict[str, int]) -> list[Gateway]:
    candidates = gateway_candidates(
        method=payment.method, currency=payment.currency, country=payment.payer_country
    )
    return [gateway for gateway in candidates if gateway.code not in tries]


def _settle_from_lookup(
    payment: Payment, gateway_code: str, attempts: list[PaymentAttempt]
) -> Lookup:
    """Before leaving a gateway that may hold a charge: look it up.

    A card payment is parked when the gateway cannot tell; a PIX payment is not (the
    caller falls back and leaves an orphan behind).
    """
    gateway = gateway_routed(gateway_code)
    try:
        if gateway is None:
            raise LookupInconclusive(f"gateway {gateway_code} no longer exists")
        result = charge_lookup(gateway, payment, attempts)
    except LookupInconclusive as exc:
        if payment.method != PaymentMethod.PIX:
            payment_park(
                payment, f"charge at {gateway_code} unknown: {exc}", ParkedReason.CHARGE_UNCONFIRMED
            )
        return Lookup.UNKNOWN
    if result is None:
        return Lookup.ABSENT
    reason = f"found at {gateway_code} after a lost answer"
    assert gateway is not None
    charge_result_apply(payment, gateway, result, reason=reason)
    return Lookup.SETTLED


def charge_lookup(
    gateway: Gateway, payment: Payment, attempts: list[PaymentAttempt] | None = None
) -> ChargeResult | None:
    """The charge this payment's idempotency key made at the gateway, or None if there is none.

    Asked with exactly the parameters the first call there sent.
    """
    request = charge_request_for(payment, gateway.code, attempts)
    try:
        return adapter_for(gateway).find_charge(request)
    except GatewayError as exc:
        raise LookupInconclusive(f"{type(exc).__name__}: {exc.message}") from exc
    except Exception as exc:  # a bug or an answer we cannot read: unknown, not "none"
        logger.exception("charge lookup failed unexpectedly", extra={"gateway": gateway.code})
        raise LookupInconclusive(f"unexpected {type(exc).__name__}") from exc


def _attempt(
    payment: Payment,
    gateway: Gateway,
    number: int,
    attempts: list[PaymentAttempt],
    let_through: CircuitPass | None = None,
) -> NextStep | None:
    # Every line of the attempt (ours, the SDK's, the alerts') names the gateway and the try.
    with log_context(payment_id=str(payment.id), gateway=gateway.code, attempt=number):
        return _attempt_in_context(payment, gateway, number, attempts, let_through)


def _attempt_in_context(
    payment: Payment,
    gateway: Gateway,
    number: int,
    attempts: list[PaymentAttempt],
    let_through: CircuitPass | None = None,
) -> NextStep | None:
    request = charge_request_for(payment, gateway.code, attempts)
    attempt = _claim_attempt(payment, gateway, number, request, attempts)
    if attempt is None:
        return None
    started = time.monotonic()
    result: ChargeResult | None = None
    error: Exception | None = None
    try:
        result = adapter_for(gateway).charge(request)
    except GatewayError as exc:
        error = exc
    except Exception as exc:  # an unexpected failure after the request may have gone out
        logger.exception(
            "gateway call failed unexpectedly",
            extra={"payment_id": str(payment.id), "gateway": gateway.code},
        )
        error = Ambiguous(f"unexpected {type(exc).__name__} during the call")
    latency_ms = int((time.monotonic() - started) * 1000)
    if result is not None:
        return _on_result(
            payment, gateway, attempt, result, latency_ms, attempts, let_through=let_through
        )
    assert error is not None
    return _on_error(payment, gateway, attempt, error, latency_ms, let_through=let_through)


class _Moved(Exception):
    """The payment's row is no longer the version the job read."""


def _claim_attempt(
    payment: Payment,
    gateway: Gateway,
    number: int,
    request: ChargeRequest,
    attempts: list[PaymentAttempt],
) -> PaymentAttempt | None:
    """Write the attempt as in flight, if this job still owns the payment's next step.

    `attempts`: the payment's attempts as the job counted them. While the payment's row
    is the version the job read, no attempt was made since (each is written with a new
    version): one guarded UPDATE claims it. Otherwise the row is locked and looked at.
    """
    try:
        with transaction.atomic():
            in_flight = _in_flight(payment, gateway, number, request)
            # A duplicate job's attempt of the same number makes this INSERT fail.
            insert_row(in_flight)
            if not _claim_unchanged(payment, in_flight, attempts):
                raise _Moved
        return in_flight
    except (_Moved, IntegrityError):
        pass
    return _claim_attempt_locked(payment, gateway, number, request, attempts)


def _in_flight(
    payment: Payment, gateway: Gateway, number: int, request: ChargeRequest
) -> PaymentAttempt:
    # Past this the call has certainly returned or timed out.
    longest_call = gateway.timeout_ms / 1000 * adapter_for(gateway).requests_per_charge + 2
    return PaymentAttempt(
        payment=payment,
        gateway=gateway.code,
        number=number,
        idempotency_key=request.idempotency_key,
        outcome=AttemptOutcome.IN_FLIGHT,
        request_summary=_request_summary(payment),
        charge_params=charge_params_text(request),
        deadline_at=timezone.now() + timedelta(seconds=longest_call),
    )


def _claim_unchanged(
    payment: Payment, in_flight: PaymentAttempt, attempts: list[PaymentAttempt]
) -> bool:
    """Show the attempt with a new version of the payment if the row is still the one read."""
    guards = {"dispatch_token": payment.dispatch_token, "needs_reconciliation": False}
    if payment.status == S.PENDING:  # the first attempt: one write shows both
        return payment_transition_if_unchanged(
            payment,
            to_status=S.PROCESSING,
            reason="picked up for charging",
            actor=ACTOR,
            attempts=[in_flight],  # a pending payment has no attempt before its first
            guards=guards,
        )
    return _touch_row(
        payment,
        unless_moved={"status": payment.status, "version": payment.version, **guards},
        attempts=[*attempts, in_flight],
    )


def _claim_attempt_locked(
    payment: Payment,
    gateway: Gateway,
    number: int,
    request: ChargeRequest,
    attempts: list[PaymentAttempt],
) -> PaymentAttempt | None:
    with transaction.atomic():
        locked = one_or_none(
            Payment.objects.select_for_update().filter(
                pk=payment.pk,
                status__in=[S.PENDING, S.PROCESSING],
                dispatch_token=payment.dispatch_token,
                needs_reconciliation=False,
            )
        )
        if locked is None:
            return None
        in_flight = _in_flight(payment, gateway, number, request)
        if _attempted_since(locked, read=payment, counted=attempts):
            return None  # another job with this token made the step's attempt: it owns it
        insert_row(in_flight)
        if locked.status == S.PENDING:  # the first attempt: one write shows both
            payment_transition(
                payment_id=payment.pk,
                from_statuses=[S.PENDING],
                to_status=S.PROCESSING,
                reason="picked up for charging",
                actor=ACTOR,
                locked=locked,
                attempts=[in_flight],  # a pending payment has no attempt before its first
            )
        else:
            _touch_row(locked)
    return in_flight


def _attempted_since(locked: Payment, *, read: Payment, counted: list[PaymentAttempt]) -> bool:
    """Has an attempt been made since the job read the payment and counted its attempts?

    Every attempt is inserted here, under this lock, with a new version of its payment
    (a transition or a touch). So while the locked payment is the version the job read,
    none was; after another change (an edit, a finished attempt), they are counted again.
    A duplicate job (a redelivered message, a sweep's republish) carries the same token
    and may have chosen another gateway: whatever it chose, it must not call once another
    job's attempt is out.
    """
    if locked.version == read.version:
        return False
    return PaymentAttempt.objects.filter(payment_id=locked.pk).count() != len(counted)


def _touch(payment_id: Any) -> None:
    """A change the payment's document shows (attempts): new version, cache rewritten."""
    with transaction.atomic():
        _touch_row(Payment.objects.select_for_update().get(pk=payment_id))


def _touch_row(
    payment: Payment,
    *,
    unless_moved: dict[str, Any] | None = None,
    attempts: list[PaymentAttempt] | None = None,
) -> bool:
    """A new version of the payment (its document changed: attempts), the cache rewritten
    once it commits. `payment`: locked by the caller, or, with `unless_moved`, its unlocked
    copy, written only while the row still has those values (False, nothing written, if
    not). `attempts`: the payment's, if the caller knows them."""
    now = timezone.now()
    touched = Payment.objects.filter(pk=payment.pk, **(unless_moved or {})).update(
        version=F("version") + 1, updated_at=now
    )
    if touched != 1:
        return False
    payment.version += 1
    payment.updated_at = now
    written = copy.copy(payment)  # the caller's copy may change again before this commits
    document = payment_document(written, attempts)
    transaction.on_commit(lambda: payment_cache_put(written, document), robust=True)
    return True


def _request_summary(payment: Payment) -> dict[str, Any]:
    return {"amount": payment.amount, "currency": payment.currency, "method": payment.method}


def _finish_attempt(attempt: PaymentAttempt, latency_ms: int, **fields: Any) -> None:
    """Record the call's outcome; the caller's transaction also shows it (touch or transition)."""
    update_rows(
        PaymentAttempt, where={"pk": attempt.pk}, values={"latency_ms": latency_ms, **fields}
    )
    for name, value in {"latency_ms": latency_ms, **fields}.items():
        setattr(attempt, name, value)  # the document shows the attempt as written
    transaction.on_commit(
        lambda: record_attempt(
            attempt.gateway,
            fields["outcome"],
            latency_ms / 1000,
            error_class=fields.get("error_class", ""),
            payment_id=attempt.payment_id,
            attempt=attempt.number,
        ),
        robust=True,
    )


def _on_result(
    payment: Payment,
    gateway: Gateway,
    attempt: PaymentAttempt,
    result: ChargeResult,
    latency_ms: int,
    earlier: list[PaymentAttempt] | None = None,
    *,
    let_through: CircuitPass | None = None,
) -> NextStep | None:
    """`earlier`: the payment's attempts before this one, as the job that made this one
    counted them (the payment as it holds it is then written without a lock).
    `let_through`: the circuit's pass of the call, if it had one."""
    circuit_record_success(gateway.code, let_through=let_through)
    summary = {"status": result.status.value, "raw_status": result.raw_status}
    if result.status in (ChargeStatus.FAILED, ChargeStatus.CANCELED, ChargeStatus.EXPIRED):
        declined = Declined(
            result.failure_message or f"the gateway answered {result.raw_status}",
            code=result.failure_code,
        )
        with transaction.atomic():
            _finish_attempt(
                attempt,
                latency_ms,
                outcome=AttemptOutcome.DECLINED,
                error_class="Declined",
                error_message=declined.message[:500],
                gateway_reference=result.reference,
                response_summary=summary,
            )
            _fail_declined(payment, gateway, declined)
        return None
    outcome = (
        AttemptOutcome.PENDING
        if result.status == ChargeStatus.PENDING
        else (AttemptOutcome.SUCCEEDED)
    )
    with transaction.atomic():
        _finish_attempt(
            attempt,
            latency_ms,
            outcome=outcome,
            gateway_reference=result.reference,
            response_summary=summary,
        )
        charge_result_apply(
            payment,
            gateway,
            result,
            reason=f"charged at {gateway.code}",
            known_attempts=None if earlier is None else [*earlier, attempt],
        )
    return None


def _on_error(
    payment: Payment,
    gateway: Gateway,
    attempt: PaymentAttempt,
    error: Exception,
    latency_ms: int,
    *,
    let_through: CircuitPass | None = None,
) -> NextStep | None:
    assert isinstance(error, GatewayError)
    outcome = (
        AttemptOutcome(error.outcome)
        if error.outcome in AttemptOutcome.values
        else (AttemptOutcome.AMBIGUOUS)
    )
    log_extra: dict[str, Any] = {
        "payment_id": str(payment.id),
        "gateway": gateway.code,
        "attempt": attempt.number,
    }
    finished = {
        "outcome": outcome,
        "error_class": type(error).__name__,
        "error_message": error.message[:500],
    }
    if isinstance(error, Declined):
        with transaction.atomic():
            _finish_attempt(attempt, latency_ms, **finished)
            _fail_declined(payment, gateway, error)
        # The gateway works; the payer was refused.
        circuit_record_success(gateway.code, let_through=let_through)
        return None
    retry_here = isinstance(error, Retryable | Ambiguous) and (
        attempt.number < settings.PAYWAVE_TRIES_PER_GATEWAY
    )
    with transaction.atomic():
        _finish_attempt(attempt, latency_ms, **finished)
        _touch(payment.pk)
        step = _schedule(payment, retry_delay(attempt.number) if retry_here else 0.0)
    circuit_record_failure(gateway.code)
    if isinstance(error, Misconfigured):
        operator_alert(
            AlertKind.GATEWAY_MISCONFIGURED,
            f"gateway {gateway.code} refused our credentials: {error.message}",
            **log_extra,
        )
    logger.warning(
        "gateway attempt failed: %s", error.message, extra={**log_extra, "outcome": outcome}
    )
    return step


def _schedule(payment: Payment, countdown: float) -> NextStep | None:
    """Hand the next step to a new job: a fresh token makes every older job stale.

    The rule: a payment still processing, with the token this job was handed.
    """
    token = token_swap(
        Payment.objects.filter(pk=payment.pk, status=S.PROCESSING),
        field="dispatch_token",
        expected=payment.dispatch_token,
        next_attempt_at=timezone.now() + timedelta(seconds=countdown),
    )
    return NextStep(str(token), countdown) if token else None


def charge_result_apply(
    payment: Payment,
    gateway: Gateway,
    result: ChargeResult,
    *,
    reason: str,
    actor: str = ACTOR,
    known_attempts: list[PaymentAttempt] | None = None,
) -> str:
    """Move a processing payment to what the gateway says of its charge; a word saying how:
    "settled", "pending" (taken, undecided), "parked" or "moved" (someone else moved it).

    `known_attempts`: given by the job that made the payment's latest write and holds it
    as written, with every attempt: its copy is written over while the row is still that
    version, without a lock or a read (payment_transition's `current`).
    """
    if result.status in REVERSED_CHARGE_STATUSES:
        _park_with_alert(
            payment,
            gateway,
            AlertKind.CHARGE_REVERSED,
            ParkedReason.CHARGE_REVERSED,
            f"the charge was paid, then {result.raw_status}",
        )
        return "parked"
    settles = result.status in LIVE_CHARGE_STATUSES and result.status != ChargeStatus.PENDING
    if settles and (problem := settlement_problem(payment, result)):
        _park_with_alert(
            payment, gateway, AlertKind.AMOUNT_MISMATCH, ParkedReason.AMOUNT_MISMATCH, problem
        )
        return "parked"
    common: dict[str, Any] = {
        "gateway": gateway.code,
        "gateway_reference": result.reference,
        "needs_reconciliation": False,
        "reconciliation_reason": "",
        "parked_reason": "",
    }
    held: dict[str, Any] = (
        {} if known_attempts is None else {"current": payment, "attempts": known_attempts}
    )
    try:
        if result.status == ChargeStatus.SUCCEEDED:
            payment_transition(
                payment_id=payment.pk,
                from_statuses=[S.PROCESSING],
                to_status=S.SUCCEEDED,
                reason=reason,
                actor=actor,
                card_brand=result.card_brand,
                card_last4=result.card_last4,
                next_action=None,
                **common,
                **held,
            )
        elif result.status == ChargeStatus.REQUIRES_ACTION:
            payment_transition(
                payment_id=payment.pk,
                from_statuses=[S.PROCESSING],
                to_status=S.REQUIRES_ACTION,
                reason=reason,
                actor=actor,
                card_brand=result.card_brand,
                card_last4=result.card_last4,
                **awaiting_approval_changes(payment, result),
                **common,
                **held,
            )
        elif result.status == ChargeStatus.AWAITING_PAYMENT:
            if not _apply_pix(
                payment, gateway, result, reason=reason, common=common, held=held, actor=actor
            ):
                return "parked"
        elif result.status == ChargeStatus.PENDING:
            # Taken but undecided: the gateway's callback or reconciliation settles it. Not
            # due before reconciliation's time: the outbox sweep would only read it again.
            with transaction.atomic():
                taken = Payment.objects.filter(pk=payment.pk, status=S.PROCESSING).update(
                    **common, next_attempt_at=_pending_recheck_at()
                )
                if taken:
                    _touch(payment.pk)
            if not taken:  # moved meanwhile: a live charge to withdraw, as any other
                raise TransitionConflict("The payment moved meanwhile.", current_status=None)
            return "pending"
        else:
            _fail_declined(payment, gateway, Declined(f"the gateway answered {result.raw_status}"))
    except TransitionConflict:
        logger.info(
            "payment moved meanwhile; result not applied",
            extra={"payment_id": str(payment.id), "gateway": gateway.code},
        )
        if result.status in LIVE_CHARGE_STATUSES:
            _orphan_unless_its_own(payment, gateway, result)
        return "moved"
    return "settled"


def _orphan_unless_its_own(payment: Payment, gateway: Gateway, result: ChargeResult) -> None:
    """A live charge answered after the payment settled elsewhere: withdraw it later."""
    current = one_or_none(
        Payment.objects.filter(pk=payment.pk).only("gateway", "gateway_reference")
    )
    if current is None:
        return
    if (current.gateway, current.gateway_reference) == (gateway.code, result.reference):
        return  # the payment's own charge, applied by someone else first
    orphan_record(
        payment,
        gateway.code,
        idempotency_key=idempotency_key_for(payment, gateway.code),
        charge_params=frozen_charge_params(payment, gateway.code),
        reference=result.reference,
        reason="a charge answered after the payment had moved on",
    )


def payment_settle_paid(
    payment: Payment, gateway: Gateway, result: ChargeResult, *, reason: str, actor: str = ACTOR
) -> str:
    """A payment waiting for its payer (PIX, 3-D Secure) whose charge the gateway reports
    paid: succeeded, unless the charge is not this payment's amount and currency or was
    reversed at the gateway (then flagged for a person, with an alert). A word saying which.
    """
    if result.status in REVERSED_CHARGE_STATUSES:
        problem = f"the charge was paid, then {result.raw_status}"
        return _flag(payment, gateway, AlertKind.CHARGE_REVERSED, ParkedReason.CHARGE_REVERSED,
                     problem, actor)  # fmt: skip
    if problem := settlement_problem(payment, result):
        return _flag(payment, gateway, AlertKind.AMOUNT_MISMATCH, ParkedReason.AMOUNT_MISMATCH,
                     problem, actor)  # fmt: skip
    try:
        payment_transition(
            payment_id=payment.pk,
            from_statuses=[S.AWAITING_PAYMENT, S.REQUIRES_ACTION],
            to_status=S.SUCCEEDED,
            reason=reason,
            actor=actor,
            next_action=None,
            capture_reference=result.capture_reference or payment.capture_reference,
        )
    except TransitionConflict:
        return "moved"
    return str(S.SUCCEEDED)


def _flag(
    payment: Payment, gateway: Gateway, alert: str, code: str, problem: str, actor: str = ACTOR
) -> str:
    """Park a payment outside `processing`: it keeps its status, flagged for a person."""
    with transaction.atomic():
        flagged = Payment.objects.filter(
            pk=payment.pk,
            status__in=[S.AWAITING_PAYMENT, S.REQUIRES_ACTION],
            needs_reconciliation=False,
        ).update(
            needs_reconciliation=True,
            reconciliation_reason=f"{gateway.code}: {problem}"[:255],
            parked_reason=code,
        )
        if flagged:
            _touch(payment.pk)
            _parked_event_record(payment.pk, code, f"{gateway.code}: {problem}", actor)
    if flagged:
        operator_alert(
            alert,
            f"payment {payment.id} not settled from {gateway.code}: {problem}",
            payment_id=str(payment.id),
            gateway=gateway.code,
        )
    return "parked"


def _park_with_alert(
    payment: Payment, gateway: Gateway, alert: str, code: str, problem: str
) -> None:
    operator_alert(
        alert,
        f"payment {payment.id} not settled from {gateway.code}: {problem}",
        payment_id=str(payment.id),
        gateway=gateway.code,
    )
    payment_park(payment, f"{gateway.code}: {problem}", code)


def _apply_pix(
    payment: Payment,
    gateway: Gateway,
    result: ChargeResult,
    *,
    reason: str,
    common: dict[str, Any],
    held: dict[str, Any],
    actor: str = ACTOR,
) -> bool:
    """Show the payer the charge's code; False (parked) if it cannot be shown.

    `held`: the job's copy and attempts, if it holds them (charge_result_apply)."""
    pix = result.pix
    problem = _pix_problem(payment, result)
    if problem or pix is None:
        operator_alert(
            AlertKind.INVALID_GATEWAY_ANSWER,
            f"gateway {gateway.code} returned an unusable PIX charge: {problem}",
            payment_id=str(payment.id),
            gateway=gateway.code,
        )
        payment_park(
            payment,
            f"unusable PIX charge from {gateway.code}: {problem}",
            ParkedReason.INVALID_GATEWAY_ANSWER,
        )
        return False
    now = timezone.now()
    payment_transition(
        payment_id=payment.pk,
        from_statuses=[S.PROCESSING],
        to_status=S.AWAITING_PAYMENT,
        reason=reason,
        actor=actor,
        pix_txid=pix.txid,
        pix_qr_code=pix.br_code,
        # A gateway that names no expiry still expires the charge: assume ours.
        pix_expires_at=pix.expires_at or now + payment.pix_lifetime,
        # When reconciliation first looks the charge up, if no callback has settled it.
        next_attempt_at=now + timedelta(seconds=settings.PAYWAVE_PIX_CHECK_FIRST_SECONDS),
        **common,
        **held,
    )
    return True


def _pix_problem(payment: Payment, result: ChargeResult) -> str:
    """Why the BR Code a gateway returned cannot be shown to a payer ('' if it can)."""
    if result.pix is None:
        return "no PIX data"
    try:
        code = parse(result.pix.br_code)
    except BRCodeError as exc:
        return f"invalid BR Code ({exc})"
    if code.amount is not None and code.amount != payment.amount:
        return f"BR Code amount {code.amount} is not {payment.amount}"
    return ""


def _fail_declined(payment: Payment, gateway: Gateway, error: Declined) -> None:
    code = _DECLINED_CODES.get(payment.method, FailureCode.INVALID_PAYER)
    with contextlib.suppress(TransitionConflict):  # already settled elsewhere
        payment_transition(
            payment_id=payment.pk,
            from_statuses=[S.PROCESSING],
            to_status=S.FAILED,
            reason=f"declined at {gateway.code}",
            actor=ACTOR,
            gateway=gateway.code,
            failure_code=code,
            failure_message=error.message[:255],
        )


def _fail_exhausted(payment: Payment, attempts: list[PaymentAttempt]) -> None:
    if attempts:
        tried = sorted({a.gateway for a in attempts})
        message = f"Every gateway failed ({len(attempts)} attempts at {', '.join(tried)})."
    else:
        message = "No enabled gateway takes this method, currency and payer country."
    if payment.status == S.PENDING:  # nothing was ever tried: through processing all the same
        with contextlib.suppress(TransitionConflict):
            payment_transition(
                payment_id=payment.pk,
                from_statuses=[S.PENDING],
                to_status=S.PROCESSING,
                reason="picked up for charging",
                actor=ACTOR,
            )
    try:
        payment_transition(
            payment_id=payment.pk,
            from_statuses=[S.PROCESSING],
            to_status=S.FAILED,
            reason="gateways exhausted",
            actor=ACTOR,
            failure_code=FailureCode.GATEWAYS_EXHAUSTED,
            failure_message=message[:255],
        )
    except TransitionConflict:
        return
    operator_alert(
        AlertKind.GATEWAYS_EXHAUSTED,
        f"payment {payment.id} failed: {message}",
        payment_id=str(payment.id),
        attempts=len(attempts),
    )


def payment_park(
    payment: Payment,
    reason: str,
    code: str = ParkedReason.CHARGE_UNCONFIRMED,
    *,
    actor: str = ACTOR,
) -> None:
    """Keep the payment `processing` and flag it: reconciliation owns it from now on."""
    with transaction.atomic():
        parked = Payment.objects.filter(
            pk=payment.pk, status=S.PROCESSING, needs_reconciliation=False
        ).update(
            needs_reconciliation=True,
            reconciliation_reason=reason[:255],
            parked_reason=code,
            dispatch_token=uuid.uuid4(),
        )
        if parked:
            _touch(payment.pk)
            _parked_event_record(payment.pk, code, reason, actor)
    if parked:
        operator_alert(
            AlertKind.PAYMENT_PARKED,
            f"payment {payment.id} parked: {reason}",
            payment_id=str(payment.id),
            parked_reason=str(code),
        )


def _parked_event_record(payment_id: Any, code: str, why: str, actor: str) -> None:
    """The payment's story shows it parked: an event that keeps its status (from == to)."""
    status = Payment.objects.filter(pk=payment_id).values_list("status", flat=True).get()
    payment_note(payment_id, status, reason=f"parked: {code!s}: {why}", actor=actor)
