"""PayPal payments end to end: the engine, the payer's round trip and the three signs of
approval, through the real SDK against the PayPal simulator.

The simulator is given a capture URL for its callbacks (the `capture` fixture): it builds
and signs CHECKOUT.ORDER.APPROVED and hands it back, and the test posts it to PayWave when
it chooses, so the return, the callback and reconciliation can be raced.
"""

import threading
import uuid
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from gateways.models import CallbackStatus, Gateway, GatewayCallback
from gateways.registry import adapter_for
from notifications.models import Event
from payments.approvals import ApprovalUnreadable, payer_return_process
from payments.callbacks import callback_process
from payments.models import FailureCode, Payment, PaymentEvent, Refund
from payments.models import PaymentStatus as S
from payments.reconciliation import payments_reconcile
from payments.refunds import refund_process
from tests.gateway_fixtures import GATEWAY_TIMEOUT_MS, drive
from tests.payments.callbacks.helpers import post_callback, receive_and_process, run_refund_jobs

pytestmark = [pytest.mark.services, pytest.mark.django_db]

BACK = "https://wallet.example/paypal/done?order=1001"
CANCELLED = "https://wallet.example/paypal/cancelled"


def waiting(paypal_payment: Any, **fields: Any) -> Payment:
    payment = drive(paypal_payment(**fields)).payment
    assert payment.status == S.REQUIRES_ACTION, payment.failure_message
    return payment


def payer_approves(sim: Any, payment: Payment) -> dict[str, Any]:
    """The payer approves at PayPal: the simulator's answer (its callback, the redirect)."""
    answer = sim.http.post(f"/paypal/approve/{payment.gateway_reference}")
    assert answer.status_code == 200, answer.text
    return answer.json()


def payer_cancels(sim: Any, payment: Payment) -> dict[str, Any]:
    answer = sim.http.post(
        f"/paypal/approve/{payment.gateway_reference}", json={"action": "cancel"}
    )
    assert answer.status_code == 200, answer.text
    return answer.json()


def browser_follows(url: str) -> Any:
    """The payer's browser lands on PayWave's page PayPal sent it to."""
    parts = urlsplit(url)
    return Client().get(parts.path, parse_qs(parts.query))


def captures_at_paypal(sim: Any, payment: Payment) -> int:
    """The captures PayPal holds for the payment's order, read back through the SDK."""
    [order] = sim.charges(payment.id, gateway="paypal")
    read = adapter_for(Gateway.objects.get(code="paypal"))._order(order["id"])
    return len((read["purchase_units"][0].get("payments") or {}).get("captures") or [])


def due_for_reconciliation(payment: Payment) -> None:
    Payment.objects.filter(pk=payment.pk).update(next_attempt_at=timezone.now())


# The order and the payer's page.


def test_a_paypal_payment_sends_the_payer_to_approve_it(paypal_payment: Any, capture: Any) -> None:
    before = timezone.now()
    payment = waiting(paypal_payment, cancel_url=CANCELLED)

    url = payment.next_action["url"]
    assert parse_qs(urlsplit(url).query)["token"] == [payment.gateway_reference]
    assert payment.next_action["redirect_to_url"] == {"url": url, "return_url": BACK}
    assert payment.gateway == "paypal"
    expires = payment.approval_expires_at - before
    assert timedelta(hours=3) <= expires < timedelta(hours=3, minutes=1)
    # PayPal sends the payer back through PayWave's own pages, which name the payment.
    approved = payer_approves(capture, payment)
    back = urlsplit(approved["redirect"])
    assert back.path == f"/paypal/return/{payment.id}"
    assert parse_qs(back.query)["token"] == [payment.gateway_reference]


def test_the_api_shows_the_order_and_the_approval_page(
    api: Any, wallet_app: Any, paypal_payment: Any, capture: Any
) -> None:
    payment = waiting(paypal_payment, client=wallet_app)

    document = api.get(f"/api/v1/payments/{payment.id}").json()

    assert document["method"] == "paypal"
    assert document["status"] == "requires_action"
    assert document["paypal"]["order_id"] == payment.gateway_reference
    assert document["paypal"]["capture_id"] is None
    assert document["paypal"]["approval_expires_at"]
    assert document["next_action"]["url"] == payment.next_action["url"]
    assert (document["pix"], document["card"]) == (None, None)


