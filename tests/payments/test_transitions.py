import threading
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from notifications.models import EVENT_TYPES, Event
from payments import subscribers
from payments.events import PaymentChanged
from payments.models import AttemptOutcome, Payment, PaymentAttempt, PaymentEvent, PaymentStatus
from payments.transitions import (
    ALLOWED_TRANSITIONS,
    IllegalTransition,
    TransitionConflict,
    payment_transition,
)
from paywave.domain_events import Phase, subscribe, unsubscribe
from paywave.observability.metrics import PAYMENT_TRANSITIONS
from tests.factories import PaymentFactory

S = PaymentStatus


@pytest.mark.django_db
def test_a_transition_writes_the_status_and_an_event() -> None:
    payment = PaymentFactory()

    moved = payment_transition(
        payment_id=payment.id,
        from_statuses=[S.PENDING],
        to_status=S.PROCESSING,
        reason="picked up",
        actor="worker",
    )

    assert moved.status == S.PROCESSING
    assert moved.version == payment.version + 1
    event = PaymentEvent.objects.get(payment=payment)
    assert (event.from_status, event.to_status, event.reason, event.actor) == (
        "pending",
        "processing",
        "picked up",
        "worker",
    )


@pytest.mark.django_db
def test_a_transition_writes_its_changes_version_and_time_to_that_row_only() -> None:
    payment, bystander = PaymentFactory(), PaymentFactory()
    before = Payment.objects.get(pk=payment.pk)

    moved = payment_transition(
        payment_id=payment.id,
        from_statuses=[S.PENDING],
        to_status=S.PROCESSING,
        reason="picked up",
        actor="worker",
        gateway="mercadopago",
        gateway_reference="mp-1",
    )

    row = Payment.objects.get(pk=payment.pk)
    assert (row.status, row.gateway, row.gateway_reference) == (S.PROCESSING, "mercadopago", "mp-1")
    assert row.version == before.version + 1
    assert row.updated_at > before.updated_at
    # What the caller gets back is what was written, without reading it again.
    assert (moved.version, moved.updated_at, moved.gateway) == (
        row.version, row.updated_at, row.gateway,
    )  # fmt: skip
    untouched = Payment.objects.get(pk=bystander.pk)
    assert (untouched.status, untouched.version, untouched.gateway) == (S.PENDING, 1, "")


@pytest.mark.django_db
def test_a_transition_from_a_status_the_payment_left_is_a_conflict() -> None:
    payment = PaymentFactory(status=S.CANCELED)

    with pytest.raises(TransitionConflict) as raised:
        payment_transition(
            payment_id=payment.id,
            from_statuses=[S.PENDING],
            to_status=S.PROCESSING,
            reason="late",
            actor="worker",
        )

    assert raised.value.current_status == S.CANCELED
    assert str(raised.value) == "The payment is canceled; it cannot become processing."
    payment.refresh_from_db()
    assert payment.status == S.CANCELED
    assert not PaymentEvent.objects.exists()


@pytest.mark.django_db
def test_a_transition_of_a_missing_payment_is_a_conflict_that_says_so() -> None:
    with pytest.raises(TransitionConflict) as raised:
        payment_transition(
            payment_id="00000000-0000-0000-0000-000000000000",
            from_statuses=[S.PENDING],
            to_status=S.CANCELED,
            reason="x",
            actor="x",
        )

    assert raised.value.current_status is None
    assert str(raised.value) == "The payment is missing; it cannot become canceled."


@pytest.mark.django_db
def test_a_committed_transition_is_counted_and_logged(
    django_capture_on_commit_callbacks: Any, caplog: pytest.LogCaptureFixture
) -> None:
    payment = PaymentFactory(status=S.PROCESSING, gateway="mercadopago")
    counted = PAYMENT_TRANSITIONS.labels("awaiting_payment", "pix", "mercadopago")
    before = counted._value.get()

    with django_capture_on_commit_callbacks(execute=True):
        payment_transition(
            payment_id=payment.id,
            from_statuses=[S.PROCESSING],
            to_status=S.AWAITING_PAYMENT,
            reason="charge issued",
            actor="processing",
        )

    assert counted._value.get() == before + 1
    [line] = [r for r in caplog.records if getattr(r, "event", "") == "payment_transition"]
    assert (line.payment_id, line.from_status, line.to_status) == (
        str(payment.id), "processing", "awaiting_payment",
    )  # fmt: skip
    assert (line.method, line.gateway) == ("pix", "mercadopago")


