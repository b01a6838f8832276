"""The PayPal simulator through the real paypalserversdk (Orders v2, captures, refunds)."""

import json
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import requests
from apimatic_core.exceptions.auth_validation_exception import AuthValidationException
from paypalserversdk.exceptions.error_exception import ErrorException
from paypalserversdk.exceptions.o_auth_provider_exception import OAuthProviderException
from paypalserversdk.models.money import Money
from paypalserversdk.models.order import Order
from paypalserversdk.models.refund_request import RefundRequest
from paypalserversdk.paypal_serversdk_client import PaypalServersdkClient

from gateways.simulators import SimulatorConfig, SimulatorServer
from gateways.simulators.config import SANDBOX_PAYPAL_CLIENT_ID, SANDBOX_PAYPAL_CLIENT_SECRET
from tests.gateways.simulators.conftest import (
    CANCEL_URL,
    RETURN_URL,
    CallbackReceiver,
    paypal_client,
    paypal_order,
)

WEBHOOK_ID = "WH-TEST-0001"
REPRESENTATION = "return=representation"


def create(sdk: PaypalServersdkClient, request_id: str = "pp-create-1", **order: Any) -> Order:
    answer = sdk.orders.create_order(
        {"body": paypal_order(**order), "paypal_request_id": request_id, "prefer": REPRESENTATION}
    )
    assert answer.status_code == 201, answer.text
    return answer.body


def approve(control: httpx.Client, order_id: str) -> dict[str, Any]:
    answer = control.post(f"/paypal/approve/{order_id}")
    assert answer.status_code == 200, answer.text
    return answer.json()


def capture(sdk: PaypalServersdkClient, order_id: str, request_id: str = "pp-cap-1") -> Order:
    return sdk.orders.capture_order(
        {"id": order_id, "paypal_request_id": request_id, "prefer": REPRESENTATION}
    ).body


def captured(sdk: PaypalServersdkClient, control: httpx.Client, **order: Any) -> str:
    """A completed order's capture id."""
    made = create(sdk, **order)
    approve(control, made.id)
    return capture(sdk, made.id).purchase_units[0].payments.captures[0].id


def issue_of(raised: pytest.ExceptionInfo[ErrorException]) -> tuple[int, str, str]:
    error = raised.value
    return error.response_code, error.name, error.details[0].issue


def link_href(resource: Any, rel: str) -> str:
    return next(found.href for found in resource.links if found.rel == rel)


# OAuth.


def test_a_token_for_the_sandbox_credentials_and_none_for_others(sim: SimulatorServer) -> None:
    sdk = paypal_client(sim.base_url)
    basic = sdk.oauth_2.build_basic_auth_header()

    token = sdk.o_auth_authorization.request_token({"authorization": basic}).body

    assert token.token_type == "Bearer"
    assert token.expires_in == 32_400
    assert token.access_token
    wrong = paypal_client(sim.base_url, client_secret="nope")
    with pytest.raises(OAuthProviderException) as raised:
        wrong.o_auth_authorization.request_token(
            {"authorization": wrong.oauth_2.build_basic_auth_header()}
        )
    assert (raised.value.response_code, raised.value.error) == (401, "invalid_client")
    with pytest.raises(AuthValidationException):  # the SDK's word for "no token"
        wrong.orders.get_order({"id": "X"})


def test_the_sdk_takes_one_token_for_many_calls(
    paypal_sdk: PaypalServersdkClient, control: httpx.Client
) -> None:
    create(paypal_sdk, "a")
    create(paypal_sdk, "b")

    paths = [r["path"] for r in control.get("/requests", params={"gateway": "paypal"}).json()]
    assert paths == [
        "/paypal/v1/oauth2/token",
        "/paypal/v2/checkout/orders",
        "/paypal/v2/checkout/orders",
    ]


