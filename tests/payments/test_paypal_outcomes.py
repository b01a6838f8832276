"""What each answer of PayPal makes of a payment waiting for its payer's approval:
the status, the failure code and message, the payment's story, the metric and the alert.

Orders PayPal's simulator cannot be brought to (voided, a capture failed for good) are
given as the order a callback's read-back hands over (`approval_settle(order=...)`).
"""

import logging
import uuid
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from prometheus_client import REGISTRY

from gateways.base import ChargeResult, ChargeStatus
from gateways.models import Gateway
from payments.approvals import (
    ApprovalUnreadable,
    approval_cancel,
    approval_expire_if_due,
    approval_settle,
    payer_return_process,
)
from payments.models import FailureCode, Payment, PaymentEvent
from payments.models import PaymentStatus as S
from tests.gateway_fixtures import drive

pytestmark = [pytest.mark.services, pytest.mark.django_db]


@pytest.fixture
def waiting(paypal_payment: Any, sim: Any) -> Payment:
    payment = drive(paypal_payment(amount=1000)).payment
    assert payment.status == S.REQUIRES_ACTION
    return payment


@pytest.fixture
def paypal(gateways: dict[str, Gateway]) -> Gateway:
    return gateways["paypal"]


def approve(sim: Any, payment: Payment) -> None:
    sim.http.post(f"/paypal/approve/{payment.gateway_reference}").raise_for_status()


def order(payment: Payment, status: ChargeStatus, **fields: Any) -> ChargeResult:
    fields.setdefault("amount", payment.amount)
    fields.setdefault("currency", payment.currency)
    fields.setdefault("raw_status", str(status).upper())
    return ChargeResult(status=status, reference=payment.gateway_reference, **fields)


def counted(signal: str, outcome: str) -> float:
    labels = {"gateway": "paypal", "signal": signal, "outcome": outcome}
    return REGISTRY.get_sample_value("paywave_approvals_total", labels) or 0.0


def last_event(payment: Payment) -> PaymentEvent:
    return PaymentEvent.objects.filter(payment=payment).order_by("id").last()


def requests_to(sim: Any, path: str) -> list[dict[str, Any]]:
    return sim.http.get("/requests", params={"path": path}).json()


def test_a_payer_s_return_captures_without_reading_first_and_says_so(
    waiting: Payment, sim: Any
) -> None:
    approve(sim, waiting)
    before = counted("payer-return", "succeeded")
    reads = len(requests_to(sim, f"/paypal/v2/checkout/orders/{waiting.gateway_reference}"))

    assert payer_return_process(waiting.pk, "approved") == "succeeded"

    path = f"/paypal/v2/checkout/orders/{waiting.gateway_reference}"
    assert len(requests_to(sim, path)) == reads  # no GET of the order: the capture at once
    assert [r["method"] for r in requests_to(sim, f"{path}/capture")] == ["POST"]
    event = last_event(waiting)
    assert (event.to_status, event.actor) == (S.SUCCEEDED, "payer-return")
    assert event.reason == "the payer came back from PayPal; COMPLETED/COMPLETED"
    assert counted("payer-return", "succeeded") == before + 1
    waiting.refresh_from_db()
    assert waiting.capture_reference


def test_reconciliation_reads_then_captures_and_names_itself(waiting: Payment, sim: Any) -> None:
    approve(sim, waiting)
    before = counted("reconciliation", "succeeded")
    paypal = Gateway.objects.get(code="paypal")

    assert approval_settle(waiting, paypal, actor="reconciliation", said="reconciled") == (
        "succeeded"
    )

    event = last_event(waiting)
    assert (event.actor, event.reason) == ("reconciliation", "reconciled; COMPLETED/COMPLETED")
    assert counted("reconciliation", "succeeded") == before + 1
    waiting.refresh_from_db()
    assert waiting.capture_reference
    assert waiting.next_action is None