# Approved: captured once, whichever sign comes first.


def test_the_payer_s_return_captures_and_sends_the_payer_on(
    paypal_payment: Any, capture: Any
) -> None:
    payment = waiting(paypal_payment)
    approved = payer_approves(capture, payment)

    response = browser_follows(approved["redirect"])
    assert response.status_code == 303
    location = urlsplit(response["Location"])
    assert (location.netloc, location.path) == ("wallet.example", "/paypal/done")
    assert parse_qs(location.query) == {
        "order": ["1001"], "payment_id": [str(payment.id)], "paypal": ["approved"],
    }  # fmt: skip
    assert payer_return_process(payment.id, "approved") == "succeeded"  # the job it queued

    payment.refresh_from_db()
    assert payment.status == S.SUCCEEDED
    assert payment.capture_reference
    assert payment.next_action is None
    assert captures_at_paypal(capture, payment) == 1


def test_the_approval_callback_alone_captures(paypal_payment: Any, capture: Any) -> None:
    payment = waiting(paypal_payment)

    callback = receive_and_process("paypal", payer_approves(capture, payment)["callback"])

    payment.refresh_from_db()
    assert callback.status == CallbackStatus.PROCESSED
    assert payment.status == S.SUCCEEDED
    assert captures_at_paypal(capture, payment) == 1


def test_reconciliation_alone_captures_when_return_and_callback_are_lost(
    paypal_payment: Any, capture: Any
) -> None:
    payment = waiting(paypal_payment)
    payer_approves(capture, payment)  # the browser closed; the callback never arrived

    assert payments_reconcile() == {}  # not due yet: read once per poll interval
    due_for_reconciliation(payment)
    assert payments_reconcile() == {"succeeded": 1}

    payment.refresh_from_db()
    assert payment.status == S.SUCCEEDED
    assert captures_at_paypal(capture, payment) == 1


def test_return_callback_and_reconciliation_in_any_order_capture_once(
    paypal_payment: Any, capture: Any
) -> None:
    payment = waiting(paypal_payment)
    approved = payer_approves(capture, payment)

    assert payer_return_process(payment.id, "approved") == "succeeded"
    callback = receive_and_process("paypal", approved["callback"])
    due_for_reconciliation(payment)
    payments_reconcile()

    payment.refresh_from_db()
    assert payment.status == S.SUCCEEDED
    assert callback.status in (CallbackStatus.IGNORED, CallbackStatus.PROCESSED)
    assert captures_at_paypal(capture, payment) == 1
    assert PaymentEvent.objects.filter(payment=payment, to_status=S.SUCCEEDED).count() == 1
    assert Event.objects.filter(subject_id=payment.id, type="payment.succeeded").count() == 1