def test_an_api_call_without_a_valid_token_is_401(sim: SimulatorServer) -> None:
    url = sim.base_url + "/paypal/v2/checkout/orders/X"

    missing = httpx.get(url)
    unknown = httpx.get(url, headers={"Authorization": "Bearer nope"})

    assert (missing.status_code, missing.json()["name"]) == (401, "AUTHENTICATION_FAILURE")
    assert (unknown.status_code, unknown.json()["error"]) == (401, "invalid_token")


# Orders.


def test_create_answers_created_with_the_approval_link(
    sim: SimulatorServer, paypal_sdk: PaypalServersdkClient, control: httpx.Client
) -> None:
    answer = paypal_sdk.orders.create_order({"body": paypal_order(), "paypal_request_id": "pp-1"})

    order = answer.body
    assert answer.status_code == 201
    assert order.status == "CREATED"
    assert not hasattr(order, "purchase_units")  # Prefer: return=minimal, PayPal's default
    approval = link_href(order, "approve")
    assert approval == f"{sim.base_url}/_sim/paypal/approve/{order.id}?token={order.id}"
    assert link_href(order, "self") == f"{sim.base_url}/paypal/v2/checkout/orders/{order.id}"
    [record] = control.get("/charges", params={"gateway": "paypal"}).json()
    del record["created_at"]
    assert record == {
        "gateway": "paypal",
        "id": order.id,
        "idempotency_key": "pp-1",
        "reference": "pw_pp_1",
        "amount": 1050,
        "currency": "BRL",
        "status": "CREATED",
        "amount_refunded": 0,
    }


def test_payment_source_paypal_asks_for_payer_action(paypal_sdk: PaypalServersdkClient) -> None:
    order = create(paypal_sdk, payment_source=True, value="7.5")

    assert order.status == "PAYER_ACTION_REQUIRED"
    assert "token=" + order.id in link_href(order, "payer-action")
    unit = order.purchase_units[0]
    assert (unit.amount.currency_code, unit.amount.value) == ("BRL", "7.50")
    assert (unit.custom_id, unit.invoice_id) == ("pw_pp_1", "inv-pw_pp_1")
    assert paypal_sdk.orders.get_order({"id": order.id}).body.status == "PAYER_ACTION_REQUIRED"


def test_the_same_request_id_gives_the_same_order(
    paypal_sdk: PaypalServersdkClient, control: httpx.Client
) -> None:
    first = paypal_sdk.orders.create_order({"body": paypal_order(), "paypal_request_id": "same"})
    again = paypal_sdk.orders.create_order({"body": paypal_order(), "paypal_request_id": "same"})
    other = paypal_sdk.orders.create_order({"body": paypal_order(), "paypal_request_id": "new"})

    assert (first.status_code, again.status_code) == (201, 200)
    assert again.body.id == first.body.id
    assert other.body.id != first.body.id
    assert len(control.get("/charges", params={"idempotency_key": "same"}).json()) == 1


def test_invalid_orders_are_refused_in_paypals_shape(paypal_sdk: PaypalServersdkClient) -> None:
    with pytest.raises(ErrorException) as raised:
        paypal_sdk.orders.create_order({"body": paypal_order(value="10.555")})
    assert issue_of(raised) == (422, "UNPROCESSABLE_ENTITY", "DECIMAL_PRECISION")
    assert raised.value.debug_id
    with pytest.raises(ErrorException) as raised:
        paypal_sdk.orders.create_order({"body": paypal_order(value="0.00")})
    assert issue_of(raised)[2] == "CANNOT_BE_ZERO_OR_NEGATIVE"
    with pytest.raises(ErrorException) as raised:
        paypal_sdk.orders.get_order({"id": "NOSUCHORDER"})
    assert issue_of(raised) == (404, "RESOURCE_NOT_FOUND", "INVALID_RESOURCE_ID")


# Approval and capture.