def test_an_order_paypal_no_longer_has_fails_the_payment(waiting: Payment, paypal: Gateway) -> None:
    Payment.objects.filter(pk=waiting.pk).update(gateway_reference="5O190127TN364715T")
    waiting.refresh_from_db()

    verdict = approval_settle(waiting, paypal, actor="reconciliation", said="reconciled")

    waiting.refresh_from_db()
    assert verdict == "failed"
    assert (waiting.status, waiting.failure_code, waiting.failure_message) == (
        S.FAILED, FailureCode.PAYMENT_DECLINED, "PayPal has no such order.",
    )  # fmt: skip
    event = last_event(waiting)
    assert (event.actor, event.reason) == ("reconciliation", "reconciled: paypal has no such order")
    assert waiting.next_action is None


def test_a_cancel_for_an_order_paypal_no_longer_has_cancels(
    waiting: Payment, paypal: Gateway
) -> None:
    Payment.objects.filter(pk=waiting.pk).update(gateway_reference="5O190127TN364715T")
    waiting.refresh_from_db()
    before = counted("payer-return", "canceled")

    assert approval_cancel(waiting, paypal, actor="payer-return") == "canceled"

    waiting.refresh_from_db()
    assert (waiting.status, waiting.failure_code, waiting.failure_message) == (
        S.CANCELED, FailureCode.CANCELED, "The payer cancelled at PayPal.",
    )  # fmt: skip
    event = last_event(waiting)
    assert (event.actor, event.reason) == ("payer-return", "the payer cancelled at PayPal")
    assert counted("payer-return", "canceled") == before + 1


def test_a_cancel_paypal_cannot_confirm_is_asked_again(
    waiting: Payment, paypal: Gateway, sim: Any
) -> None:
    sim.faults("paypal", down=True, down_mode="503")

    with pytest.raises(ApprovalUnreadable, match="paypal"):
        approval_cancel(waiting, paypal, actor="payer-return")
    waiting.refresh_from_db()
    assert waiting.status == S.REQUIRES_ACTION


def test_a_cancel_after_approving_says_so_in_the_story(
    waiting: Payment, paypal: Gateway, sim: Any
) -> None:
    approve(sim, waiting)

    assert approval_cancel(waiting, paypal, actor="payer-return") == "succeeded"

    assert last_event(waiting).reason == "payer cancelled after approving; COMPLETED/COMPLETED"


def test_an_order_paypal_voided_cancels_the_payment(waiting: Payment, paypal: Gateway) -> None:
    voided = order(waiting, ChargeStatus.CANCELED, raw_status="VOIDED")

    verdict = approval_settle(
        waiting, paypal, actor="gateway-callback", said="callback", order=voided
    )

    waiting.refresh_from_db()
    assert verdict == "canceled"
    assert (waiting.status, waiting.failure_code, waiting.failure_message) == (
        S.CANCELED, FailureCode.CANCELED, "PayPal voided the order.",
    )  # fmt: skip
    assert last_event(waiting).reason == "callback; VOIDED"
    assert waiting.next_action is None


@pytest.mark.parametrize(
    ("failure_message", "shown"),
    [("Card refused by issuer", "Card refused by issuer"), ("", "PayPal answered DECLINED.")],
)
def test_a_capture_paypal_refuses_for_good_fails_the_payment(
    waiting: Payment, paypal: Gateway, failure_message: str, shown: str
) -> None:
    refused = order(
        waiting, ChargeStatus.FAILED, raw_status="DECLINED", failure_message=failure_message
    )

    verdict = approval_settle(
        waiting, paypal, actor="gateway-callback", said="callback", order=refused
    )

    waiting.refresh_from_db()
    assert verdict == "failed"
    assert (waiting.status, waiting.failure_code, waiting.failure_message) == (
        S.FAILED, FailureCode.PAYMENT_DECLINED, shown,
    )  # fmt: skip
    assert (last_event(waiting).actor, last_event(waiting).reason) == (
        "gateway-callback", "callback; DECLINED",
    )  # fmt: skip


