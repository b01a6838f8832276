"""Disputes: money a payer takes back after a payment succeeded (docs/gateways.md, "Disputes").

A dispute's state is only ever what its gateway reports when asked (`adapter.disputes`,
`adapter.dispute`): a callback only says "look", so a forged, duplicate or out-of-order
callback cannot move one. What is read is applied forwards only: an open dispute may
move between `needs_response` and `under_review`; a closed one (`won`, `lost`) never
changes again.

Each change is written under its payment's lock, noted as a PaymentEvent (the payment's
status kept) and published as a DisputeChanged, in one transaction: wallets moves the
money (held on opening, released when won, taken when lost), notifications tells the
wallet app. A lost dispute also takes its amount off the payment: `amount_refunded`
grows and the payment becomes `partially_refunded` or `refunded`, by chargeback.
"""

import logging
from collections.abc import Callable, Iterable
from typing import Any, TypeVar
from uuid import UUID

from django.db import transaction
from django.utils import timezone

from gateways.base import Ambiguous, DisputeResult, DisputeStatus, GatewayError
from gateways.models import Gateway
from gateways.registry import adapter_for
from paywave.domain_events import publish
from paywave.observability.alerts import AlertKind, operator_alert
from paywave.values.money_text import money_display

from .events import DisputeChanged
from .models import (
    CLOSED_DISPUTE_STATUSES,
    OPEN_DISPUTE_STATUSES,
    Dispute,
    Payment,
)
from .models import PaymentStatus as S
from .serializers import iso_timestamp
from .transitions import payment_note, payment_transition

logger = logging.getLogger(__name__)

T = TypeVar("T")

# A dispute can only take money a payment still holds.
DISPUTABLE = (S.SUCCEEDED, S.PARTIALLY_REFUNDED)


def dispute_document(dispute: Dispute) -> dict[str, Any]:
    """A dispute as wallet apps see it (API.md, "Disputes")."""
    return {
        "id": str(dispute.id),
        "payment_id": str(dispute.payment_id),
        "gateway": dispute.gateway,
        "gateway_reference": dispute.reference,
        "kind": dispute.kind,
        "status": dispute.status,
        "outcome": dispute.status if dispute.status in CLOSED_DISPUTE_STATUSES else None,
        "amount": dispute.amount,
        "currency": dispute.currency,
        "reason": dispute.reason,
        "evidence_due_at": iso_timestamp(dispute.evidence_due_at),
        "evidence_submitted_at": iso_timestamp(dispute.evidence_submitted_at),
        "opened_at": iso_timestamp(dispute.opened_at),
        "closed_at": iso_timestamp(dispute.closed_at),
    }


def disputes_apply(
    payment_id: UUID, gateway: str, results: Iterable[DisputeResult], *, actor: str
) -> list[Dispute]:
    """Apply what `gateway` reports of disputes on the payment; the disputes it names.

    Each dispute in its own transaction, so one that cannot be applied (another payment's,
    another currency) leaves the others applied.
    """
    return [
        dispute
        for result in results
        if (dispute := dispute_apply(payment_id, gateway, result, actor=actor)) is not None
    ]


def dispute_apply(
    payment_id: UUID, gateway: str, result: DisputeResult, *, actor: str
) -> Dispute | None:
    """Record a dispute as the gateway reports it now, forwards only; None if it cannot be
    tied to this payment (an operator alert says why)."""
    with transaction.atomic():
        payment = Payment.objects.select_for_update().get(pk=payment_id)
        dispute = (
            Dispute.objects.select_for_update()
            .filter(gateway=gateway, reference=result.reference)
            .first()
        )
        if dispute is None:
            return _open(payment, gateway, result, actor=actor)
        if dispute.payment_id != payment.pk:
            _unmatched(payment.pk, gateway, result, f"it belongs to payment {dispute.payment_id}")
            return None
        _follow(payment, dispute, result, actor=actor)
        return dispute