def test_approve_then_capture_completes_once(
    paypal_sdk: PaypalServersdkClient, control: httpx.Client
) -> None:
    order = create(paypal_sdk)

    approved = approve(control, order.id)
    completed = capture(paypal_sdk, order.id)

    assert approved["charge"]["status"] == "APPROVED"
    back = urlsplit(approved["redirect"])
    assert f"{back.scheme}://{back.netloc}{back.path}" == RETURN_URL
    payer_id = approved["charge"]["payer"]["payer_id"]
    assert parse_qs(back.query) == {"token": [order.id], "PayerID": [payer_id]}
    assert completed.status == "COMPLETED"
    [capture_made] = completed.purchase_units[0].payments.captures
    assert capture_made.status == "COMPLETED"
    assert (capture_made.amount.currency_code, capture_made.amount.value) == ("BRL", "10.50")
    assert capture_made.custom_id == "pw_pp_1"
    assert completed.payer.payer_id == payer_id
    replayed = paypal_sdk.orders.capture_order({"id": order.id, "paypal_request_id": "pp-cap-1"})
    assert replayed.status_code == 200
    assert replayed.body.purchase_units[0].payments.captures[0].id == capture_made.id
    with pytest.raises(ErrorException) as raised:
        capture(paypal_sdk, order.id, request_id="pp-cap-2")
    assert issue_of(raised) == (422, "UNPROCESSABLE_ENTITY", "ORDER_ALREADY_CAPTURED")
    [record] = control.get("/charges", params={"reference": "pw_pp_1"}).json()
    assert record["status"] == "COMPLETED"
    fetched = paypal_sdk.payments.get_captured_payment({"capture_id": capture_made.id}).body
    assert fetched.status == "COMPLETED"
    assert fetched.supplementary_data.related_ids.order_id == order.id


def test_capture_before_approval_is_order_not_approved(
    paypal_sdk: PaypalServersdkClient,
) -> None:
    order = create(paypal_sdk)

    with pytest.raises(ErrorException) as raised:
        capture(paypal_sdk, order.id)

    assert issue_of(raised) == (422, "UNPROCESSABLE_ENTITY", "ORDER_NOT_APPROVED")


def test_cancel_sends_the_payer_back_and_leaves_the_order(
    paypal_sdk: PaypalServersdkClient, control: httpx.Client
) -> None:
    order = create(paypal_sdk)

    answer = control.post(f"/paypal/approve/{order.id}", json={"action": "cancel"}).json()
    browser = control.post(f"/paypal/approve/{order.id}", data={"action": "cancel"})

    assert answer["redirect"] == f"{CANCEL_URL}?token={order.id}"
    assert answer["callback"] is None
    assert (browser.status_code, browser.headers["location"]) == (303, answer["redirect"])
    assert paypal_sdk.orders.get_order({"id": order.id}).body.status == "CREATED"
    with pytest.raises(ErrorException) as raised:
        capture(paypal_sdk, order.id)
    assert issue_of(raised)[2] == "ORDER_NOT_APPROVED"
    assert control.post(f"/paypal/approve/{order.id}", json={"action": "x"}).status_code == 400
    assert control.post("/paypal/approve/NOSUCHORDER").status_code == 404


def test_the_approval_page_is_html_a_browser_can_click_through(
    sim: SimulatorServer, paypal_sdk: PaypalServersdkClient
) -> None:
    order = paypal_sdk.orders.create_order({"body": paypal_order()}).body
    approval = link_href(order, "approve")

    page = httpx.get(approval)
    clicked = httpx.post(approval, data={"action": "approve"})

    assert page.headers["content-type"].startswith("text/html")
    assert '<form method="post">' in page.text
    assert 'value="approve"' in page.text
    assert 'value="cancel"' in page.text
    assert "10.50 BRL" in page.text
    assert clicked.status_code == 303
    assert clicked.headers["location"].startswith(f"{RETURN_URL}?token={order.id}&PayerID=")
    assert paypal_sdk.orders.get_order({"id": order.id}).body.status == "APPROVED"
    assert httpx.post(approval, data={"action": "approve"}).status_code == 409


