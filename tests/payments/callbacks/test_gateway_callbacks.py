"""Gateway callbacks: the simulators build and sign them as the real gateways do.

The simulators are given a capture URL (not http), so they build and sign each
callback and hand it back in their /_sim answer instead of sending it; the test
posts exactly those bytes and headers to /webhooks/<gateway>, then runs the
worker's processing in process.
"""

import hashlib
import hmac
import json
import time
from typing import Any

import pytest
from django.test import Client

from gateways.models import CallbackStatus, Gateway, GatewayCallback
from gateways.simulators.config import SANDBOX_WEBHOOK_SECRETS
from notifications.models import Event
from payments.callbacks import callback_process
from payments.models import PaymentStatus as S
from tests.gateway_fixtures import drive
from tests.payments.callbacks.helpers import pay_pix, post_callback, receive_and_process

pytestmark = [pytest.mark.services, pytest.mark.django_db]


def stripe_signed(event: dict[str, Any], *, at: int | None = None) -> dict[str, Any]:
    body = json.dumps(event)
    timestamp = int(time.time()) if at is None else at
    secret = SANDBOX_WEBHOOK_SECRETS["stripe"].encode()
    mac = hmac.new(secret, f"{timestamp}.{body}".encode(), hashlib.sha256).hexdigest()
    return {
        "url": "capture://paywave/webhooks/stripe",
        "headers": {
            "Content-Type": "application/json",
            "Stripe-Signature": f"t={timestamp},v1={mac}",
        },
        "body": body,
    }


def test_mercadopago_pix_paid_by_callback(pix_payment: Any, capture: Any) -> None:
    payment = drive(pix_payment()).payment
    assert payment.status == S.AWAITING_PAYMENT

    callback = receive_and_process("mercadopago", pay_pix(capture, payment))

    payment.refresh_from_db()
    assert payment.status == S.SUCCEEDED
    assert callback.status == CallbackStatus.PROCESSED
    assert callback.payment_id == payment.id
    assert Event.objects.filter(subject_id=payment.id, type="payment.succeeded").count() == 1


def test_gerencianet_pix_paid_by_callback(pix_payment: Any, capture: Any) -> None:
    Gateway.objects.filter(code="mercadopago").update(enabled=False)
    payment = drive(pix_payment()).payment
    assert payment.gateway == "gerencianet"

    delivery = pay_pix(capture, payment)
    assert "hmac=" in delivery["url"]
    callback = receive_and_process("gerencianet", delivery)

    payment.refresh_from_db()
    assert payment.status == S.SUCCEEDED
    assert callback.event_id  # the endToEndId: the dedupe key


def test_stripe_3ds_completed_or_failed_by_callback(card_payment: Any, capture: Any) -> None:
    passed = drive(card_payment("pm_card_authenticationRequired")).payment
    failed = drive(card_payment("pm_card_authenticationRequired")).payment
    assert passed.status == failed.status == S.REQUIRES_ACTION

    for payment, result in ((passed, "succeed"), (failed, "fail")):
        answer = capture.http.post(
            f"/card/{payment.gateway_reference}/authenticate", json={"result": result}
        )
        assert answer.status_code == 200, answer.text
        response = post_callback("stripe", answer.json()["callback"])
        assert response.status_code == 200
    for callback in GatewayCallback.objects.filter(gateway="stripe"):
        callback_process(callback.pk)

    passed.refresh_from_db()
    failed.refresh_from_db()
    assert passed.status == S.SUCCEEDED
    assert passed.next_action is None
    assert failed.status == S.FAILED
    assert failed.failure_code == "card_declined"


def test_a_duplicate_callback_is_stored_and_processed_once(pix_payment: Any, capture: Any) -> None:
    payment = drive(pix_payment()).payment
    delivery = pay_pix(capture, payment)

    first = post_callback("mercadopago", delivery)
    again = post_callback("mercadopago", delivery)

    assert first.json() == {"received": True, "duplicate": False}
    assert again.json() == {"received": True, "duplicate": True}
    assert GatewayCallback.objects.filter(gateway="mercadopago").count() == 1


