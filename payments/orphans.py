"""Charges a payment left behind at gateways it moved on from ("orphans"), withdrawn.

A PIX fallback past a gateway that gave no usable answer leaves a charge that may
exist there (no payer was shown its code); a charge answered after its payment had
moved on is one too. Each is recorded once per (payment, gateway) and looked at on
beat, under its own key, until it is resolved:

- not there once the call's window has passed: `absent`;
- waiting for a payer: cancelled at the gateway, `withdrawn` (Mercado Pago: the
  payment is cancelled; Efí: the cob becomes REMOVIDA_PELO_USUARIO_RECEBEDOR);
  expired or cancelled there already: `withdrawn`;
- paid: while the payment still waits for its money it is settled from this
  charge (`settled`), and the charge it was waiting on becomes an orphan in turn;
  once the payment is settled or over, this second payment is refunded
  automatically (`refunding`, then `refunded`), with a PaymentEvent and an
  operator alert. The wallet is credited once: only the payment's own move to
  `succeeded` credits it.

While the gateway cannot answer, the orphan is looked at again with backoff. A
withdrawal is idempotent (cancelling twice changes nothing), and past the
charge's expiry nothing needs cancelling, but a payment made before it must still
be found, so lookups go on until PAYWAVE_ORPHAN_GIVE_UP_SECONDS, then an alert.
"""

import logging
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from gateways.base import (
    LIVE_CHARGE_STATUSES,
    REVERSED_CHARGE_STATUSES,
    ChargeNotFound,
    ChargeResult,
    ChargeStatus,
    Declined,
    GatewayError,
    RefundStatus,
)
from gateways.health import gateway_health_get
from gateways.models import Gateway
from gateways.registry import adapter_for
from paywave.backoff import backoff_delay
from paywave.observability.alerts import AlertKind, operator_alert
from paywave.values.money import Money

from .charges import (
    charge_request_from_params,
    frozen_charge_params,
    idempotency_key_for,
    settlement_problem,
)
from .models import OrphanCharge, OrphanStatus, Payment
from .models import PaymentStatus as S
from .transitions import payment_note, payment_transition

logger = logging.getLogger(__name__)

ACTOR = "orphan-withdrawal"
BATCH = 200
# A payment waiting for its money may be settled from a paid orphan.
_WAITING = (S.PROCESSING, S.AWAITING_PAYMENT)


def orphan_record(
    payment: Payment,
    gateway_code: str,
    *,
    idempotency_key: str,
    charge_params: str,
    reference: str,
    reason: str,
) -> OrphanCharge:
    """Remember a charge the payment may hold at `gateway_code`, to withdraw it."""
    expires_in = int(payment.pix_lifetime.total_seconds())
    orphan, created = OrphanCharge.objects.get_or_create(
        payment=payment,
        gateway=gateway_code,
        defaults={
            "idempotency_key": idempotency_key,
            "charge_params": charge_params,
            "reference": reference,
            "reason": reason[:255],
            "expires_at": timezone.now() + timedelta(seconds=expires_in),
            "next_check_at": timezone.now() + timedelta(seconds=_first_look_after()),
        },
    )
    if not created:
        changes: dict[str, Any] = {}
        if reference and not orphan.reference:
            changes["reference"] = reference
        if orphan.status == OrphanStatus.ABSENT and reference:  # it turned up after all
            changes.update(status=OrphanStatus.OPEN, next_check_at=timezone.now())
        if changes:
            OrphanCharge.objects.filter(pk=orphan.pk).update(**changes)
    if created:
        logger.info(
            "charge left behind at %s: %s",
            gateway_code,
            reason,
            extra={"payment_id": str(payment.pk), "gateway": gateway_code, "event": "orphan"},
        )
    return orphan


def orphans_due_now(gateway_code: str, *, payment_id: Any = None) -> int:
    """The gateway spoke (a callback): look at its orphans (or one payment's) at once."""
    orphans = OrphanCharge.objects.filter(gateway=gateway_code, status=OrphanStatus.OPEN)
    if payment_id is not None:
        orphans = orphans.filter(payment_id=payment_id)
    return orphans.update(next_check_at=timezone.now())