def test_instrument_declined_sends_the_payer_back_to_approve(
    paypal_sdk: PaypalServersdkClient, control: httpx.Client, receiver: CallbackReceiver
) -> None:
    control.put("/callbacks/paypal", json={"url": receiver.url, "secret": WEBHOOK_ID})
    order = create(paypal_sdk, payment_source=True)
    approve(control, order.id)
    assert control.put("/faults/paypal", json={"capture_status": "declined"}).status_code == 200

    with pytest.raises(ErrorException) as raised:
        capture(paypal_sdk, order.id)

    assert issue_of(raised) == (422, "UNPROCESSABLE_ENTITY", "INSTRUMENT_DECLINED")
    redirect = link_href(raised.value, "redirect")
    waiting = paypal_sdk.orders.get_order({"id": order.id}).body
    assert waiting.status == "PAYER_ACTION_REQUIRED"
    assert link_href(waiting, "payer-action") == redirect
    events = [json.loads(r.body)["event_type"] for r in receiver.requests]
    assert events == ["CHECKOUT.ORDER.APPROVED", "PAYMENT.CAPTURE.DENIED"]
    assert json.loads(receiver.requests[1].body)["resource"]["status"] == "DECLINED"
    control.delete("/faults/paypal")
    approve(control, order.id)
    completed = capture(paypal_sdk, order.id)  # the same request id: the decline was not kept
    assert completed.status == "COMPLETED"
    assert len(completed.purchase_units[0].payments.captures) == 1


def test_the_capture_status_knob_is_validated(control: httpx.Client) -> None:
    wrong = control.put("/faults/paypal", json={"capture_status": "maybe"})

    assert wrong.status_code == 400
    assert "completed, declined" in wrong.json()["error"]
    assert control.get("/faults/paypal").json()["capture_status"] == "completed"


# Refunds.


def refund(
    sdk: PaypalServersdkClient, capture_id: str, value: str | None = None, request_id: str = ""
) -> Any:
    options: dict[str, Any] = {"capture_id": capture_id, "prefer": REPRESENTATION}
    if value is not None:
        options["body"] = RefundRequest(amount=Money(currency_code="BRL", value=value))
    if request_id:
        options["paypal_request_id"] = request_id
    return sdk.payments.refund_captured_payment(options)


def test_partial_then_full_refund_and_nothing_more(
    paypal_sdk: PaypalServersdkClient, control: httpx.Client
) -> None:
    capture_id = captured(paypal_sdk, control)

    partial = refund(paypal_sdk, capture_id, "3.00").body
    with pytest.raises(ErrorException) as raised:
        refund(paypal_sdk, capture_id, "7.51")
    assert issue_of(raised) == (422, "UNPROCESSABLE_ENTITY", "REFUND_AMOUNT_EXCEEDED")
    after_partial = paypal_sdk.payments.get_captured_payment({"capture_id": capture_id}).body
    rest = refund(paypal_sdk, capture_id).body  # no amount: what is left

    assert (partial.status, partial.amount.value) == ("COMPLETED", "3.00")
    assert after_partial.status == "PARTIALLY_REFUNDED"
    assert (rest.status, rest.amount.value) == ("COMPLETED", "7.50")
    assert rest.seller_payable_breakdown.total_refunded_amount.value == "10.50"
    fetched = paypal_sdk.payments.get_captured_payment({"capture_id": capture_id}).body
    assert fetched.status == "REFUNDED"
    with pytest.raises(ErrorException) as raised:
        refund(paypal_sdk, capture_id, "0.01")
    assert issue_of(raised)[2] == "CAPTURE_FULLY_REFUNDED"
    [charge] = control.get("/charges", params={"gateway": "paypal"}).json()
    assert charge["amount_refunded"] == 1050
    refunds = control.get("/refunds", params={"charge_id": charge["id"]}).json()
    assert [(r["id"], r["amount"], r["status"]) for r in refunds] == [
        (partial.id, 300, "COMPLETED"),
        (rest.id, 750, "COMPLETED"),
    ]
    got = paypal_sdk.payments.get_refund({"refund_id": partial.id}).body
    assert (got.id, got.status, got.amount.value) == (partial.id, "COMPLETED", "3.00")