@pytest.mark.parametrize(
    "tamper",
    ["forged_body", "forged_signature", "stale", "malformed", "missing_signature"],
)
def test_forged_stale_and_malformed_callbacks_are_refused(
    card_payment: Any, capture: Any, tamper: str
) -> None:
    payment = drive(card_payment("pm_card_authenticationRequired")).payment
    intent = capture.http.get("/charges", params={"reference": str(payment.id)}).json()[0]
    event = {
        "id": "evt_test_1",
        "object": "event",
        "type": "payment_intent.succeeded",
        "created": int(time.time()),
        "livemode": False,
        "data": {
            "object": {
                "id": intent["id"],
                "object": "payment_intent",
                "metadata": {"payment_id": str(payment.id)},
            }
        },
    }
    delivery = stripe_signed(event)
    body = None
    if tamper == "forged_body":
        body = delivery["body"].replace("evt_test_1", "evt_test_2").encode()
    elif tamper == "forged_signature":
        delivery["headers"]["Stripe-Signature"] = (
            delivery["headers"]["Stripe-Signature"][:-4] + "0000"
        )
    elif tamper == "stale":
        delivery = stripe_signed(event, at=int(time.time()) - 3600)
    elif tamper == "malformed":
        delivery = stripe_signed({"not": "an event"})
        delivery["body"] = delivery["body"][:-1]
    else:
        del delivery["headers"]["Stripe-Signature"]

    response = post_callback("stripe", delivery, body=body)

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_callback"
    rejected = GatewayCallback.objects.get(gateway="stripe")
    assert rejected.status == CallbackStatus.REJECTED
    payment.refresh_from_db()
    assert payment.status == S.REQUIRES_ACTION


def intent_event(
    payment: Any, event_type: str, event_id: str, *, age_seconds: int = 0
) -> dict[str, Any]:
    """A Stripe event about the payment's PaymentIntent, `age_seconds` old."""
    return {
        "id": event_id,
        "object": "event",
        "type": event_type,
        "created": int(time.time()) - age_seconds,
        "livemode": False,
        "data": {
            "object": {
                "id": payment.gateway_reference,
                "object": "payment_intent",
                "metadata": {"payment_id": str(payment.id)},
            }
        },
    }


def test_a_late_pending_callback_never_moves_a_payment_back(
    card_payment: Any, capture: Any
) -> None:
    payment = drive(card_payment()).payment
    assert payment.status == S.SUCCEEDED
    event = intent_event(payment, "payment_intent.processing", "evt_late", age_seconds=60)

    callback = receive_and_process("stripe", stripe_signed(event))

    assert callback.status == CallbackStatus.IGNORED
    payment.refresh_from_db()
    assert payment.status == S.SUCCEEDED


def intent_reads(sim: Any, payment: Any) -> int:
    """How often the charge was read back at the Stripe simulator (GET of the intent)."""
    path = f"/stripe/v1/payment_intents/{payment.gateway_reference}"
    records = sim.http.get("/requests", params={"gateway": "stripe", "path": path}).json()
    return sum(1 for record in records if record["method"] == "GET")


def test_a_succeeded_callback_about_the_charge_a_payment_succeeded_with_is_not_looked_up(
    card_payment: Any, capture: Any
) -> None:
    payment = drive(card_payment()).payment
    assert payment.status == S.SUCCEEDED
    reads = intent_reads(capture, payment)

    callback = receive_and_process(
        "stripe", stripe_signed(intent_event(payment, "payment_intent.succeeded", "evt_ok"))
    )

    assert callback.status == CallbackStatus.IGNORED
    assert callback.payment_id == payment.id
    assert callback.detail == (
        "payment is succeeded; stripe says payment.succeeded: no change, not looked up"
    )
    assert intent_reads(capture, payment) == reads  # the gateway was not asked
    payment.refresh_from_db()
    assert payment.status == S.SUCCEEDED


def test_a_callback_for_an_unknown_charge_is_kept(gateways: Any, capture: Any) -> None:
    event = {
        "id": "evt_unknown",
        "object": "event",
        "type": "payment_intent.succeeded",
        "created": int(time.time()),
        "livemode": False,
        "data": {"object": {"id": "pi_not_ours", "object": "payment_intent", "metadata": {}}},
    }

    callback = receive_and_process("stripe", stripe_signed(event))

    assert callback.status == CallbackStatus.UNMATCHED
    assert callback.reference == "pi_not_ours"


def test_paid_after_cancel_is_a_conflict_for_staff(
    api: Any, wallet_app: Any, pix_payment: Any, capture: Any, caplog: pytest.LogCaptureFixture
) -> None:
    payment = drive(pix_payment(client=wallet_app)).payment
    canceled = api.post(f"/api/v1/payments/{payment.id}/cancel")
    assert canceled.status_code == 200

    callback = receive_and_process("mercadopago", pay_pix(capture, payment))

    assert callback.status == CallbackStatus.CONFLICT
    payment.refresh_from_db()
    assert payment.status == S.CANCELED
    assert any(getattr(r, "alert", "") == "paid_after_cancel" for r in caplog.records)


def test_callbacks_for_an_unknown_gateway_or_method_are_errors(gateways: Any) -> None:
    assert (
        Client().post("/webhooks/nope", data=b"{}", content_type="application/json").status_code
        == 404
    )
    response = Client().get("/webhooks/stripe")
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"
