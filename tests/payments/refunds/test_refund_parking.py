"""A refund's outcome: settled, failed (money back to the wallet) or parked (reconciliation).

Either touches that refund only, once, with what a person needs: the reason, one alert
naming the refund, the payment and the gateway. The refund engine's own functions,
called as a worker calls them after its last try; no gateway involved.
"""

from typing import Any

import pytest

from gateways.base import RefundResult, RefundStatus
from notifications.models import Event
from payments.models import PaymentStatus, Refund
from payments.refunds import _claim_try, _retry_later, refund_apply_result, refund_fail, refund_park
from tests.factories import PaymentFactory

pytestmark = pytest.mark.django_db


def alerts(caplog: pytest.LogCaptureFixture, kind: str) -> list[Any]:
    return [r for r in caplog.records if getattr(r, "alert", "") == kind]


@pytest.fixture
def refunds(db: Any) -> list[Refund]:
    """Two pending refunds of one paid card payment, each past its tries."""
    payment = PaymentFactory(card=True, status=PaymentStatus.SUCCEEDED, gateway="stripe")
    return [
        Refund.objects.create(payment=payment, amount=amount, gateway="stripe", actor="api",
                              tries=3, job_token="00000000-0000-0000-0000-00000000000" + str(n))
        for n, amount in enumerate((300, 200))
    ]  # fmt: skip


def test_parking_a_refund_leaves_it_to_reconciliation_once_with_one_alert(
    refunds: list[Refund], caplog: pytest.LogCaptureFixture
) -> None:
    refund, bystander = refunds

    refund_park(refund, "stripe: no answer after the request was sent")
    refund_park(refund, "another message")  # parked already: nothing more

    stored = Refund.objects.get(pk=refund.pk)
    assert (stored.status, stored.needs_reconciliation, stored.job_token) == (
        "pending", True, None,
    )  # fmt: skip
    assert stored.parked_at is not None
    assert stored.last_error == (
        "parked after 3 tries, the gateway may hold the refund; "
        "last: stripe: no answer after the request was sent"
    )
    assert (refund.needs_reconciliation, refund.parked_at) == (True, stored.parked_at)
    other = Refund.objects.get(pk=bystander.pk)
    assert (other.needs_reconciliation, other.parked_at, other.last_error) == (False, None, "")
    assert other.job_token is not None
    [alert] = alerts(caplog, "refund_parked")
    assert (alert.refund_id, alert.payment_id, alert.gateway) == (
        str(refund.id), str(refund.payment_id), "stripe",
    )  # fmt: skip
    assert str(refund.id) in alert.getMessage()
    assert "no answer after the request was sent" in alert.getMessage()


def test_a_long_reason_is_cut_to_what_the_refund_keeps(refunds: list[Refund]) -> None:
    refund, _ = refunds

    refund_park(refund, "stripe: " + "x" * 600)

    stored = Refund.objects.get(pk=refund.pk)
    assert len(stored.last_error) == Refund._meta.get_field("last_error").max_length == 500
    assert stored.last_error.startswith("parked after 3 tries, the gateway may hold the refund")


def test_a_settled_refund_is_never_parked(refunds: list[Refund]) -> None:
    refund = refunds[0]
    Refund.objects.filter(pk=refund.pk).update(status="succeeded")

    refund_park(refund, "late")

    assert Refund.objects.get(pk=refund.pk).parked_at is None


def test_a_failed_refund_is_failed_once_and_published(refunds: list[Refund]) -> None:
    refund, bystander = refunds

    assert refund_fail(refund, "The gateway declined the refund.", last_error="HTTP 402")
    assert not refund_fail(refund, "again")  # failed already: nothing more

    stored = Refund.objects.get(pk=refund.pk)
    assert (stored.status, stored.failure_message, stored.last_error) == (
        "failed", "The gateway declined the refund.", "HTTP 402",
    )  # fmt: skip
    assert refund.status == "failed"  # the caller's copy is what was written
    assert Refund.objects.get(pk=bystander.pk).status == "pending"
    [event] = Event.objects.filter(type="refund.failed")
    assert (event.subject_id, event.client_id) == (refund.payment_id, refund.payment.client_id)
    assert {k: event.data[k] for k in ("id", "payment_id", "amount", "status")} == {
        "id": str(refund.id), "payment_id": str(refund.payment_id), "amount": 300,
        "status": "failed",
    }  # fmt: skip
    assert event.data["failure_message"] == "The gateway declined the refund."
    assert event.data["created_at"].endswith("Z")