def test_a_refund_request_id_refunds_once(
    paypal_sdk: PaypalServersdkClient, control: httpx.Client
) -> None:
    capture_id = captured(paypal_sdk, control)

    first = refund(paypal_sdk, capture_id, "1.00", request_id="pp-ref-1")
    again = refund(paypal_sdk, capture_id, "1.00", request_id="pp-ref-1")
    minimal = paypal_sdk.payments.refund_captured_payment(
        {"capture_id": capture_id, "body": RefundRequest(amount=Money("BRL", "2.00"))}
    )

    assert (first.status_code, again.status_code) == (201, 200)
    assert again.body.id == first.body.id
    assert not hasattr(minimal.body, "amount")  # Prefer: return=minimal
    assert minimal.body.status == "COMPLETED"
    assert [r["amount"] for r in control.get("/refunds").json()] == [100, 200]
    assert control.get("/refunds").json()[0]["idempotency_key"] == "pp-ref-1"


def test_a_pending_refund_completes_when_read_back(
    paypal_sdk: PaypalServersdkClient, control: httpx.Client
) -> None:
    capture_id = captured(paypal_sdk, control)
    control.put("/faults/paypal", json={"refund_status": "pending"})

    pending = refund(paypal_sdk, capture_id, "4.00").body
    still = paypal_sdk.payments.get_refund({"refund_id": pending.id}).body
    control.delete("/faults/paypal")
    done = paypal_sdk.payments.get_refund({"refund_id": pending.id}).body

    assert (pending.status, pending.status_details.reason) == ("PENDING", "ECHECK")
    assert still.status == "PENDING"
    assert done.status == "COMPLETED"
    assert control.get("/charges").json()[0]["amount_refunded"] == 400
    assert control.get("/refunds").json()[0]["status"] == "COMPLETED"


def test_a_failed_refund_takes_nothing(
    paypal_sdk: PaypalServersdkClient, control: httpx.Client
) -> None:
    capture_id = captured(paypal_sdk, control)
    control.put("/faults/paypal", json={"refund_status": "failed"})

    failed = refund(paypal_sdk, capture_id).body
    control.delete("/faults/paypal")
    whole = refund(paypal_sdk, capture_id).body

    assert failed.status == "FAILED"
    assert (whole.status, whole.amount.value) == ("COMPLETED", "10.50")


# Webhooks.


def verify(sim: SimulatorServer, sdk: PaypalServersdkClient, **claimed: Any) -> str:
    """PayPal's verification call, which the SDK does not wrap: plain REST with its token."""
    token = sdk.oauth_2.fetch_token().access_token
    answer = requests.post(
        sim.base_url + "/paypal/v1/notifications/verify-webhook-signature",
        headers={"Authorization": f"Bearer {token}"},
        json=claimed,
        timeout=10,
    )
    answer.raise_for_status()
    return answer.json()["verification_status"]


def claimed_by(headers: dict[str, str], event: Any, webhook_id: str = WEBHOOK_ID) -> dict:
    return {
        "auth_algo": headers["paypal-auth-algo"],
        "cert_url": headers["paypal-cert-url"],
        "transmission_id": headers["paypal-transmission-id"],
        "transmission_sig": headers["paypal-transmission-sig"],
        "transmission_time": headers["paypal-transmission-time"],
        "webhook_id": webhook_id,
        "webhook_event": event,
    }