def orphans_withdraw() -> dict[str, int]:
    """Look at every orphan that is due; a count per verdict (beat).

    Due: its time has come, or its last look failed and the gateway's health probe now
    finds it up (so a recovered gateway's orphans are withdrawn within one sweep).
    """
    up = [code for code in _open_orphan_gateways() if _probed_up(code)]
    now = timezone.now()
    due = (
        OrphanCharge.objects.select_related("payment")
        .filter(status__in=[OrphanStatus.OPEN, OrphanStatus.REFUNDING])
        .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))
        .filter(Q(next_check_at__lte=now) | Q(gateway__in=up, checks__gt=0))
        .order_by("next_check_at")[:BATCH]
    )
    gateways = Gateway.objects.in_bulk(field_name="code")
    counts: dict[str, int] = {}
    for orphan in due:
        try:
            verdict = orphan_resolve(orphan, gateways=gateways)
        except Exception:
            logger.exception("orphan charge not resolved", extra={"payment_id": orphan.payment_id})
            verdict = "error"
        counts[verdict] = counts.get(verdict, 0) + 1
    if counts:
        logger.info("orphan withdrawal: %s", counts, extra={"orphans": counts})
    return counts


def _open_orphan_gateways() -> list[str]:
    return list(
        OrphanCharge.objects.filter(status=OrphanStatus.OPEN)
        .values_list("gateway", flat=True)
        .distinct()
    )


def _probed_up(code: str) -> bool:
    health = gateway_health_get(code)
    return bool(health and health.get("status") == "up")


def orphan_resolve(orphan: OrphanCharge, *, gateways: dict[str, Gateway] | None = None) -> str:
    """Take one orphan as far as its gateway lets it go; a word saying where it got."""
    if gateways is None:
        gateways = Gateway.objects.in_bulk([orphan.gateway], field_name="code")
    gateway = gateways.get(orphan.gateway)
    if gateway is None:
        return _give_up(orphan, f"gateway {orphan.gateway} is no longer configured")
    if not _claim(orphan, gateway):
        return "claimed"  # another sweep is on it
    if orphan.status == OrphanStatus.REFUNDING:
        return _refund(orphan, gateway)
    try:
        result = _look_up(orphan, gateway)
    except GatewayError as exc:
        return _later(orphan, f"{type(exc).__name__}: {exc.message}")
    if result is None:
        if timezone.now() < orphan.created_at + timedelta(seconds=_absent_after()):
            return _later(orphan, "not at the gateway yet")  # a late request may still land
        return _finish(orphan, OrphanStatus.ABSENT, "the gateway holds no such charge")
    if result.reference and result.reference != orphan.reference:
        OrphanCharge.objects.filter(pk=orphan.pk).update(reference=result.reference)
        orphan.reference = result.reference
    if result.status == ChargeStatus.SUCCEEDED:
        return _paid(orphan, gateway, result)
    if result.status in LIVE_CHARGE_STATUSES and _payments_own(orphan, gateway, result):
        # Recorded by a job that gave up on the gateway while another one found the charge
        # there and the payment took it: it is the code its payer was shown, not withdrawn.
        return _finish(orphan, OrphanStatus.SETTLED, "the payment took it as its own charge")
    if result.status in LIVE_CHARGE_STATUSES:
        try:
            cancelled = adapter_for(gateway).cancel(result.reference)
        except GatewayError as exc:  # e.g. paid between the lookup and the cancel
            return _later(orphan, f"cancel: {type(exc).__name__}: {exc.message}")
        if cancelled.status == ChargeStatus.SUCCEEDED:
            return _paid(orphan, gateway, cancelled)
        return _finish(orphan, OrphanStatus.WITHDRAWN, f"cancelled at {gateway.code}")
    if result.status in REVERSED_CHARGE_STATUSES:
        # Paid and given back (or contested) at the gateway by someone else: no money of
        # ours to return, but a person should know.
        operator_alert(
            AlertKind.CHARGE_REVERSED,
            f"a charge payment {orphan.payment_id} left at {gateway.code} reads "
            f"{result.raw_status}",
            payment_id=str(orphan.payment_id),
            gateway=gateway.code,
        )
        return _finish(orphan, OrphanStatus.WITHDRAWN, f"{gateway.code} says {result.raw_status}")
    return _finish(orphan, OrphanStatus.WITHDRAWN, f"{gateway.code} says {result.raw_status}")