def test_a_failure_without_its_own_detail_keeps_the_message_as_the_error(
    refunds: list[Refund],
) -> None:
    refund = refunds[0]

    refund_fail(refund, "x" * 600)

    stored = Refund.objects.get(pk=refund.pk)
    assert (stored.failure_message, stored.last_error) == ("x" * 255, "x" * 500)


def test_a_refund_a_try_may_have_made_is_not_failed_when_asked_only_if_unflagged(
    refunds: list[Refund],
) -> None:
    refund = refunds[0]
    Refund.objects.filter(pk=refund.pk).update(needs_reconciliation=True)

    assert not refund_fail(refund, "unreachable", only_if_unflagged=True)

    assert Refund.objects.get(pk=refund.pk).status == "pending"
    assert refund_fail(refund, "the gateway says it has none")  # a sure answer still fails it


def test_a_gateway_s_answer_settles_that_refund_only(refunds: list[Refund]) -> None:
    refund, bystander = refunds

    done = RefundResult(status=RefundStatus.SUCCEEDED, reference="re_1", amount=300,
                        raw_status="succeeded")  # fmt: skip
    assert refund_apply_result(refund, done) == "succeeded"
    assert refund_apply_result(refund, done) == "succeeded"  # told twice: settled once

    stored = Refund.objects.get(pk=refund.pk)
    assert (stored.status, stored.gateway_reference) == ("succeeded", "re_1")
    refund.payment.refresh_from_db()
    assert (refund.payment.status, refund.payment.amount_refunded) == (
        PaymentStatus.PARTIALLY_REFUNDED, 300,
    )  # fmt: skip
    assert Event.objects.filter(type="refund.succeeded").count() == 1
    assert Refund.objects.get(pk=bystander.pk).status == "pending"


def test_a_refund_the_gateway_refused_fails_with_its_word(refunds: list[Refund]) -> None:
    refund = refunds[0]
    refused = RefundResult(status=RefundStatus.FAILED, reference="re_2", amount=300,
                           raw_status="insufficient_funds")  # fmt: skip

    assert refund_apply_result(refund, refused) == "failed"

    stored = Refund.objects.get(pk=refund.pk)
    assert stored.status == "failed"
    assert stored.failure_message == "The gateway refused the refund (insufficient_funds)."


def test_a_refund_pending_at_the_gateway_keeps_its_reference_and_is_flagged(
    refunds: list[Refund],
) -> None:
    refund, bystander = refunds
    before = Refund.objects.get(pk=refund.pk).updated_at
    pending = RefundResult(status=RefundStatus.PENDING, reference="re_3", amount=300,
                           raw_status="pending")  # fmt: skip

    assert refund_apply_result(refund, pending) == "pending"

    stored = Refund.objects.get(pk=refund.pk)
    assert (stored.status, stored.gateway_reference, stored.needs_reconciliation) == (
        "pending", "re_3", True,
    )  # fmt: skip
    assert stored.updated_at > before
    assert refund.needs_reconciliation is True
    other = Refund.objects.get(pk=bystander.pk)
    assert (other.gateway_reference, other.needs_reconciliation) == ("", False)


def test_a_refund_settled_meanwhile_is_left_as_settled_by_a_job_holding_an_old_copy(
    refunds: list[Refund],
) -> None:
    """Reconciliation settled the refund (its token kept) while a job held the row as read
    before: the job neither claims a try, nor schedules one, nor flags the refund."""
    stale, _ = refunds
    Refund.objects.filter(pk=stale.pk).update(status="succeeded", gateway_reference="re_done")
    before = Refund.objects.get(pk=stale.pk)

    assert not _claim_try(stale)
    assert _retry_later(stale, None) is None
    pending = RefundResult(status=RefundStatus.PENDING, reference="re_other", amount=300,
                           raw_status="pending")  # fmt: skip
    refund_apply_result(stale, pending)

    after = Refund.objects.get(pk=stale.pk)
    assert (after.status, after.tries, after.job_token, after.gateway_reference) == (
        "succeeded", before.tries, before.job_token, "re_done",
    )  # fmt: skip
    assert (after.needs_reconciliation, after.next_attempt_at, after.last_error) == (
        False, before.next_attempt_at, before.last_error,
    )  # fmt: skip