def test_webhooks_carry_paypals_headers_and_verify_only_as_sent(
    sim: SimulatorServer,
    paypal_sdk: PaypalServersdkClient,
    control: httpx.Client,
    receiver: CallbackReceiver,
) -> None:
    control.put(
        "/callbacks/paypal", json={"url": receiver.url + "/hooks/paypal", "secret": WEBHOOK_ID}
    )
    capture_id = captured(paypal_sdk, control)
    refund(paypal_sdk, capture_id, "1.00")

    approved, completed, refunded = receiver.requests
    events = [json.loads(r.body) for r in receiver.requests]
    assert [e["event_type"] for e in events] == [
        "CHECKOUT.ORDER.APPROVED",
        "PAYMENT.CAPTURE.COMPLETED",
        "PAYMENT.CAPTURE.REFUNDED",
    ]
    assert [e["resource_type"] for e in events] == ["checkout-order", "capture", "refund"]
    assert events[1]["resource"]["id"] == capture_id
    assert events[1]["summary"] == "Payment completed for 10.50 BRL"
    assert events[0]["id"].startswith("WH-")
    assert events[0]["create_time"].endswith("Z")
    assert completed.path == "/hooks/paypal"
    assert completed.headers["paypal-auth-algo"] == "SHA256withRSA"
    assert completed.headers["paypal-cert-url"].startswith(sim.base_url + "/paypal/")
    genuine = claimed_by(completed.headers, events[1])
    assert verify(sim, paypal_sdk, **genuine) == "SUCCESS"
    tampered = json.loads(completed.body)
    tampered["resource"]["amount"]["value"] = "1050.00"
    assert verify(sim, paypal_sdk, **{**genuine, "webhook_event": tampered}) == "FAILURE"
    assert verify(sim, paypal_sdk, **{**genuine, "transmission_sig": "AAAA"}) == "FAILURE"
    assert verify(sim, paypal_sdk, **{**genuine, "webhook_id": "WH-OTHER"}) == "FAILURE"
    # A genuine transmission id replayed with another (genuine) event.
    assert verify(sim, paypal_sdk, **{**genuine, "webhook_event": events[2]}) == "FAILURE"
    assert verify(sim, paypal_sdk, **claimed_by(refunded.headers, events[2])) == "SUCCESS"
    assert verify(sim, paypal_sdk, **claimed_by(approved.headers, events[0])) == "SUCCESS"


def test_a_redelivery_is_a_new_transmission_of_the_same_event(
    sim: SimulatorServer,
    paypal_sdk: PaypalServersdkClient,
    control: httpx.Client,
    receiver: CallbackReceiver,
) -> None:
    control.put("/callbacks/paypal", json={"url": receiver.url, "secret": WEBHOOK_ID})
    order = create(paypal_sdk)
    answer = approve(control, order.id)
    assert answer["callback"]["delivered"] is True

    redelivered = control.post(f"/callbacks/deliveries/{answer['callback']['id']}/redeliver")

    assert redelivered.json()["delivered"] is True
    first, second = receiver.requests
    assert first.body == second.body
    ids = [r.headers["paypal-transmission-id"] for r in (first, second)]
    assert ids[0] != ids[1]
    assert verify(sim, paypal_sdk, **claimed_by(second.headers, second.json())) == "SUCCESS"
    [delivery, _] = control.get("/callbacks/deliveries", params={"gateway": "paypal"}).json()
    assert delivery["event"] == "CHECKOUT.ORDER.APPROVED"


def test_verify_needs_every_field(sim: SimulatorServer, paypal_sdk: PaypalServersdkClient) -> None:
    token = paypal_sdk.oauth_2.fetch_token().access_token

    answer = httpx.post(
        sim.base_url + "/paypal/v1/notifications/verify-webhook-signature",
        headers={"Authorization": f"Bearer {token}"},
        json={"transmission_id": "x"},
    )

    assert answer.status_code == 400
    assert answer.json()["details"][0]["issue"] == "MISSING_REQUIRED_PARAMETER"


def test_without_a_callback_url_nothing_is_sent(
    paypal_sdk: PaypalServersdkClient, control: httpx.Client
) -> None:
    order = create(paypal_sdk)

    callback = approve(control, order.id)["callback"]

    assert callback["delivered"] is False
    assert "no callback URL" in callback["error"]


# Faults, through the SDK (each down mode is in test_down_modes.py).


