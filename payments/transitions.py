"""The one funnel for payment status changes.

Each change is checked against the lifecycle, written as a compare-and-set
(`UPDATE ... WHERE status = <expected>`), logged as a PaymentEvent and published
as a PaymentChanged (payments.events), in one transaction. A change from a status
the payment is no longer in is refused, never applied over what another process
wrote. What follows from a change (the webhook outbox, a wallet credit, the cache,
the metrics) is done by the apps that subscribe to it, not here.
"""

from collections.abc import Iterable, Sequence
from typing import Any

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from paywave.api.errors import Conflict
from paywave.domain_events import publish
from paywave.queries import one_or_none

from .events import PaymentChanged
from .models import Payment, PaymentAttempt, PaymentEvent, PaymentStatus
from .serializers import payment_document

S = PaymentStatus

ALLOWED_TRANSITIONS: dict[str, frozenset[str]] = {
    S.PENDING: frozenset({S.PROCESSING, S.CANCELED}),
    S.PROCESSING: frozenset({S.SUCCEEDED, S.REQUIRES_ACTION, S.AWAITING_PAYMENT, S.FAILED}),
    S.REQUIRES_ACTION: frozenset({S.SUCCEEDED, S.FAILED}),
    S.AWAITING_PAYMENT: frozenset({S.SUCCEEDED, S.EXPIRED, S.CANCELED}),
    S.SUCCEEDED: frozenset({S.PARTIALLY_REFUNDED, S.REFUNDED}),
    S.PARTIALLY_REFUNDED: frozenset({S.PARTIALLY_REFUNDED, S.REFUNDED}),
    S.FAILED: frozenset(),
    S.CANCELED: frozenset(),
    S.EXPIRED: frozenset(),
    S.REFUNDED: frozenset(),
}

FINAL_STATUSES = frozenset(s for s, targets in ALLOWED_TRANSITIONS.items() if not targets) | {
    S.SUCCEEDED,
    S.PARTIALLY_REFUNDED,
}


class IllegalTransition(Exception):
    """A transition the lifecycle does not have: a bug in the caller, not a race."""


class TransitionConflict(Conflict):
    code = "payment_state_conflict"

    def __init__(self, message: str, *, current_status: str | None) -> None:
        super().__init__(message)
        self.current_status = current_status


def payment_transition(
    *,
    payment_id: Any,
    from_statuses: Iterable[str],
    to_status: str,
    reason: str,
    actor: str,
    locked: Payment | None = None,
    attempts: Sequence[PaymentAttempt] | None = None,
    **changes: Any,
) -> Payment:
    """Move a payment from one of `from_statuses` to `to_status`, or raise TransitionConflict.

    `locked`: the payment as the caller read it with SELECT ... FOR UPDATE in the
    transaction it is still in (no need to lock it again). `attempts`: with `locked`,
    every attempt of the payment as it commits, if the caller knows them (else the
    document wallet apps get reads them).
    """
    sources = frozenset(from_statuses)
    for source in sources:
        if to_status not in ALLOWED_TRANSITIONS[source]:
            raise IllegalTransition(f"{source} -> {to_status} is not in the payment lifecycle")
    # Part of the caller's transaction when there is one (no savepoint: a refused
    # transition is raised after the block, so the caller's transaction stays usable).
    with transaction.atomic(savepoint=False):
        if locked is not None and locked.pk == payment_id and locked.status in sources:
            payment: Payment | None = locked
        else:
            payment = one_or_none(Payment.objects.select_for_update().filter(pk=payment_id))
            if payment is not None and payment.status not in sources:
                payment = None
        if payment is not None:
            known = attempts if payment is locked else None
            _apply(payment, to_status=to_status, reason=reason, actor=actor, changes=changes,
                   attempts=known)  # fmt: skip
    if payment is None:
        statuses = Payment.objects.filter(pk=payment_id).values_list("status", flat=True)
        current = one_or_none(statuses)
        raise TransitionConflict(
            f"The payment is {current or 'missing'}; it cannot become {to_status}.",
            current_status=current,
        )
    return payment


def _apply(
    payment: Payment,
    *,
    to_status: str,
    reason: str,
    actor: str,
    changes: dict[str, Any],
    attempts: Sequence[PaymentAttempt] | None,
) -> None:
    """Write the change to the locked row and its event, and publish it."""
    from_status = payment.status
    now = timezone.now()
    updated = Payment.objects.filter(pk=payment.pk, status=from_status).update(
        status=to_status, version=F("version") + 1, updated_at=now, **changes
    )
    if updated != 1:  # unreachable while the row is locked; kept as the CAS guarantee
        raise TransitionConflict("The payment changed meanwhile.", current_status=None)
    # The row is locked: what was written is the locked copy plus these changes.
    for name, value in {"status": to_status, "updated_at": now, **changes}.items():
        setattr(payment, name, value)
    payment.version += 1
    PaymentEvent.objects.create(
        payment_id=payment.pk,
        from_status=from_status,
        to_status=to_status,
        reason=reason,
        actor=actor,
    )
    publish(
        PaymentChanged(
            payment=payment,
            from_status=from_status,
            to_status=to_status,
            reason=reason,
            actor=actor,
            document=payment_document(payment, attempts),
        )
    )