def _open(payment: Payment, gateway: str, result: DisputeResult, *, actor: str) -> Dispute | None:
    if result.currency != payment.currency or result.amount <= 0:
        _unmatched(
            payment.pk, gateway, result,
            f"it disputes {result.amount} {result.currency} of a {payment.currency} payment",
        )  # fmt: skip
        return None
    now = timezone.now()
    amount = result.amount
    if amount > payment.amount:
        _unmatched(
            payment.pk, gateway, result, f"it disputes more than the payment's {payment.amount}"
        )
        return None
    dispute = Dispute.objects.create(
        payment=payment,
        gateway=gateway,
        reference=result.reference,
        kind=result.kind,
        status=result.status,
        raw_status=result.raw_status[:120],
        amount=amount,
        currency=result.currency,
        reason=result.reason[:120],
        evidence_due_at=result.evidence_due_at,
        evidence_submittable=result.evidence_submittable,
        opened_at=now,
        closed_at=now if result.status in CLOSED_DISPUTE_STATUSES else None,
        checked_at=now,
    )
    operator_alert(
        AlertKind.DISPUTE_OPENED,
        f"payment {payment.pk} disputed at {gateway}: {money_display(amount, result.currency)}"
        f" ({result.kind}, {result.reason or 'no reason given'}), {result.status}",
        dedupe_key=f"{gateway}:{result.reference}",
        payment_id=str(payment.pk),
        gateway=gateway,
        dispute_reference=result.reference,
        evidence_due_at=iso_timestamp(result.evidence_due_at),
    )
    _changed(payment, dispute, from_status="", actor=actor)
    return dispute


def _follow(payment: Payment, dispute: Dispute, result: DisputeResult, *, actor: str) -> None:
    """Bring a known dispute up to what the gateway reports, if it is still open."""
    now = timezone.now()
    if dispute.status in CLOSED_DISPUTE_STATUSES:
        if result.status != dispute.status:
            logger.warning(
                "a closed dispute read back otherwise: kept %s",
                dispute.status,
                extra={"payment_id": str(payment.pk), "gateway": dispute.gateway,
                       "dispute_reference": dispute.reference, "reported": result.status},
            )  # fmt: skip
        Dispute.objects.filter(pk=dispute.pk).update(checked_at=now)
        return
    previous = dispute.status
    dispute.status = result.status
    dispute.raw_status = result.raw_status[:120]
    dispute.evidence_due_at = result.evidence_due_at or dispute.evidence_due_at
    dispute.evidence_submittable = result.evidence_submittable
    dispute.checked_at = now
    if result.status in CLOSED_DISPUTE_STATUSES:
        dispute.closed_at = now
    dispute.save(
        update_fields=[
            "status", "raw_status", "evidence_due_at", "evidence_submittable", "checked_at",
            "closed_at", "updated_at",
        ]
    )  # fmt: skip
    if result.amount != dispute.amount:
        logger.warning(
            "a dispute's amount read back changed: the amount first reported is kept",
            extra={"payment_id": str(payment.pk), "gateway": dispute.gateway,
                   "dispute_reference": dispute.reference, "reported": result.amount},
        )  # fmt: skip
    if previous != result.status:
        _changed(payment, dispute, from_status=previous, actor=actor)


def _changed(payment: Payment, dispute: Dispute, *, from_status: str, actor: str) -> None:
    """Note the change on the payment's timeline, take a lost amount off it, publish."""
    amount = money_display(dispute.amount, dispute.currency)
    payment_note(
        payment.pk,
        payment.status,
        reason=(
            f"dispute {dispute.reference} at {dispute.gateway} ({dispute.kind}, {amount}, "
            f"{dispute.reason or 'no reason given'}): {from_status or 'opened'} -> {dispute.status}"
        ),
        actor=actor,
    )
    # Subscribers: wallets moves the money, notifications tells the wallet app.
    publish(
        DisputeChanged(
            dispute=dispute,
            payment=payment,
            from_status=from_status,
            to_status=dispute.status,
            document=dispute_document(dispute),
        )
    )
    if dispute.status == DisputeStatus.LOST:
        _take_off_payment(payment, dispute, actor=actor)


