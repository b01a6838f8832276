"""A transition written over the caller's unlocked copy: one guarded UPDATE, no lock and no
read first, taken only while the row is still the version the copy holds."""

import uuid
from typing import Any

import pytest

from notifications.models import Event
from payments.models import Payment, PaymentEvent, PaymentStatus
from payments.transitions import (
    IllegalTransition,
    payment_transition,
    payment_transition_if_unchanged,
)
from tests.factories import PaymentFactory

S = PaymentStatus

pytestmark = pytest.mark.django_db


def _events(payment: Payment) -> list[tuple[str, str, str, str]]:
    return list(
        PaymentEvent.objects.filter(payment=payment)
        .order_by("id")
        .values_list("from_status", "to_status", "reason", "actor")
    )


def _published(payment: Payment) -> list[str]:
    return list(Event.objects.filter(subject_id=payment.id).values_list("type", flat=True))


def test_an_unchanged_copy_moves_with_its_event_and_what_it_publishes(
    django_assert_max_num_queries: Any,
) -> None:
    payment = PaymentFactory(card=True)
    copy = Payment.objects.get(pk=payment.pk)

    with django_assert_max_num_queries(4):  # the UPDATE and the event, the app's event
        assert payment_transition_if_unchanged(
            copy, to_status=S.PROCESSING, reason="picked up", actor="worker", attempts=[],
            gateway="stripe",
        )  # fmt: skip

    row = Payment.objects.get(pk=payment.pk)
    assert (row.status, row.version, row.gateway) == (S.PROCESSING, payment.version + 1, "stripe")
    assert (copy.status, copy.version, copy.updated_at) == (
        S.PROCESSING,
        row.version,
        row.updated_at,
    )
    assert _events(payment) == [("pending", "processing", "picked up", "worker")]
    assert _published(payment) == ["payment.processing"]


def test_a_copy_whose_row_moved_on_writes_nothing() -> None:
    payment = PaymentFactory()
    copy = Payment.objects.get(pk=payment.pk)
    Payment.objects.filter(pk=payment.pk).update(version=payment.version + 1)  # an edit

    assert not payment_transition_if_unchanged(
        copy, to_status=S.PROCESSING, reason="picked up", actor="worker"
    )

    row = Payment.objects.get(pk=payment.pk)
    assert (row.status, row.version) == (S.PENDING, payment.version + 1)
    assert (copy.status, copy.version) == (S.PENDING, payment.version)  # the copy is as read
    assert _events(payment) == []
    assert _published(payment) == []


def test_a_copy_that_no_longer_matches_a_guard_writes_nothing() -> None:
    payment = PaymentFactory()
    copy = Payment.objects.get(pk=payment.pk)
    Payment.objects.filter(pk=payment.pk).update(dispatch_token=uuid.uuid4())  # taken over

    assert not payment_transition_if_unchanged(
        copy, to_status=S.PROCESSING, reason="picked up", actor="worker",
        guards={"dispatch_token": copy.dispatch_token},
    )  # fmt: skip

    assert Payment.objects.get(pk=payment.pk).status == S.PENDING
    assert _events(payment) == []


@pytest.mark.parametrize("name", ["pk", "status", "version"])
def test_a_guard_cannot_stand_for_what_the_copy_itself_is_matched_by(name: str) -> None:
    """The new version written is the copy's + 1: a guard re-pinning the version (or the
    row, or its status) would write it over another one."""
    payment = PaymentFactory()
    copy = Payment.objects.get(pk=payment.pk)

    with pytest.raises(ValueError, match="guards"):
        payment_transition_if_unchanged(
            copy, to_status=S.PROCESSING, reason="picked up", actor="worker",
            guards={name: getattr(copy, name)},
        )  # fmt: skip

    assert Payment.objects.get(pk=payment.pk).status == S.PENDING


def test_two_jobs_holding_one_copy_move_it_once() -> None:
    payment = PaymentFactory()
    first, second = Payment.objects.get(pk=payment.pk), Payment.objects.get(pk=payment.pk)

    assert payment_transition_if_unchanged(
        first, to_status=S.PROCESSING, reason="picked up", actor="worker"
    )
    assert not payment_transition_if_unchanged(
        second, to_status=S.PROCESSING, reason="picked up", actor="worker"
    )
    assert _events(payment) == [("pending", "processing", "picked up", "worker")]


def test_a_change_outside_the_lifecycle_is_refused_before_anything_is_written() -> None:
    payment = PaymentFactory()
    with pytest.raises(IllegalTransition, match=r"^pending -> succeeded is not in the payment"):
        payment_transition_if_unchanged(payment, to_status=S.SUCCEEDED, reason="x", actor="y")
    assert Payment.objects.get(pk=payment.pk).status == S.PENDING


def test_a_stale_current_copy_is_moved_under_the_lock_instead() -> None:
    """`payment_transition(current=...)`: when the copy's row moved on but its status still
    allows the change, the row is locked and read, and moved from what it is now."""
    payment = PaymentFactory()
    stale = Payment.objects.get(pk=payment.pk)
    Payment.objects.filter(pk=payment.pk).update(
        version=payment.version + 1, description="edited meanwhile"
    )

    moved = payment_transition(
        payment_id=payment.pk, from_statuses=[S.PENDING], to_status=S.CANCELED,
        reason="canceled", actor="api", current=stale,
    )  # fmt: skip

    assert moved is not stale
    assert (moved.status, moved.version, moved.description) == (
        S.CANCELED, payment.version + 2, "edited meanwhile",
    )  # fmt: skip
    assert stale.status == S.PENDING
    assert _events(payment) == [("pending", "canceled", "canceled", "api")]
    assert _published(payment) == ["payment.canceled"]
