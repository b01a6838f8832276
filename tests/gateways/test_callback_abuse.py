"""The public callback URL under abuse: what a rejected callback leaves behind, how often
one address may call, and how many log lines a flood of forgeries writes."""

import hashlib
import json
import logging
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from django.test import Client

from gateways import callbacks
from gateways.models import CallbackStatus, GatewayCallback
from tests.payments.callbacks.test_gateway_callbacks import stripe_signed

pytestmark = [pytest.mark.services, pytest.mark.django_db]

PAYER_DATA = '{"id": "evt_forged", "payer": {"email": "ana@example.com", "cpf": "12345678909"}}'


def post(body: bytes | str, *, address: str = "203.0.113.7", **headers: str) -> Any:
    return Client(REMOTE_ADDR=address).generic(
        "POST", "/webhooks/stripe", body, content_type="application/json", headers=headers
    )


def rejection_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.getMessage().startswith("gateway callback rejected")]


def test_a_rejected_callback_keeps_its_hash_size_reason_and_harmless_headers_only(
    gateways: Any, caplog: pytest.LogCaptureFixture
) -> None:
    body = PAYER_DATA.encode() + b" " * 50_000  # big, as a flood's would be
    forged_signature = "t=1,v1=" + "ab" * 32

    response = post(
        body,
        **{
            "Stripe-Signature": forged_signature,
            "User-Agent": "curl/8.5.0",
            "Authorization": "Bearer not-for-us",
            "X-Secret-Thing": "s3cr3t",
        },
    )

    assert response.status_code == 400
    rejected = GatewayCallback.objects.get(gateway="stripe")
    assert rejected.status == CallbackStatus.REJECTED
    assert rejected.body == ""
    assert rejected.body_sha256 == hashlib.sha256(body).hexdigest()
    assert rejected.body_size == len(body)
    assert rejected.detail.startswith("stripe: ")
    assert rejected.headers == {
        "content-type": "application/json",
        "user-agent": "curl/8.5.0",
        "signature": "present",
    }
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "ana@example.com" not in logged
    assert "12345678909" not in logged
    assert forged_signature not in logged


def test_an_unsigned_rejected_callback_says_so_and_keeps_a_short_user_agent(gateways: Any) -> None:
    post("{}", **{"User-Agent": "x" * 5000})

    rejected = GatewayCallback.objects.get(gateway="stripe")
    assert rejected.headers["signature"] == "absent"
    assert len(rejected.headers["user-agent"]) == 200


def test_accepted_callbacks_are_stored_whole_as_before(gateways: Any) -> None:
    event = {
        "id": "evt_ok",
        "object": "event",
        "type": "payment_intent.succeeded",
        "created": int(time.time()),
        "livemode": False,
        "data": {"object": {"id": "pi_x", "object": "payment_intent", "metadata": {}}},
    }
    delivery = stripe_signed(event)

    response = post(
        delivery["body"], **{"Stripe-Signature": delivery["headers"]["Stripe-Signature"]}
    )

    assert response.status_code == 200
    stored = GatewayCallback.objects.get(gateway="stripe")
    assert stored.status == CallbackStatus.RECEIVED
    assert json.loads(stored.body) == event
    assert stored.headers["Stripe-Signature"] == delivery["headers"]["Stripe-Signature"]
    assert stored.body_sha256 == hashlib.sha256(delivery["body"].encode()).hexdigest()


def test_one_address_is_throttled_and_others_are_not(gateways: Any, settings: Any) -> None:
    settings.PAYWAVE_CALLBACK_THROTTLE_RATE = "3/min"

    answers = [post("{}", address="198.51.100.1").status_code for _ in range(4)]
    throttled = post("{}", address="198.51.100.1")
    elsewhere = post("{}", address="198.51.100.2")

    assert answers == [400, 400, 400, 429]
    assert throttled.status_code == 429
    assert throttled.json()["error"]["code"] == "rate_limited"
    assert 0 < int(throttled["Retry-After"]) <= 60
    assert elsewhere.status_code == 400
    assert GatewayCallback.objects.count() == 4  # a throttled request stores nothing


def test_a_throttled_gateway_is_answered_before_any_database_work(
    gateways: Any, settings: Any, django_assert_num_queries: Any
) -> None:
    settings.PAYWAVE_CALLBACK_THROTTLE_RATE = "1/min"
    post("{}")

    with django_assert_num_queries(0):
        assert post("{}").status_code == 429


def test_the_default_rate_lets_a_gateway_post_a_burst_of_verified_callbacks(
    gateways: Any, settings: Any
) -> None:
    from config.settings import base

    settings.PAYWAVE_CALLBACK_THROTTLE_RATE = base.PAYWAVE_CALLBACK_THROTTLE_RATE
    statuses = set()
    for number in range(100):
        event = {
            "id": f"evt_burst_{number}",
            "object": "event",
            "type": "payment_intent.succeeded",
            "created": int(time.time()),
            "livemode": False,
            "data": {"object": {"id": f"pi_{number}", "object": "payment_intent"}},
        }
        delivery = stripe_signed(event)
        statuses.add(
            post(
                delivery["body"], **{"Stripe-Signature": delivery["headers"]["Stripe-Signature"]}
            ).status_code
        )

    assert statuses == {200}


def test_a_flood_of_forgeries_writes_one_warning_a_window_per_address_with_a_count(
    gateways: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(callbacks, "REJECTION_LOG_WINDOW_SECONDS", 1)
    caplog.set_level(logging.WARNING, logger="gateways.callbacks")

    for _ in range(5):
        post("{}", address="192.0.2.10")
    post("{}", address="192.0.2.11")
    first_window = rejection_lines(caplog)
    time.sleep(1.2)
    post("{}", address="192.0.2.10")

    assert [r.source for r in first_window] == ["192.0.2.10", "192.0.2.11"]
    assert [r.suppressed for r in first_window] == [0, 0]
    later = rejection_lines(caplog)[len(first_window) :]
    assert [(r.source, r.suppressed) for r in later] == [("192.0.2.10", 4)]
    assert "4 more from this address" in later[0].getMessage()
    assert GatewayCallback.objects.filter(status=CallbackStatus.REJECTED).count() == 7


def test_a_callback_the_gateway_cannot_be_asked_about_now_is_answered_503_not_500(
    gateways: Any, sim: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """PayPal's callbacks are verified by asking PayPal: while it cannot answer, the
    callback is neither accepted nor refused as forged. A 503 with Retry-After makes
    PayPal send it again later; nothing is stored."""
    assert "paypal" in gateways  # seeded
    sim.faults("paypal", down=True, down_mode="503")
    sent = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    headers = {
        "PAYPAL-TRANSMISSION-ID": "8f1c2f10-0000-4000-8000-000000000001",
        "PAYPAL-TRANSMISSION-TIME": sent,
        "PAYPAL-TRANSMISSION-SIG": "c2lnbmF0dXJl",
        "PAYPAL-CERT-URL": "https://api.paypal.com/v1/notifications/certs/CERT-1",
        "PAYPAL-AUTH-ALGO": "SHA256withRSA",
    }
    body = json.dumps({"id": "WH-1", "event_type": "CHECKOUT.ORDER.APPROVED", "resource": {}})

    response = Client(REMOTE_ADDR="203.0.113.9").generic(
        "POST", "/webhooks/paypal", body, content_type="application/json", headers=headers
    )

    assert response.status_code == 503
    assert response.json()["error"]["code"] == "gateway_unavailable"
    assert int(response["Retry-After"]) > 0
    assert not GatewayCallback.objects.filter(gateway="paypal").exists()