def _take_off_payment(payment: Payment, dispute: Dispute, *, actor: str) -> None:
    """A lost dispute's amount went back to the payer: the payment is refunded by it."""
    if payment.status not in DISPUTABLE:
        operator_alert(
            AlertKind.CHARGE_REVERSED,
            f"payment {payment.pk} is {payment.status}, but its dispute {dispute.reference} at "
            f"{dispute.gateway} was lost: {money_display(dispute.amount, dispute.currency)} "
            "went back to the payer",
            payment_id=str(payment.pk),
            gateway=dispute.gateway,
        )
        return
    refunded = payment.amount_refunded + dispute.amount
    if refunded > payment.amount:
        operator_alert(
            AlertKind.CHARGE_REVERSED,
            f"payment {payment.pk}: refunds and the lost dispute {dispute.reference} took "
            f"{refunded} of {payment.amount}: the payer got more back than was paid",
            payment_id=str(payment.pk),
            gateway=dispute.gateway,
        )
        refunded = payment.amount
    payment_transition(
        payment_id=payment.pk,
        from_statuses=DISPUTABLE,
        to_status=S.REFUNDED if refunded == payment.amount else S.PARTIALLY_REFUNDED,
        reason=(
            f"chargeback: dispute {dispute.reference} lost ({dispute.reason or dispute.kind}), "
            f"{money_display(dispute.amount, dispute.currency)} back to the payer"
        )[:255],
        actor=actor,
        locked=payment,
        amount_refunded=refunded,
    )


def _unmatched(payment_id: Any, gateway: str, result: DisputeResult, why: str) -> None:
    operator_alert(
        AlertKind.DISPUTE_UNMATCHED,
        f"dispute {result.reference} at {gateway} not recorded for payment {payment_id}: {why}",
        dedupe_key=f"{gateway}:{result.reference}",
        payment_id=str(payment_id),
        gateway=gateway,
        dispute_reference=result.reference,
    )


def gateway_read(gateway: str, read: Callable[..., T], *args: Any) -> T:
    """A dispute read at a gateway; an answer of another shape than the adapter expects is
    a GatewayError like any failed read (asked again later), never a crash of the job."""
    try:
        return read(*args)
    except GatewayError:
        raise
    except (KeyError, IndexError, TypeError, ValueError, AttributeError, ArithmeticError) as exc:
        raise Ambiguous(
            f"{gateway}: an answer about disputes that cannot be read ({type(exc).__name__})"
        ) from exc


def disputes_sync(payment: Payment, gateway: Gateway, *, actor: str) -> list[Dispute]:
    """Read every dispute on the payment's charge at `gateway` and apply what it reports.

    A dispute PayWave holds open that the gateway's list no longer names (Mercado Pago's
    mediation ends with the payment's status) is read on its own.
    """
    adapter = adapter_for(gateway)
    results = gateway_read(gateway.code, adapter.disputes, payment.gateway_reference)
    listed = {result.reference for result in results}
    missing = Dispute.objects.filter(
        payment=payment, gateway=gateway.code, status__in=OPEN_DISPUTE_STATUSES
    ).exclude(reference__in=listed)
    for dispute in missing:
        results.append(gateway_read(gateway.code, adapter.dispute, dispute.reference))
    return disputes_apply(payment.pk, gateway.code, results, actor=actor)


def disputed_now(payment: Payment) -> bool:
    """Whether a dispute of the payment is open: no refund may be taken meanwhile."""
    return Dispute.objects.filter(payment=payment, status__in=OPEN_DISPUTE_STATUSES).exists()
