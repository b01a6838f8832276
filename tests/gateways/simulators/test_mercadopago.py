"""The Mercado Pago simulator through the real mercadopago SDK."""

import base64
import json
import time

import httpx
import mercadopago
import pytest
from mercadopago.webhook import InvalidWebhookSignatureError, WebhookSignatureValidator

from gateways.pix.brcode import parse
from gateways.simulators import SimulatorServer
from gateways.simulators import mercadopago as simulated_mercadopago
from tests.gateways.simulators.conftest import CallbackReceiver, mp_options, pix_payment

WEBHOOK_SECRET = "mp-test-secret"


def create(sdk: mercadopago.SDK, key: str = "mp-key-1", **payment: object) -> dict:
    answer = sdk.payment().create({**pix_payment(), **payment}, mp_options(key))
    assert answer["status"] == 201, answer
    return answer["response"]


def test_pix_payment_is_created_pending_with_a_valid_br_code(
    mp_sdk: mercadopago.SDK, control: httpx.Client
) -> None:
    payment = create(mp_sdk)

    assert isinstance(payment["id"], int)
    assert (payment["status"], payment["status_detail"]) == ("pending", "pending_waiting_transfer")
    assert payment["transaction_amount"] == 10.5
    assert payment["external_reference"] == "pw_mp"
    data = payment["point_of_interaction"]["transaction_data"]
    code = parse(data["qr_code"])  # PayWave's own parser checks fields and CRC
    assert code.amount == 1050
    assert code.url is not None
    assert not data["qr_code_base64"].startswith("data:")
    assert base64.b64decode(data["qr_code_base64"]).startswith(b"\x89PNG\r\n\x1a\n")
    [record] = control.get("/charges", params={"gateway": "mercadopago"}).json()
    assert {k: record[k] for k in ("id", "idempotency_key", "reference", "amount", "status")} == {
        "id": str(payment["id"]),
        "idempotency_key": "mp-key-1",
        "reference": "pw_mp",
        "amount": 1050,
        "status": "pending",
    }


def test_get_returns_the_payment(mp_sdk: mercadopago.SDK) -> None:
    payment = create(mp_sdk)

    answer = mp_sdk.payment().get(payment["id"], mp_options())

    assert answer["status"] == 200
    assert answer["response"] == payment


def test_get_unknown_payment_is_404_in_mercado_pago_shape(mp_sdk: mercadopago.SDK) -> None:
    answer = mp_sdk.payment().get(123, mp_options())

    assert answer["status"] == 404
    assert answer["response"]["error"] == "not_found"
    assert answer["response"]["cause"][0]["code"] == 2000


def test_repeated_idempotency_key_gets_the_first_answer(
    mp_sdk: mercadopago.SDK, control: httpx.Client
) -> None:
    first = create(mp_sdk, key="same")
    second = create(mp_sdk, key="same", transaction_amount=99.0)

    assert second == first
    assert len(control.get("/charges").json()) == 1


def test_cancel_a_pending_payment(mp_sdk: mercadopago.SDK, control: httpx.Client) -> None:
    payment = create(mp_sdk)

    answer = mp_sdk.payment().update(payment["id"], {"status": "cancelled"}, mp_options())

    assert answer["status"] == 200
    assert answer["response"]["status"] == "cancelled"
    assert control.get("/charges").json()[0]["status"] == "cancelled"
    assert control.post(f"/pix/{payment['id']}/pay").status_code == 409


def test_expired_payment_reads_cancelled_expired(mp_sdk: mercadopago.SDK) -> None:
    payment = create(mp_sdk, date_of_expiration="2020-01-01T00:00:00.000-03:00")

    answer = mp_sdk.payment().get(payment["id"], mp_options())

    assert (answer["response"]["status"], answer["response"]["status_detail"]) == (
        "cancelled",
        "expired",
    )


def test_pay_sends_a_signed_notification(
    mp_sdk: mercadopago.SDK, control: httpx.Client, receiver: CallbackReceiver
) -> None:
    control.put(
        "/callbacks/mercadopago",
        json={"url": receiver.url + "/cb/mp?x=1", "secret": WEBHOOK_SECRET},
    )
    payment = create(mp_sdk)

    answer = control.post(f"/pix/{payment['id']}/pay").json()

    assert answer["gateway"] == "mercadopago"
    assert answer["charge"]["status"] == "approved"
    assert answer["callback"]["delivered"] is True
    [notification] = receiver.requests
    body = notification.json()
    assert body["action"] == "payment.updated"
    assert body["type"] == "payment"
    assert body["data"] == {"id": str(payment["id"])}
    assert body["live_mode"] is False
    assert notification.path == "/cb/mp"
    assert notification.query == {"x": ["1"], "data.id": [str(payment["id"])], "type": ["payment"]}
    # What the SDK's validator (and PayWave's adapter) checks, with its clock tolerance.
    WebhookSignatureValidator.validate(
        notification.headers["x-signature"],
        notification.headers["x-request-id"],
        notification.query["data.id"][0],
        WEBHOOK_SECRET,
        tolerance_seconds=300,
    )
    with pytest.raises(InvalidWebhookSignatureError):
        WebhookSignatureValidator.validate(
            notification.headers["x-signature"],
            notification.headers["x-request-id"],
            "999",
            WEBHOOK_SECRET,
        )
    assert mp_sdk.payment().get(payment["id"], mp_options())["response"]["status"] == "approved"
    assert control.get("/charges").json()[0]["status"] == "approved"


