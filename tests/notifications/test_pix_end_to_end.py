"""PIX end to end: POST → awaiting_payment with a BR Code → the payer pays at the simulator →
the gateway's callback → succeeded → the wallet app's endpoint gets `payment.succeeded`,
signed so that the README's standalone example accepts it."""

from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.test import Client

from gateways.models import GatewayCallback
from gateways.pix.brcode import parse
from payments.callbacks import callback_process
from payments.models import Payment
from payments.models import PaymentStatus as S
from tests.gateway_fixtures import drive
from tests.helpers import pix_body, post_payment
from tests.notifications.conftest import Jobs, Receiver

pytestmark = [pytest.mark.services, pytest.mark.django_db]


def test_pix_paid_reaches_the_wallet_app_signed(
    api: Any,
    gateways: Any,
    sim: Any,
    receiver: Receiver,
    jobs: Jobs,
    example: ModuleType,
    django_capture_on_commit_callbacks: Any,
) -> None:
    endpoint = api.post(
        "/api/v1/webhook-endpoints",
        {"url": receiver.url(), "events": ["payment.succeeded"]},
        format="json",
        HTTP_IDEMPOTENCY_KEY="endpoint-1",
    ).json()
    sim.http.put("/callbacks/mercadopago", json={"url": "capture://paywave/webhooks/mercadopago"})
    with django_capture_on_commit_callbacks(execute=True):  # as the commits would
        created = post_payment(api, pix_body(amount=4321), key="e2e-pix").json()
        payment = drive(Payment.objects.get(pk=created["id"])).payment
    assert payment.status == S.AWAITING_PAYMENT
    assert parse(payment.pix_qr_code).amount == 4321

    paid = sim.http.post(f"/pix/{payment.gateway_reference}/pay", params={"gateway": "mercadopago"})
    delivery = paid.json()["callback"]
    query = urlsplit(delivery["url"]).query
    headers = {k: v for k, v in delivery["headers"].items() if k.lower() != "content-type"}
    answer = Client().generic(
        "POST",
        f"/webhooks/mercadopago?{query}",
        delivery["body"].encode(),
        content_type="application/json",
        headers=headers,
    )
    assert answer.status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        callback_process(GatewayCallback.objects.get(gateway="mercadopago").pk)
    for _ in range(5):  # jobs publish jobs on commit: run until none is left
        with django_capture_on_commit_callbacks(execute=True):
            jobs.drive()
        if not jobs.queue:
            break

    payment.refresh_from_db()
    assert payment.status == S.SUCCEEDED
    [request] = receiver.requests
    signature = request.headers["PayWave-Signature"]
    assert example.verify(endpoint["secret"], signature, request.body)
    assert not example.verify(endpoint["secret"], signature, request.body + b" ")
    event = request.json()
    assert event["type"] == "payment.succeeded"
    assert event["data"]["id"] == str(payment.id)
    assert event["data"]["status"] == "succeeded"
    sim.http.put("/callbacks/mercadopago", json={"url": ""})
