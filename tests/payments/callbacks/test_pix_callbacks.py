"""Mercado Pago and Gerencianet callbacks at /webhooks/<gateway>, through the URL conf.

Each refused callback is one a valid twin of which would settle the payment (the
charge is paid at the simulator), so "nothing changed" is a real outcome.
Gerencianet signs nothing and sends no timestamp (its callback is authenticated by
mTLS or a secret in the URL): a stale one cannot be told from a fresh one, so its
tests replay and duplicate deliveries instead of ageing them.
"""

import json
import time
import uuid
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from gateways.models import CallbackStatus, Gateway, GatewayCallback
from gateways.simulators.callbacks import mercadopago_signature_header
from gateways.simulators.config import SANDBOX_WEBHOOK_SECRETS
from notifications.models import Event
from payments.callbacks import callback_process
from payments.models import Payment
from payments.models import PaymentStatus as S
from payments.refunds import refund_create
from tests.gateway_fixtures import drive
from tests.payments.callbacks.helpers import (
    pay_pix,
    post_callback,
    receive_and_process,
    run_refund_jobs,
)

pytestmark = [pytest.mark.services, pytest.mark.django_db]

PIX_GATEWAYS = ("mercadopago", "gerencianet")


@pytest.fixture
def awaiting(pix_payment: Any) -> Any:
    def make(gateway: str) -> Payment:
        others = Gateway.objects.filter(code__in=PIX_GATEWAYS).exclude(code=gateway)
        others.update(enabled=False)
        payment = drive(pix_payment()).payment
        assert (payment.gateway, payment.status) == (gateway, S.AWAITING_PAYMENT)
        return payment

    return make


def with_query(delivery: dict[str, Any], **changes: str | None) -> dict[str, Any]:
    parts = urlsplit(delivery["url"])
    parsed = parse_qs(parts.query, keep_blank_values=True)
    query = {name: values[0] for name, values in parsed.items()}
    query.update(changes)
    kept = {name: value for name, value in query.items() if value is not None}
    return {**delivery, "url": parts._replace(query=urlencode(kept)).geturl()}


def mercadopago_signed(delivery: dict[str, Any], *, ts: int, secret: str = "") -> dict[str, Any]:
    """The delivery signed again, as Mercado Pago would at `ts`."""
    data_id = parse_qs(urlsplit(delivery["url"]).query)["data.id"][0]
    headers = dict(delivery["headers"])
    headers["x-signature"] = mercadopago_signature_header(
        secret or SANDBOX_WEBHOOK_SECRETS["mercadopago"], data_id, headers["x-request-id"], ts
    )
    return {**delivery, "headers": headers}


def assert_refused_and_unchanged(code: str, response: Any, payment: Payment) -> None:
    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"] == "invalid_callback"
    stored = GatewayCallback.objects.get(gateway=code)
    assert stored.status == CallbackStatus.REJECTED
    payment.refresh_from_db()
    assert payment.status == S.AWAITING_PAYMENT
    assert not Event.objects.filter(subject_id=payment.id, type="payment.succeeded").exists()


def redeliver(sim: Any, delivery: dict[str, Any]) -> dict[str, Any]:
    """The gateway's own retry of a delivery: for Mercado Pago, freshly signed."""
    answer = sim.http.post(f"/callbacks/deliveries/{delivery['id']}/redeliver")
    answer.raise_for_status()
    return answer.json()


def refund_part(payment: Payment) -> None:
    refund = refund_create(
        client_id=payment.client_id, payment_id=payment.pk, amount=100, actor="test"
    )
    run_refund_jobs(refund.pk)
    payment.refresh_from_db()
    assert payment.status == S.PARTIALLY_REFUNDED


@pytest.mark.parametrize(
    "tamper",
    ["forged_signature", "wrong_secret", "other_payment", "stale", "malformed", "no_signature"],
)
def test_mercadopago_forged_stale_and_malformed_callbacks_are_refused(
    awaiting: Any, capture: Any, tamper: str
) -> None:
    payment = awaiting("mercadopago")
    delivery = pay_pix(capture, payment)
    body = None
    if tamper == "forged_signature":
        signature = delivery["headers"]["x-signature"]
        flipped = "0" if signature[-1] != "0" else "1"
        delivery["headers"]["x-signature"] = signature[:-1] + flipped
    elif tamper == "wrong_secret":
        delivery = mercadopago_signed(delivery, ts=int(time.time()), secret="not-the-secret")
    elif tamper == "other_payment":  # the signature covers the query's data.id
        delivery = with_query(delivery, **{"data.id": "999999999"})
        body = delivery["body"].replace(payment.gateway_reference, "999999999").encode()
    elif tamper == "stale":  # correctly signed, an hour ago (tolerance: 5 minutes)
        delivery = mercadopago_signed(delivery, ts=int(time.time()) - 3600)
    elif tamper == "malformed":
        body = delivery["body"][:-1].encode()
    else:
        del delivery["headers"]["x-signature"]

    response = post_callback("mercadopago", delivery, body=body)

    assert_refused_and_unchanged("mercadopago", response, payment)


