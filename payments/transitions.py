"""The one funnel for payment status changes.

Each change is checked against the lifecycle, written as a compare-and-set
(`UPDATE ... WHERE status = <expected>`), logged as a PaymentEvent and published
as a PaymentChanged (payments.events), in one transaction. A change from a status
the payment is no longer in is refused, never applied over what another process
wrote. What follows from a change (the webhook outbox, a wallet credit, the cache,
the metrics) is done by the apps that subscribe to it, not here.
"""

import copy
from collections.abc import Iterable, Sequence
from typing import Any

from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from paywave.api.errors import Conflict
from paywave.domain_events import publish
from paywave.queries import insert_parts, one_or_none, update_parts

from .events import PaymentChanged
from .models import Payment, PaymentAttempt, PaymentEvent, PaymentStatus
from .serializers import payment_document

S = PaymentStatus

ALLOWED_TRANSITIONS: dict[str, frozenset[str]] = {
    S.PENDING: frozenset({S.PROCESSING, S.CANCELED}),
    S.PROCESSING: frozenset({S.SUCCEEDED, S.REQUIRES_ACTION, S.AWAITING_PAYMENT, S.FAILED}),
    # CANCELED and EXPIRED: a PayPal payer who cancelled, or did not approve in time.
    S.REQUIRES_ACTION: frozenset({S.SUCCEEDED, S.FAILED, S.CANCELED, S.EXPIRED}),
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
    current: Payment | None = None,
    attempts: Sequence[PaymentAttempt] | None = None,
    **changes: Any,
) -> Payment:
    """Move a payment from one of `from_statuses` to `to_status`, or raise TransitionConflict.

    `locked`: the payment as the caller read it with SELECT ... FOR UPDATE in the
    transaction it is still in (no need to lock it again). `current`: the caller's
    unlocked copy, written over without a lock or a read if the row is still that
    version (payment_transition_if_unchanged), else locked and read again.
    `attempts`: with `locked` or `current`, every attempt of the payment as it
    commits, if the caller knows them (else the document wallet apps get reads them).
    """
    sources = frozenset(from_statuses)
    for source in sources:
        if to_status not in ALLOWED_TRANSITIONS[source]:
            raise IllegalTransition(f"{source} -> {to_status} is not in the payment lifecycle")
    # Part of the caller's transaction when there is one (no savepoint: a refused
    # transition is raised after the block, so the caller's transaction stays usable).
    with transaction.atomic(savepoint=False):
        if (
            current is not None
            and current.pk == payment_id
            and current.status in sources
            and payment_transition_if_unchanged(
                current, to_status=to_status, reason=reason, actor=actor, attempts=attempts,
                **changes,
            )
        ):  # fmt: skip
            return current
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
        status = one_or_none(statuses)
        raise TransitionConflict(
            f"The payment is {status or 'missing'}; it cannot become {to_status}.",
            current_status=status,
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
    now = timezone.now()
    updated = Payment.objects.filter(pk=payment.pk, status=payment.status).update(
        status=to_status, version=F("version") + 1, updated_at=now, **changes
    )
    if updated != 1:  # unreachable while the row is locked; kept as the CAS guarantee
        raise TransitionConflict("The payment changed meanwhile.", current_status=None)
    event = _event(payment, now, to_status=to_status, reason=reason, actor=actor)
    event.save()
    _record(payment, event, now, changes=changes, attempts=attempts)


def payment_transition_if_unchanged(
    payment: Payment,
    *,
    to_status: str,
    reason: str,
    actor: str,
    attempts: Sequence[PaymentAttempt] | None = None,
    guards: dict[str, Any] | None = None,
    **changes: Any,
) -> bool:
    """Move the caller's unlocked copy of a payment to `to_status` if the row is still
    that version (and matches `guards`): one guarded UPDATE, no lock taken first and no
    read. False, with nothing written, if the row moved on: the caller locks and reads it.

    Every write to a payment row bumps its version, so a row at the copy's version is the
    copy; the UPDATE locks it, and a concurrent writer waiting on that lock finds the
    version moved when it gets it.
    """
    if to_status not in ALLOWED_TRANSITIONS[payment.status]:
        raise IllegalTransition(f"{payment.status} -> {to_status} is not in the payment lifecycle")
    if guards and guards.keys() & {"pk", "status", "version"}:
        raise ValueError("guards narrow the row read; its key, status and version are matched")
    now = timezone.now()
    unchanged = {
        "pk": payment.pk, "status": payment.status, "version": payment.version, **(guards or {})
    }  # fmt: skip
    # The row is at the copy's version or nothing is written: its next is the copy's + 1.
    values = {"status": to_status, "version": payment.version + 1, "updated_at": now, **changes}
    event = _event(payment, now, to_status=to_status, reason=reason, actor=actor)
    if not _update_with_event(unchanged, values, event):
        return False
    _record(payment, event, now, changes=changes, attempts=attempts)
    return True


def _update_with_event(
    unchanged: dict[str, Any], values: dict[str, Any], event: PaymentEvent
) -> bool:
    """The UPDATE of the payment matching `unchanged` and, if it moved the row, the event's
    INSERT; whether it did.

    On PostgreSQL one statement (the UPDATE in a WITH), elsewhere two.
    """
    if connection.vendor != "postgresql":
        if not Payment.objects.filter(**unchanged).update(**values):
            return False
        event.save()
        return True
    update, update_params = update_parts(Payment, where=unchanged, values=values)
    columns, placeholders, event_params = insert_parts(event, exclude={"id", "payment_id"})
    quote = connection.ops.quote_name
    # Only names from the models are in the text (update_parts' too): values are parameters.
    sql = (
        f"WITH moved AS ({update} RETURNING id) "  # noqa: S608
        f"INSERT INTO {quote(PaymentEvent._meta.db_table)} "
        f"(payment_id, {', '.join(columns)}) "
        f"SELECT moved.id, {', '.join(placeholders)} FROM moved RETURNING id"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, (*update_params, *event_params))
        written = cursor.fetchone()
    return written is not None


def payment_note(payment_id: Any, status: str, *, reason: str, actor: str) -> PaymentEvent:
    """A line on the payment's timeline that keeps its status (from == to): what befell
    it without a change (parked, resumed, looked up, a refund or a dispute's news)."""
    return PaymentEvent.objects.create(
        payment_id=payment_id,
        from_status=status,
        to_status=status,
        reason=reason[:255],
        actor=actor,
    )


def _event(payment: Payment, now: Any, *, to_status: str, reason: str, actor: str) -> PaymentEvent:
    """The (unsaved) event of moving the payment, as read, to `to_status` at `now`."""
    return PaymentEvent(
        payment_id=payment.pk,
        from_status=payment.status,
        to_status=to_status,
        reason=reason,
        actor=actor,
        created_at=now,
    )


def _record(
    payment: Payment,
    event: PaymentEvent,
    now: Any,
    *,
    changes: dict[str, Any],
    attempts: Sequence[PaymentAttempt] | None,
) -> None:
    """The change and its event are written: bring the caller's copy up to them, publish."""
    # What was written is the copy plus these changes (the row locked, or at its version).
    for name, value in {"status": event.to_status, "updated_at": now, **changes}.items():
        setattr(payment, name, value)
    payment.version += 1
    publish(
        PaymentChanged(
            # As it is now: the caller's copy may change again before this commits.
            payment=copy.copy(payment),
            from_status=event.from_status,
            to_status=event.to_status,
            reason=event.reason,
            actor=event.actor,
            document=payment_document(payment, attempts),
        )
    )