def test_a_redelivery_is_the_same_notification_freshly_signed(
    mp_sdk: mercadopago.SDK, control: httpx.Client, receiver: CallbackReceiver
) -> None:
    control.put("/callbacks/mercadopago", json={"url": receiver.url, "secret": WEBHOOK_SECRET})
    payment = create(mp_sdk)
    delivery = control.post(f"/pix/{payment['id']}/pay").json()["callback"]

    control.post(f"/callbacks/deliveries/{delivery['id']}/redeliver")

    first, again = receiver.requests
    assert again.json() == first.json()  # same notification id: the receiver's dedupe key
    assert again.headers["x-request-id"] != first.headers["x-request-id"]
    for notification in (first, again):
        WebhookSignatureValidator.validate(
            notification.headers["x-signature"],
            notification.headers["x-request-id"],
            notification.query["data.id"][0],
            WEBHOOK_SECRET,
        )


def test_payments_paid_in_one_millisecond_get_notifications_with_distinct_ids(
    mp_sdk: mercadopago.SDK,
    control: httpx.Client,
    receiver: CallbackReceiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    control.put("/callbacks/mercadopago", json={"url": receiver.url, "secret": WEBHOOK_SECRET})
    payments = [create(mp_sdk, key=f"mp-at-once-{n}") for n in range(20)]
    frozen = time.time()
    monkeypatch.setattr(simulated_mercadopago.time, "time", lambda: frozen)

    for payment in payments:  # all paid in the same millisecond
        control.post(f"/pix/{payment['id']}/pay")

    ids = [notification.json()["id"] for notification in receiver.requests]
    assert len(ids) == 20
    assert len(set(ids)) == 20  # PayWave stores a callback once per notification id


def test_partial_full_and_over_refund(mp_sdk: mercadopago.SDK, control: httpx.Client) -> None:
    payment = create(mp_sdk)
    not_paid = mp_sdk.refund().create(payment["id"], {}, mp_options("r0"))
    control.post(f"/pix/{payment['id']}/pay")

    partial = mp_sdk.refund().create(payment["id"], {"amount": 2.25}, mp_options("r1"))
    repeat = mp_sdk.refund().create(payment["id"], {"amount": 2.25}, mp_options("r1"))
    over = mp_sdk.refund().create(payment["id"], {"amount": 9.0}, mp_options("r2"))
    rest = mp_sdk.refund().create(payment["id"], None, mp_options("r3"))

    assert not_paid["status"] == 400
    assert (partial["status"], partial["response"]["amount"]) == (201, 2.25)
    assert partial["response"]["status"] == "approved"
    assert repeat["response"] == partial["response"]
    assert over["status"] == 400
    assert rest["response"]["amount"] == 8.25
    refunded = mp_sdk.payment().get(payment["id"], mp_options())["response"]
    assert (refunded["status"], refunded["transaction_amount_refunded"]) == ("refunded", 10.5)
    assert [r["amount"] for r in control.get("/refunds").json()] == [225, 825]
    assert len(mp_sdk.refund().list_all(payment["id"], mp_options())["response"]) == 2


def test_amounts_are_exact_and_more_than_two_decimals_are_refused(
    mp_sdk: mercadopago.SDK, control: httpx.Client
) -> None:
    exact = create(mp_sdk, key="a", transaction_amount=0.29)
    refused = mp_sdk.payment().create(pix_payment(amount=10.005), mp_options("b"))

    assert exact["transaction_amount"] == 0.29
    assert control.get("/charges").json()[0]["amount"] == 29
    assert refused["status"] == 400
    assert refused["response"]["cause"][0]["code"] == 4037


def test_only_pix_is_simulated(mp_sdk: mercadopago.SDK) -> None:
    answer = mp_sdk.payment().create(
        {**pix_payment(), "payment_method_id": "visa"}, mp_options("card")
    )
    assert answer["status"] == 400


def test_search_by_external_reference(mp_sdk: mercadopago.SDK) -> None:
    wanted = create(mp_sdk, key="1")
    create(mp_sdk, key="2", external_reference="other")

    answer = mp_sdk.payment().search({"external_reference": "pw_mp"}, mp_options())

    assert [p["id"] for p in answer["response"]["results"]] == [wanted["id"]]


def test_users_me_and_authentication(mp_sdk: mercadopago.SDK, sim: SimulatorServer) -> None:
    assert mp_sdk.user().get(mp_options())["response"]["site_id"] == "MLB"

    answer = httpx.post(sim.base_url + "/mercadopago/v1/payments", content=json.dumps({}))

    assert answer.status_code == 401
    assert set(answer.json()) == {"message", "error", "status", "cause"}