@pytest.mark.parametrize(
    "tamper", ["wrong_secret", "no_secret", "malformed", "no_pix", "bad_amount"]
)
def test_gerencianet_forged_and_malformed_callbacks_are_refused(
    awaiting: Any, capture: Any, tamper: str
) -> None:
    payment = awaiting("gerencianet")
    delivery = pay_pix(capture, payment)
    payload = json.loads(delivery["body"])
    body = None
    if tamper == "wrong_secret":
        delivery = with_query(delivery, hmac="not-the-secret")
    elif tamper == "no_secret":
        delivery = with_query(delivery, hmac=None)
    elif tamper == "malformed":
        body = delivery["body"][:-1].encode()
    elif tamper == "no_pix":
        body = json.dumps({"pix": []}).encode()
    else:
        payload["pix"][0]["valor"] = "dez reais"
        body = json.dumps(payload).encode()

    response = post_callback("gerencianet", delivery, body=body)

    assert_refused_and_unchanged("gerencianet", response, payment)


def test_gerencianet_a_body_forged_with_the_url_secret_cannot_pay(
    awaiting: Any, capture: Any
) -> None:
    """Whoever holds the URL secret can post anything; the cob is read back from Efí."""
    paid = awaiting("gerencianet")
    delivery = pay_pix(capture, paid)
    unpaid = awaiting("gerencianet")
    payload = json.loads(delivery["body"])
    payload["pix"][0].update(txid=unpaid.gateway_reference, endToEndId=f"E{uuid.uuid4().hex}")

    callback = receive_and_process("gerencianet", {**delivery, "body": json.dumps(payload)})

    assert callback.status == CallbackStatus.IGNORED
    unpaid.refresh_from_db()
    assert unpaid.status == S.AWAITING_PAYMENT


@pytest.mark.parametrize("gateway", PIX_GATEWAYS)
def test_replayed_and_redelivered_callbacks_are_processed_once(
    awaiting: Any, capture: Any, gateway: str
) -> None:
    payment = awaiting(gateway)
    delivery = pay_pix(capture, payment)

    first = receive_and_process(gateway, delivery)
    replayed = post_callback(gateway, delivery)  # the same bytes again (a replay)
    retried = post_callback(gateway, redeliver(capture, delivery))  # the gateway's own retry

    assert first.status == CallbackStatus.PROCESSED
    assert replayed.status_code == retried.status_code == 200
    assert replayed.json() == retried.json() == {"received": True, "duplicate": True}
    assert GatewayCallback.objects.filter(gateway=gateway).count() == 1
    payment.refresh_from_db()
    assert payment.status == S.SUCCEEDED
    assert Event.objects.filter(subject_id=payment.id, type="payment.succeeded").count() == 1


@pytest.mark.parametrize("gateway", PIX_GATEWAYS)
def test_a_late_callback_never_moves_a_payment_back(
    awaiting: Any, capture: Any, gateway: str
) -> None:
    payment = awaiting(gateway)
    delivery = pay_pix(capture, payment)
    receive_and_process(gateway, delivery)
    refund_part(payment)
    # The same payment's notification again, as a new event that arrives after the refund.
    late = json.loads(delivery["body"])
    if gateway == "mercadopago":
        late["id"] += 1
        delivery = mercadopago_signed({**delivery, "body": json.dumps(late)}, ts=int(time.time()))
    else:
        late["pix"][0]["endToEndId"] = f"E{uuid.uuid4().hex}"
        delivery = {**delivery, "body": json.dumps(late)}

    callback = receive_and_process(gateway, delivery)

    assert callback.status == CallbackStatus.IGNORED
    assert GatewayCallback.objects.filter(gateway=gateway).count() == 2
    payment.refresh_from_db()
    assert (payment.status, payment.amount_refunded) == (S.PARTIALLY_REFUNDED, 100)
    assert Event.objects.filter(subject_id=payment.id, type="payment.succeeded").count() == 1


def test_callbacks_processed_out_of_order_settle_once(awaiting: Any, capture: Any) -> None:
    """Two notifications of one payment, the newer one processed first."""
    payment = awaiting("mercadopago")
    older = pay_pix(capture, payment)
    newer = redeliver(capture, older)
    payload = json.loads(newer["body"])
    payload["id"] += 1  # another event about the same payment
    newer = mercadopago_signed({**newer, "body": json.dumps(payload)}, ts=int(time.time()))
    for delivery in (older, newer):
        assert post_callback("mercadopago", delivery).status_code == 200
    stored_older, stored_newer = GatewayCallback.objects.order_by("id")

    callback_process(stored_newer.pk)
    callback_process(stored_older.pk)

    stored_older.refresh_from_db()
    stored_newer.refresh_from_db()
    assert (stored_newer.status, stored_older.status) == (
        CallbackStatus.PROCESSED,
        CallbackStatus.IGNORED,
    )
    payment.refresh_from_db()
    assert payment.status == S.SUCCEEDED
    assert Event.objects.filter(subject_id=payment.id, type="payment.succeeded").count() == 1