def test_a_capture_still_pending_at_paypal_is_not_captured_again(
    waiting: Payment, paypal: Gateway, sim: Any
) -> None:
    """An order read pending with a capture (COMPLETED/PENDING: e.g. an eCheck) is taken
    already: PayWave waits for PayPal's PAYMENT.CAPTURE.COMPLETED, it never captures again."""
    pending = order(
        waiting, ChargeStatus.PENDING, raw_status="COMPLETED/PENDING",
        capture_reference="3C679366HH908993F",
    )  # fmt: skip
    path = f"/paypal/v2/checkout/orders/{waiting.gateway_reference}/capture"

    verdict = approval_settle(waiting, paypal, actor="gateway-callback", said="cb", order=pending)

    waiting.refresh_from_db()
    assert verdict == "pending"
    assert waiting.status == S.REQUIRES_ACTION
    assert requests_to(sim, path) == []


def test_a_capture_after_the_payment_expired_alerts_an_operator(
    waiting: Payment, paypal: Gateway, caplog: pytest.LogCaptureFixture
) -> None:
    Payment.objects.filter(pk=waiting.pk).update(approval_expires_at=timezone.now())
    waiting.refresh_from_db()
    assert approval_expire_if_due(waiting, actor="reconciliation") == "expired"
    paid = order(waiting, ChargeStatus.SUCCEEDED, raw_status="COMPLETED/COMPLETED")

    with caplog.at_level(logging.ERROR, logger="paywave.alerts"):
        verdict = approval_settle(
            waiting, paypal, actor="gateway-callback", said="callback; captured", order=paid
        )

    assert verdict == "moved"
    [alert] = [r for r in caplog.records if getattr(r, "alert", "") == "paid_after_cancel"]
    assert alert.getMessage() == (
        f"payment {waiting.pk} is expired but callback; captured; COMPLETED/COMPLETED: refund "
        "the payer or reinstate the payment"
    )
    assert (alert.payment_id, alert.gateway) == (str(waiting.pk), "paypal")


def test_a_capture_for_a_payment_that_succeeded_meanwhile_raises_no_alert(
    waiting: Payment, paypal: Gateway, sim: Any, caplog: pytest.LogCaptureFixture
) -> None:
    approve(sim, waiting)
    assert payer_return_process(waiting.pk, "approved") == "succeeded"
    paid = order(waiting, ChargeStatus.SUCCEEDED, raw_status="COMPLETED/COMPLETED")

    with caplog.at_level(logging.ERROR, logger="paywave.alerts"):
        verdict = approval_settle(waiting, paypal, actor="gateway-callback", said="x", order=paid)

    assert verdict == "moved"
    assert not [r for r in caplog.records if getattr(r, "alert", "")]


def test_expiry_is_due_at_its_time_not_before(waiting: Payment) -> None:
    Payment.objects.filter(pk=waiting.pk).update(
        approval_expires_at=timezone.now() + timedelta(seconds=30)
    )
    waiting.refresh_from_db()
    assert approval_expire_if_due(waiting, actor="reconciliation") is None

    waiting.approval_expires_at = None
    assert approval_expire_if_due(waiting, actor="reconciliation") is None

    waiting.approval_expires_at = timezone.now() - timedelta(seconds=1)
    assert approval_expire_if_due(waiting, actor="reconciliation") == "expired"
    waiting.refresh_from_db()
    assert (waiting.status, waiting.failure_code, waiting.failure_message) == (
        S.EXPIRED, FailureCode.EXPIRED, "The payer did not approve the payment at PayPal in time.",
    )  # fmt: skip
    event = last_event(waiting)
    assert (event.actor, event.reason) == ("reconciliation", "not approved at PayPal in time")
    waiting.approval_expires_at = timezone.now() - timedelta(seconds=1)
    assert approval_expire_if_due(waiting, actor="reconciliation") == "moved"  # ended already


def test_a_declined_capture_is_in_the_story_and_counted(waiting: Payment, sim: Any) -> None:
    approve(sim, waiting)
    sim.faults("paypal", capture_status="declined")
    before = counted("payer-return", "declined_approve_again")

    assert payer_return_process(waiting.pk, "approved") == "declined_approve_again"

    event = last_event(waiting)
    assert (event.from_status, event.to_status, event.actor) == (
        S.REQUIRES_ACTION, S.REQUIRES_ACTION, "payer-return",
    )  # fmt: skip
    assert event.reason.startswith("the payer came back from PayPal; ")
    assert event.reason.endswith(": capture declined (INSTRUMENT_DECLINED); the payer must "
                                 "approve again")  # fmt: skip
    assert counted("payer-return", "declined_approve_again") == before + 1