def _payments_own(orphan: OrphanCharge, gateway: Gateway, result: ChargeResult) -> bool:
    payment = Payment.objects.only("gateway", "gateway_reference").get(pk=orphan.payment_id)
    return _stands_on(payment, gateway, result)


def _stands_on(payment: Payment, gateway: Gateway, result: ChargeResult) -> bool:
    """Is the charge the one the payment itself holds (its gateway and reference)?"""
    return (payment.gateway, payment.gateway_reference) == (gateway.code, result.reference)


def _claim(orphan: OrphanCharge, gateway: Gateway) -> bool:
    """Take the orphan for as long as its calls can last; False if another sweep has it.

    The claim is a compare-and-set on `claimed_until`; the orphan is read again once
    held, since another sweep may have resolved it just before.
    """
    now = timezone.now()
    calls = adapter_for(gateway).requests_per_charge + 2  # a lookup, a cancel or a refund
    lease = timedelta(seconds=gateway.timeout_ms / 1000 * calls + 5)
    claimed = (
        OrphanCharge.objects.filter(
            pk=orphan.pk, status__in=[OrphanStatus.OPEN, OrphanStatus.REFUNDING]
        )
        .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))
        .update(claimed_until=now + lease)
    )
    if not claimed:
        return False
    orphan.refresh_from_db()
    return True


def _look_up(orphan: OrphanCharge, gateway: Gateway) -> ChargeResult | None:
    adapter = adapter_for(gateway)
    try:
        if orphan.reference:
            return adapter.retrieve(orphan.reference)
        if orphan.charge_params:
            return adapter.find_charge(charge_request_from_params(orphan.charge_params))
    except ChargeNotFound:
        return None
    raise GatewayError("nothing to look the charge up by")


def _paid(orphan: OrphanCharge, gateway: Gateway, result: ChargeResult) -> str:
    """The orphan was paid: settle the payment from it, or refund it as a second payment."""
    alert = ""
    with transaction.atomic():
        payment = Payment.objects.select_for_update().get(pk=orphan.payment_id)
        money = _money(result, payment)
        if _stands_on(payment, gateway, result):
            # The payment was settled from this very charge (by an earlier look, a callback):
            # its own money, never a second payment to refund.
            _mark(orphan, OrphanStatus.SETTLED, "it paid the payment", amount_paid=result.amount)
            return "settled"
        if payment.status in _WAITING and not settlement_problem(payment, result):
            displaced = (payment.gateway, payment.gateway_reference)
            payment_transition(
                payment_id=payment.pk,
                from_statuses=[payment.status],
                to_status=S.SUCCEEDED,
                reason=f"paid at {gateway.code}, on a charge left there by a fallback",
                actor=ACTOR,
                locked=payment,
                gateway=gateway.code,
                gateway_reference=result.reference,
                needs_reconciliation=False,
                reconciliation_reason="",
                parked_reason="",
                next_action=None,
            )
            _mark(orphan, OrphanStatus.SETTLED, "it paid the payment", amount_paid=result.amount)
            if displaced[0] and displaced != (gateway.code, result.reference):
                orphan_record(
                    payment,
                    displaced[0],
                    idempotency_key=idempotency_key_for(payment, displaced[0]),
                    charge_params=frozen_charge_params(payment, displaced[0]),
                    reference=displaced[1],
                    reason=f"the payment was paid at {gateway.code} instead",
                )
            verdict = "settled"
        else:
            _mark(
                orphan,
                OrphanStatus.REFUNDING,
                "a second payment",
                release=False,  # refunded next, by this same claim
                amount_paid=result.amount,
            )
            payment_note(
                payment.pk,
                payment.status,
                reason=f"a second payment of {money} at {gateway.code} is refunded automatically",
                actor=ACTOR,
            )
            alert = (
                f"payment {payment.pk} ({payment.status}) was also paid {money} at "
                f"{gateway.code} on a charge left behind: refunding it automatically"
            )
            verdict = "refunding"
    if alert:
        operator_alert(
            AlertKind.EXTRA_PAYMENT_REFUNDED,
            alert,
            payment_id=str(orphan.payment_id),
            gateway=gateway.code,
        )
        orphan.refresh_from_db()
        return _refund(orphan, gateway)
    return verdict