@pytest.mark.django_db(transaction=True)
def test_return_callback_and_reconciliation_racing_capture_once(
    paypal_payment: Any, capture: Any
) -> None:
    payment = waiting(paypal_payment)
    approved = payer_approves(capture, payment)
    assert post_callback("paypal", approved["callback"]).status_code == 200
    callback_id = GatewayCallback.objects.filter(gateway="paypal").values_list("pk", flat=True)[0]
    due_for_reconciliation(payment)
    start = threading.Barrier(3)
    failures: list[BaseException] = []

    def run(sign: Any) -> None:
        try:
            start.wait()
            sign()
        except BaseException as exc:
            failures.append(exc)
        finally:
            connection.close()

    signs = [
        lambda: payer_return_process(payment.id, "approved"),
        lambda: callback_process(callback_id),
        payments_reconcile,
    ]
    threads = [threading.Thread(target=run, args=(sign,)) for sign in signs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert failures == []
    payment.refresh_from_db()
    assert payment.status == S.SUCCEEDED
    assert captures_at_paypal(capture, payment) == 1
    assert PaymentEvent.objects.filter(payment=payment, to_status=S.SUCCEEDED).count() == 1
    assert Event.objects.filter(subject_id=payment.id, type="payment.succeeded").count() == 1


def test_a_capture_paypal_cannot_answer_is_asked_again(paypal_payment: Any, capture: Any) -> None:
    payment = waiting(paypal_payment)
    payer_approves(capture, payment)
    capture.faults("paypal", down=True, down_mode="503")

    with pytest.raises(ApprovalUnreadable):
        payer_return_process(payment.id, "approved")
    payment.refresh_from_db()
    assert payment.status == S.REQUIRES_ACTION

    capture.reset_faults()
    assert payer_return_process(payment.id, "approved") == "succeeded"
    assert captures_at_paypal(capture, payment) == 1


# Declined, cancelled, expired.


def test_a_declined_capture_sends_the_payer_back_to_approve_again(
    paypal_payment: Any, capture: Any
) -> None:
    payment = waiting(paypal_payment)
    payer_approves(capture, payment)
    capture.faults("paypal", capture_status="declined")

    assert payer_return_process(payment.id, "approved") == "declined_approve_again"

    payment.refresh_from_db()
    assert payment.status == S.REQUIRES_ACTION
    assert payment.next_action["url"]  # the same approval page
    story = PaymentEvent.objects.filter(payment=payment).order_by("id").last()
    assert "INSTRUMENT_DECLINED" in story.reason
    capture.reset_faults()
    payer_approves(capture, payment)  # another funding source
    assert payer_return_process(payment.id, "approved") == "succeeded"
    assert captures_at_paypal(capture, payment) == 1


def test_a_payer_who_cancels_is_sent_to_the_cancel_url_and_the_payment_cancelled(
    paypal_payment: Any, capture: Any
) -> None:
    payment = waiting(paypal_payment, cancel_url=CANCELLED)

    response = browser_follows(payer_cancels(capture, payment)["redirect"])

    assert response.status_code == 303
    location = urlsplit(response["Location"])
    assert (location.netloc, location.path) == ("wallet.example", "/paypal/cancelled")
    assert parse_qs(location.query)["paypal"] == ["cancelled"]
    assert payer_return_process(payment.id, "cancelled") == "canceled"
    payment.refresh_from_db()
    assert (payment.status, payment.failure_code) == (S.CANCELED, FailureCode.CANCELED)
    assert payment.next_action is None
    assert captures_at_paypal(capture, payment) == 0


def test_without_a_cancel_url_a_cancelling_payer_goes_to_the_return_url(
    paypal_payment: Any, capture: Any
) -> None:
    payment = waiting(paypal_payment)

    response = browser_follows(payer_cancels(capture, payment)["redirect"])

    assert urlsplit(response["Location"]).path == "/paypal/done"


def test_a_cancel_after_approving_captures_instead(paypal_payment: Any, capture: Any) -> None:
    payment = waiting(paypal_payment)
    payer_approves(capture, payment)

    assert payer_return_process(payment.id, "cancelled") == "succeeded"
    assert captures_at_paypal(capture, payment) == 1


def test_an_order_not_approved_in_time_expires(paypal_payment: Any, capture: Any) -> None:
    payment = waiting(paypal_payment)
    Payment.objects.filter(pk=payment.pk).update(
        approval_expires_at=timezone.now() - timedelta(seconds=1), next_attempt_at=timezone.now()
    )

    assert payments_reconcile() == {"expired": 1}

    payment.refresh_from_db()
    assert (payment.status, payment.failure_code) == (S.EXPIRED, FailureCode.EXPIRED)
    assert Event.objects.filter(subject_id=payment.id, type="payment.expired").count() == 1


def test_an_order_still_in_time_is_read_again_next_interval(
    paypal_payment: Any, capture: Any, settings: Any
) -> None:
    payment = waiting(paypal_payment)
    due_for_reconciliation(payment)

    assert payments_reconcile() == {"waiting": 1}

    payment.refresh_from_db()
    assert payment.status == S.REQUIRES_ACTION
    later = payment.next_attempt_at - timezone.now()
    poll = settings.PAYWAVE_APPROVAL_POLL_SECONDS
    assert timedelta(seconds=poll - 5) < later <= timedelta(seconds=poll)
    assert payments_reconcile() == {}


def test_the_approval_window_is_a_setting(paypal_payment: Any, capture: Any, settings: Any) -> None:
    settings.PAYWAVE_PAYPAL_APPROVAL_EXPIRES_SECONDS = 600
    before = timezone.now()

    payment = waiting(paypal_payment)

    assert timedelta(seconds=600) <= payment.approval_expires_at - before < timedelta(seconds=660)


def test_a_return_paypal_does_not_vouch_for_changes_nothing(
    paypal_payment: Any, capture: Any
) -> None:
    payment = waiting(paypal_payment)

    forged = Client().get(f"/paypal/return/{payment.id}", {"token": "NOT-THE-ORDER"})
    unknown = Client().get(f"/paypal/return/{uuid.uuid4()}", {"token": payment.gateway_reference})
    missing = Client().get(f"/paypal/cancel/{payment.id}")
    posted = Client().post(f"/paypal/return/{payment.id}?token={payment.gateway_reference}")

    assert [r.status_code for r in (forged, unknown, missing, posted)] == [404, 404, 404, 405]
    payment.refresh_from_db()
    assert payment.status == S.REQUIRES_ACTION
    # Not approved, a return that claims it captures nothing.
    assert payer_return_process(payment.id, "approved") == "waiting"
    assert captures_at_paypal(capture, payment) == 0


# Faults at order creation: the engine's rules hold.


def test_paypal_answering_503_is_tried_three_times_then_fails_without_a_fallback(
    paypal_payment: Any, sim: Any
) -> None:
    sim.faults("paypal", down=True, down_mode="503")

    run = drive(paypal_payment())

    assert run.payment.status == S.FAILED
    assert run.payment.failure_code == FailureCode.GATEWAYS_EXHAUSTED
    assert run.payment.attempts.count() == 3
    assert len(run.countdowns) == 3  # two backoffs and the move past the gateway


def test_a_second_paypal_account_is_the_fallback(
    paypal_payment: Any, sim: Any, gateways: dict[str, Gateway]
) -> None:
    Gateway.objects.create(
        code="paypal-backup", adapter="paypal", display_name="PayPal (backup account)",
        priority=20, methods=["paypal"], currencies=["USD"], countries=[],
        timeout_ms=GATEWAY_TIMEOUT_MS,
    )  # fmt: skip
    sim.faults("paypal", down=True, down_mode="503")

    def first_account_down(step: int) -> None:  # one simulator serves both accounts
        if step == 3:
            sim.reset_faults()

    payment = drive(paypal_payment(), before_step=first_account_down).payment

    assert payment.status == S.REQUIRES_ACTION
    assert payment.gateway == "paypal-backup"
    assert [a.gateway for a in payment.attempts.order_by("id")] == ["paypal"] * 3 + [
        "paypal-backup"
    ]


def test_a_lost_answer_finds_the_one_order(paypal_payment: Any, sim: Any) -> None:
    sim.faults("paypal", timeout_rate=1)

    def heal(step: int) -> None:
        if step == 2:
            sim.reset_faults()

    payment = drive(paypal_payment(), before_step=heal).payment

    assert payment.status == S.REQUIRES_ACTION
    assert len(sim.charges(payment.id, gateway="paypal")) == 1


# Refunds.


@pytest.fixture
def paid_paypal(paypal_payment: Any, capture: Any, wallet_app: Any) -> Payment:
    payment = waiting(paypal_payment, client=wallet_app, amount=1000)
    payer_approves(capture, payment)
    assert payer_return_process(payment.id, "approved") == "succeeded"
    payment.refresh_from_db()
    return payment


def refund(api: Any, payment: Payment, amount: int | None) -> Refund:
    body = {} if amount is None else {"amount": amount}
    created = api.post(
        f"/api/v1/payments/{payment.id}/refunds", body, format="json",
        HTTP_IDEMPOTENCY_KEY=f"refund-{uuid.uuid4()}",
    )  # fmt: skip
    assert created.status_code == 202, created.content
    run_refund_jobs(created.json()["id"])
    return Refund.objects.get(pk=created.json()["id"])


def test_a_paypal_payment_is_refunded_in_part_then_in_full(
    api: Any, paid_paypal: Payment, capture: Any
) -> None:
    first = refund(api, paid_paypal, 300)
    paid_paypal.refresh_from_db()
    assert (first.status, paid_paypal.status) == ("succeeded", S.PARTIALLY_REFUNDED)
    assert first.gateway_reference

    rest = refund(api, paid_paypal, None)
    paid_paypal.refresh_from_db()
    assert (rest.status, rest.amount) == ("succeeded", 700)
    assert (paid_paypal.status, paid_paypal.amount_refunded) == (S.REFUNDED, 1000)
    [order] = capture.charges(paid_paypal.id, gateway="paypal")
    assert order["amount_refunded"] == 1000


def test_a_refund_paypal_cannot_answer_is_retried_with_its_key(
    api: Any, paid_paypal: Payment, capture: Any
) -> None:
    capture.faults("paypal", timeout_rate=1)
    created = api.post(
        f"/api/v1/payments/{paid_paypal.id}/refunds", {"amount": 400}, format="json",
        HTTP_IDEMPOTENCY_KEY="refund-lost-answer",
    )  # fmt: skip
    refund_id = created.json()["id"]
    token = str(Refund.objects.values_list("job_token", flat=True).get(pk=refund_id))
    step = refund_process(refund_id, token)  # the answer is lost
    assert step is not None
    capture.reset_faults()
    run_refund_jobs(refund_id)

    done = Refund.objects.get(pk=refund_id)
    assert done.status == "succeeded"
    [order] = capture.charges(paid_paypal.id, gateway="paypal")
    assert order["amount_refunded"] == 400  # refunded once


# PayPal's callbacks at PayWave's URL.


def test_a_replayed_approval_callback_is_a_duplicate_and_captures_nothing_more(
    paypal_payment: Any, capture: Any
) -> None:
    payment = waiting(paypal_payment)
    delivery = payer_approves(capture, payment)["callback"]

    first = receive_and_process("paypal", delivery)
    again = post_callback("paypal", delivery)

    assert first.status == CallbackStatus.PROCESSED
    assert again.status_code == 200
    assert again.json() == {"received": True, "duplicate": True}
    assert GatewayCallback.objects.filter(gateway="paypal").count() == 1
    assert captures_at_paypal(capture, payment) == 1


def test_a_tampered_approval_callback_is_refused_and_changes_nothing(
    paypal_payment: Any, capture: Any
) -> None:
    payment = waiting(paypal_payment)
    delivery = payer_approves(capture, payment)["callback"]
    tampered = delivery["body"].replace(payment.gateway_reference, "5O190127TN364715T")

    response = post_callback("paypal", delivery, body=tampered.encode())

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_callback"
    payment.refresh_from_db()
    assert payment.status == S.REQUIRES_ACTION
    assert captures_at_paypal(capture, payment) == 0


def test_an_order_paypal_cannot_be_read_past_its_time_is_not_expired(
    paypal_payment: Any, capture: Any, settings: Any
) -> None:
    """A capture may have been made whose answer was lost: expiring it unread could leave
    money taken for an expired payment. It stays, past its time, and is read again."""
    payment = waiting(paypal_payment)
    Payment.objects.filter(pk=payment.pk).update(
        approval_expires_at=timezone.now() - timedelta(hours=1), next_attempt_at=timezone.now()
    )
    capture.faults("paypal", down=True, down_mode="503")

    assert payments_reconcile() == {"unreachable": 1}

    payment.refresh_from_db()
    assert payment.status == S.REQUIRES_ACTION
    assert payment.next_attempt_at > timezone.now()
    capture.reset_faults()
    due_for_reconciliation(payment)
    assert payments_reconcile() == {"expired": 1}  # read: still not approved