@pytest.mark.django_db
def test_a_cache_that_fails_after_the_commit_never_undoes_the_transition(
    django_capture_on_commit_callbacks: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    payment = PaymentFactory()

    def unreachable(*args: Any, **kwargs: Any) -> None:
        raise ConnectionError("Redis is down")

    monkeypatch.setattr(subscribers, "payment_cache_put", unreachable)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        moved = payment_transition(
            payment_id=payment.id,
            from_statuses=[S.PENDING],
            to_status=S.PROCESSING,
            reason="picked up",
            actor="worker",
        )

    assert len(callbacks) == 2  # the cache write and the count, both attempted
    assert moved.status == S.PROCESSING
    assert Payment.objects.get(pk=payment.pk).status == S.PROCESSING


@pytest.mark.django_db
def test_a_stale_locked_copy_moves_nothing_and_publishes_nothing() -> None:
    """The UPDATE is guarded by the status the copy says. A copy read under the lock goes
    stale when the same transaction moves the payment first: it must not be written over."""
    payment = PaymentFactory()

    with transaction.atomic():
        locked = Payment.objects.select_for_update().get(pk=payment.pk)
        payment_transition(
            payment_id=payment.id,
            from_statuses=[S.PENDING],
            to_status=S.CANCELED,
            reason="canceled by the wallet app",
            actor="api",
        )
        with pytest.raises(TransitionConflict) as raised, transaction.atomic():
            payment_transition(
                payment_id=payment.id,
                from_statuses=[S.PENDING],
                to_status=S.PROCESSING,
                reason="picked up",
                actor="worker",
                locked=locked,  # still says pending
            )

    payment.refresh_from_db()
    assert (payment.status, payment.version) == (S.CANCELED, locked.version + 1)
    assert "changed meanwhile" in str(raised.value)  # a conflict that says what happened
    assert raised.value.current_status is None
    events = PaymentEvent.objects.filter(payment=payment).values_list("to_status", flat=True)
    assert list(events) == [S.CANCELED]
    published = Event.objects.filter(subject_id=payment.id).values_list("type", flat=True)
    assert list(published) == ["payment.canceled"]


@pytest.mark.parametrize(
    ("source", "target"),
    [
        (S.SUCCEEDED, S.PENDING),
        (S.FAILED, S.SUCCEEDED),
        (S.PENDING, S.SUCCEEDED),
        (S.REFUNDED, S.SUCCEEDED),
        (S.CANCELED, S.PENDING),
        (S.PROCESSING, S.CANCELED),
        (S.EXPIRED, S.SUCCEEDED),
    ],
)
def test_transitions_outside_the_lifecycle_are_refused(source: str, target: str) -> None:
    with pytest.raises(IllegalTransition, match=f"^{source} -> {target} is not in the"):
        payment_transition(
            payment_id="00000000-0000-0000-0000-000000000000",
            from_statuses=[source],
            to_status=target,
            reason="x",
            actor="x",
        )


def test_lifecycle_matches_the_architecture() -> None:
    assert ALLOWED_TRANSITIONS[S.PENDING] == {S.PROCESSING, S.CANCELED}
    assert ALLOWED_TRANSITIONS[S.PROCESSING] == {
        S.SUCCEEDED,
        S.REQUIRES_ACTION,
        S.AWAITING_PAYMENT,
        S.FAILED,
    }
    assert ALLOWED_TRANSITIONS[S.AWAITING_PAYMENT] == {S.SUCCEEDED, S.EXPIRED, S.CANCELED}
    for final in (S.FAILED, S.CANCELED, S.EXPIRED, S.REFUNDED):
        assert ALLOWED_TRANSITIONS[final] == frozenset()


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_racing_transitions_from_pending_have_exactly_one_winner() -> None:
    payment = PaymentFactory()
    contenders = [S.PROCESSING, S.CANCELED] * 5
    barrier = threading.Barrier(len(contenders))
    outcomes: list[str] = []

    def contend(target: str) -> None:
        try:
            barrier.wait()
            payment_transition(
                payment_id=payment.id,
                from_statuses=[S.PENDING],
                to_status=target,
                reason="race",
                actor="test",
            )
            outcomes.append(f"won:{target}")
        except TransitionConflict:
            outcomes.append("conflict")
        finally:
            connection.close()

    threads = [threading.Thread(target=contend, args=(t,)) for t in contenders]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    winners = [o for o in outcomes if o.startswith("won:")]
    assert len(winners) == 1
    assert outcomes.count("conflict") == len(contenders) - 1
    payment.refresh_from_db()
    assert f"won:{payment.status}" == winners[0]
    assert PaymentEvent.objects.filter(payment=payment).count() == 1


LEGAL_MOVES = sorted(
    (source, target) for source, targets in ALLOWED_TRANSITIONS.items() for target in targets
)


@pytest.mark.django_db
@pytest.mark.parametrize(("source", "target"), LEGAL_MOVES)
def test_every_status_change_publishes_its_domain_event(source: str, target: str) -> None:
    payment = PaymentFactory(status=source)

    payment_transition(
        payment_id=payment.id, from_statuses=[source], to_status=target, reason="t", actor="t"
    )

    (event,) = Event.objects.filter(subject_id=payment.id)
    assert event.type == f"payment.{target}"
    assert event.type in EVENT_TYPES  # one a wallet app can subscribe to
    assert event.data["status"] == target


def _attempt(payment: Payment, outcome: str) -> PaymentAttempt:
    return PaymentAttempt.objects.create(
        payment=payment, gateway="stripe", number=1, idempotency_key="k", outcome=outcome
    )


@pytest.mark.django_db
def test_the_attempts_handed_with_the_locked_copy_are_documented_without_reading_them() -> None:
    payment = PaymentFactory(status=S.PROCESSING)
    _attempt(payment, AttemptOutcome.SUCCEEDED)

    with transaction.atomic():
        locked = Payment.objects.select_for_update().get(pk=payment.pk)
        attempts = list(locked.attempts.all())
        with CaptureQueriesContext(connection) as queries:
            payment_transition(
                payment_id=payment.id,
                from_statuses=[S.PROCESSING],
                to_status=S.SUCCEEDED,
                reason="charged",
                actor="worker",
                locked=locked,
                attempts=attempts,
            )

    attempt_table = PaymentAttempt._meta.db_table
    assert not [q["sql"] for q in queries.captured_queries if attempt_table in q["sql"]]
    (event,) = Event.objects.filter(subject_id=payment.id)
    assert [(a["gateway"], a["outcome"]) for a in event.data["attempts"]] == [
        ("stripe", "succeeded")
    ]


@pytest.mark.django_db
def test_a_payment_read_again_is_documented_with_its_stored_attempts_not_the_callers() -> None:
    """A stale locked copy's attempts are as stale as it is: the payment read again under
    the lock is documented with the attempts it has."""
    payment = PaymentFactory()

    with transaction.atomic():
        locked = Payment.objects.select_for_update().get(pk=payment.pk)
        payment_transition(
            payment_id=payment.id,
            from_statuses=[S.PENDING],
            to_status=S.PROCESSING,
            reason="picked up",
            actor="worker",
        )
        _attempt(payment, AttemptOutcome.DECLINED)
        payment_transition(
            payment_id=payment.id,
            from_statuses=[S.PROCESSING],
            to_status=S.FAILED,
            reason="declined",
            actor="worker",
            locked=locked,  # still says pending
            attempts=[],  # as it knew them
        )

    failed = Event.objects.get(subject_id=payment.id, type="payment.failed")
    assert [(a["gateway"], a["outcome"]) for a in failed.data["attempts"]] == [
        ("stripe", "declined")
    ]


@pytest.fixture
def published() -> Iterator[list[PaymentChanged]]:
    """The PaymentChanged events published, as a subscribing app receives them."""
    received: list[PaymentChanged] = []
    subscribe(PaymentChanged, received.append, phase=Phase.IN_TRANSACTION)
    yield received
    unsubscribe(PaymentChanged, received.append)


@pytest.mark.django_db
@pytest.mark.parametrize("copy", [False, True], ids=["read-under-lock", "caller-s-copy"])
def test_the_published_change_says_why_and_by_whom(
    published: list[PaymentChanged], copy: bool
) -> None:
    payment = PaymentFactory()

    payment_transition(
        payment_id=payment.id,
        from_statuses=[S.PENDING],
        to_status=S.CANCELED,
        reason="canceled by the wallet app",
        actor="api",
        current=Payment.objects.get(pk=payment.pk) if copy else None,
    )

    [change] = published
    assert (change.payment.pk, change.from_status, change.to_status) == (
        payment.pk, S.PENDING, S.CANCELED,
    )  # fmt: skip
    assert (change.reason, change.actor) == ("canceled by the wallet app", "api")


@pytest.mark.django_db
def test_a_caller_s_unchanged_copy_moves_with_the_changes_given() -> None:
    payment = PaymentFactory()
    copy = Payment.objects.get(pk=payment.pk)

    moved = payment_transition(
        payment_id=payment.id,
        from_statuses=[S.PENDING],
        to_status=S.PROCESSING,
        reason="picked up",
        actor="worker",
        current=copy,
        gateway="mercadopago",
    )

    assert moved is copy  # written over by its version, not read again
    row = Payment.objects.get(pk=payment.pk)
    assert (row.status, row.gateway, row.version) == (S.PROCESSING, "mercadopago", copy.version)


@pytest.mark.django_db
def test_a_caller_s_copy_moves_its_own_row_only() -> None:
    """Another payment at the same status and version is no copy of this one."""
    payment, bystander = PaymentFactory(), PaymentFactory()

    payment_transition(
        payment_id=payment.id,
        from_statuses=[S.PENDING],
        to_status=S.CANCELED,
        reason="canceled by the wallet app",
        actor="api",
        current=Payment.objects.get(pk=payment.pk),
    )

    untouched = Payment.objects.get(pk=bystander.pk)
    assert (untouched.status, untouched.version) == (S.PENDING, bystander.version)
    assert not PaymentEvent.objects.filter(payment=bystander).exists()