def test_an_error_fault_reaches_the_sdk_once_without_retries(
    paypal_sdk: PaypalServersdkClient, control: httpx.Client
) -> None:
    order = create(paypal_sdk)  # the token is taken while calm
    control.put("/faults/paypal", json={"error_rate": 1, "error_status": 503})

    with pytest.raises(ErrorException) as raised:
        paypal_sdk.orders.get_order({"id": order.id})  # GET: a method the SDK could retry

    assert raised.value.response_code == 503
    assert raised.value.name == "SERVICE_UNAVAILABLE"
    logged = control.get("/requests", params={"path": f"/paypal/v2/checkout/orders/{order.id}"})
    assert [(r["verdict"], r["status"]) for r in logged.json()] == [("error", 503)]


def test_a_timeout_fault_is_a_read_timeout_after_the_order_was_made(
    sim: SimulatorServer, control: httpx.Client
) -> None:
    sdk = paypal_client(sim.base_url, timeout=0.5)  # shorter than the hang (HANG_MS)
    sdk.oauth_2.is_valid()  # takes the token while calm
    control.put("/faults/paypal", json={"timeout_rate": 1})

    with pytest.raises(requests.exceptions.ReadTimeout):
        sdk.orders.create_order({"body": paypal_order(), "paypal_request_id": "pp-t"})

    control.delete("/faults/paypal")
    again = sdk.orders.create_order({"body": paypal_order(), "paypal_request_id": "pp-t"})
    [record] = control.get("/charges", params={"gateway": "paypal"}).json()
    assert (again.status_code, again.body.id) == (200, record["id"])


def test_a_fault_at_the_token_is_the_sdks_auth_validation_error(
    paypal_sdk: PaypalServersdkClient, control: httpx.Client
) -> None:
    control.put("/faults/paypal", json={"error_rate": 1, "error_status": 503})

    with pytest.raises(AuthValidationException):  # the status is lost inside the SDK
        paypal_sdk.orders.create_order({"body": paypal_order()})


# State.


def test_orders_captures_and_request_ids_survive_a_restart(tmp_path: Path) -> None:
    config = SimulatorConfig(hang_ms=200, state_file=str(tmp_path / "sim.sqlite3"))
    with SimulatorServer("127.0.0.1", 0, config=config) as server:
        sdk = paypal_client(server.base_url)
        order = create(sdk)
        httpx.post(f"{server.base_url}/_sim/paypal/approve/{order.id}").raise_for_status()
        capture_id = capture(sdk, order.id).purchase_units[0].payments.captures[0].id

    with SimulatorServer("127.0.0.1", 0, config=config) as server:
        sdk = paypal_client(server.base_url)
        replayed = sdk.orders.create_order(
            {"body": paypal_order(), "paypal_request_id": "pp-create-1"}
        )
        assert (replayed.status_code, replayed.body.id) == (200, order.id)
        assert replayed.body.status == "COMPLETED"
        assert refund(sdk, capture_id, "1.00").body.status == "COMPLETED"
        [record] = httpx.get(server.base_url + "/_sim/charges").json()
        assert (record["status"], record["amount_refunded"]) == ("COMPLETED", 100)

        httpx.post(server.base_url + "/_sim/reset").raise_for_status()
        assert httpx.get(server.base_url + "/_sim/charges").json() == []


def test_credentials_can_be_restricted() -> None:
    config = SimulatorConfig(paypal_client_id="id-a", paypal_client_secret="secret-a")
    with SimulatorServer("127.0.0.1", 0, config=config) as server:
        url = server.base_url + "/paypal/v1/oauth2/token"
        form = {"grant_type": "client_credentials"}
        sandbox = httpx.post(
            url, auth=(SANDBOX_PAYPAL_CLIENT_ID, SANDBOX_PAYPAL_CLIENT_SECRET), data=form
        )
        chosen = httpx.post(url, auth=("id-a", "secret-a"), data=form)
        no_grant = httpx.post(url, auth=("id-a", "secret-a"))

    assert sandbox.status_code == 401
    assert chosen.status_code == 200
    assert (no_grant.status_code, no_grant.json()["error"]) == (400, "unsupported_grant_type")