def test_paypal_unreachable_is_counted_unreadable(waiting: Payment, sim: Any) -> None:
    sim.faults("paypal", down=True, down_mode="503")
    before = counted("payer-return", "unreadable")

    with pytest.raises(ApprovalUnreadable, match=r"^Retryable: "):
        payer_return_process(waiting.pk, "approved")

    assert counted("payer-return", "unreadable") == before + 1


def test_a_return_for_a_payment_not_waiting_or_without_its_gateway_does_nothing(
    waiting: Payment, paypal_payment: Any
) -> None:
    pending = paypal_payment()
    assert payer_return_process(pending.pk, "approved") == "moved"  # not waiting yet

    Gateway.objects.filter(code="paypal").delete()
    assert payer_return_process(waiting.pk, "approved") == "moved"
    assert payer_return_process(waiting.pk, "cancelled") == "moved"
    waiting.refresh_from_db()
    assert waiting.status == S.REQUIRES_ACTION


def test_a_capture_of_another_amount_is_flagged_not_settled(
    waiting: Payment, paypal: Gateway, caplog: pytest.LogCaptureFixture
) -> None:
    other = order(waiting, ChargeStatus.SUCCEEDED, amount=999, raw_status="COMPLETED/COMPLETED")

    with caplog.at_level(logging.ERROR, logger="paywave.alerts"):
        verdict = approval_settle(waiting, paypal, actor="gateway-callback", said="cb", order=other)

    waiting.refresh_from_db()
    assert verdict == "parked"
    assert (waiting.status, waiting.needs_reconciliation) == (S.REQUIRES_ACTION, True)
    assert waiting.reconciliation_reason == "paypal: the charge is for 999, not 1000"
    assert [r.alert for r in caplog.records if getattr(r, "alert", "")] == [
        "gateway_amount_mismatch"
    ]


def test_long_words_from_paypal_are_cut_to_their_columns(
    waiting: Payment, paypal: Gateway, paypal_payment: Any, sim: Any
) -> None:
    refused = order(waiting, ChargeStatus.FAILED, raw_status="DECLINED", failure_message="m" * 300)

    approval_settle(waiting, paypal, actor="gateway-callback", said="s" * 300, order=refused)

    waiting.refresh_from_db()
    assert waiting.failure_message == "m" * 255
    assert last_event(waiting).reason == "s" * 255
    again = drive(paypal_payment()).payment
    declined = order(again, ChargeStatus.REQUIRES_ACTION, failure_code="INSTRUMENT_DECLINED")
    assert approval_settle(
        again, paypal, actor="gateway-callback", said="d" * 300, order=declined
    ) == ("declined_approve_again")
    assert last_event(again).reason == "d" * 255


def test_approvals_are_logged_with_their_payment(
    waiting: Payment, paypal: Gateway, sim: Any, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="paywave.events"):
        assert approval_settle(waiting, paypal, actor="reconciliation", said="r") == "waiting"
        sim.faults("paypal", down=True, down_mode="503")
        with pytest.raises(ApprovalUnreadable):
            approval_settle(waiting, paypal, actor="reconciliation", said="r")
        with pytest.raises(ApprovalUnreadable, match=r"^Retryable: "):
            approval_cancel(waiting, paypal, actor="payer-return")
        sim.reset_faults()
        assert approval_cancel(waiting, paypal, actor="payer-return") == "canceled"

    lines = [r for r in caplog.records if getattr(r, "event", "") == "approval"]
    assert [(r.signal, r.outcome, r.payment_id) for r in lines] == [
        ("reconciliation", "waiting", str(waiting.pk)),
        ("reconciliation", "unreadable", str(waiting.pk)),
        ("payer-return", "canceled", str(waiting.pk)),
    ]


def test_a_return_for_no_payment_does_nothing(waiting: Payment) -> None:
    assert payer_return_process(uuid.uuid4(), "approved") == "moved"