def _refund(orphan: OrphanCharge, gateway: Gateway) -> str:
    if not orphan.amount_paid:
        return _give_up(orphan, "paid, but the gateway did not say how much")
    try:
        refund = adapter_for(gateway).refund(
            reference=orphan.reference,
            amount=orphan.amount_paid,
            idempotency_key=orphan.refund_idempotency_key,
        )
    except Declined as exc:
        return _give_up(orphan, f"the refund was refused: {exc.message}")
    except GatewayError as exc:
        return _later(orphan, f"refund: {type(exc).__name__}: {exc.message}")
    if refund.status == RefundStatus.SUCCEEDED:
        _mark(orphan, OrphanStatus.REFUNDED, "refunded", refund_reference=refund.reference)
        return "refunded"
    if refund.status == RefundStatus.FAILED:
        return _give_up(orphan, f"the refund failed at {gateway.code} ({refund.raw_status})")
    return _later(orphan, f"refund {refund.raw_status} at {gateway.code}")


def _money(result: ChargeResult, payment: Payment) -> str:
    if result.amount is None:
        return "an unstated amount"
    money = Money(result.amount, result.currency or payment.currency)
    return f"{money.to_decimal_string()} {money.currency}"  # 25.00 BRL


def _later(orphan: OrphanCharge, why: str) -> str:
    now = timezone.now()
    if now >= orphan.created_at + timedelta(seconds=settings.PAYWAVE_ORPHAN_GIVE_UP_SECONDS):
        return _give_up(orphan, f"still unresolved: {why}")
    delay = backoff_delay(
        orphan.checks + 1,
        base=settings.PAYWAVE_ORPHAN_RETRY_BASE_SECONDS,
        factor=2.0,
        jitter=0.2,
        cap=settings.PAYWAVE_ORPHAN_RETRY_MAX_SECONDS,
    )
    OrphanCharge.objects.filter(pk=orphan.pk).update(
        checks=orphan.checks + 1,
        next_check_at=now + timedelta(seconds=delay),
        claimed_until=None,
        last_error=why[:500],
        updated_at=now,
    )
    return "later"


def _finish(orphan: OrphanCharge, status: str, why: str) -> str:
    _mark(orphan, status, why)
    logger.info(
        "orphan charge at %s %s: %s",
        orphan.gateway,
        status,
        why,
        extra={"payment_id": str(orphan.payment_id), "gateway": orphan.gateway, "event": "orphan"},
    )
    return str(status)


def _give_up(orphan: OrphanCharge, why: str) -> str:
    _mark(orphan, OrphanStatus.GIVEN_UP, why)
    operator_alert(
        AlertKind.ORPHAN_UNRESOLVED,
        f"a charge payment {orphan.payment_id} left at {orphan.gateway} "
        f"(reference {orphan.reference or 'unknown'}) needs a person: {why}",
        payment_id=str(orphan.payment_id),
        gateway=orphan.gateway,
    )
    return str(OrphanStatus.GIVEN_UP)


def _mark(
    orphan: OrphanCharge, status: str, why: str, *, release: bool = True, **changes: Any
) -> None:
    if release:
        changes["claimed_until"] = None
    OrphanCharge.objects.filter(pk=orphan.pk).update(
        status=status, last_error=why[:500], updated_at=timezone.now(), **changes
    )
    orphan.status = status


def _first_look_after() -> float:
    return settings.PAYWAVE_ORPHAN_RETRY_BASE_SECONDS


def _absent_after() -> float:
    return settings.PAYWAVE_ORPHAN_ABSENT_AFTER_SECONDS
