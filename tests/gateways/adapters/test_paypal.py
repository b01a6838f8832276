"""PayPalAdapter through the real paypalserversdk against the PayPal simulator."""

import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit
from uuid import uuid4

import httpx
import pytest

from gateways.adapters._common import header
from gateways.adapters.paypal import PayPalAdapter
from gateways.base import (
    Ambiguous,
    CallbackKind,
    ChargeNotFound,
    ChargeRequest,
    ChargeResult,
    ChargeStatus,
    Declined,
    GatewayError,
    InvalidCallback,
    Misconfigured,
    RefundStatus,
    Retryable,
)
from gateways.simulators import SimulatorServer
from tests.gateways.adapters.conftest import (
    SHORT_TIMEOUT,
    TIMEOUT,
    CallbackReceiver,
    Delivery,
    charge_request,
    closed_port_url,
    credentials,
    faults,
    recorded_charges,
    requests_to,
    set_credential,
)

RETURN_URL = "https://wallet.example/paypal/return"
CANCEL_URL = "https://wallet.example/paypal/cancel"
CREATE_PATH = "/paypal/v2/checkout/orders"
TOKEN_PATH = "/paypal/v1/oauth2/token"


def paypal_at(base_url: str, *, timeout: float = TIMEOUT) -> PayPalAdapter:
    return PayPalAdapter(
        code="paypal",
        timeout_seconds=timeout,
        credentials=credentials("paypal"),
        api_base=base_url + "/paypal",
    )


@pytest.fixture
def adapter(sim: SimulatorServer) -> PayPalAdapter:
    return paypal_at(sim.base_url)


def paypal(*, key: str = "pp-key-1", **extra: Any) -> ChargeRequest:
    extra.setdefault("return_url", RETURN_URL)
    extra.setdefault("cancel_url", CANCEL_URL)
    return charge_request(method="paypal", key=key, **extra)


def with_token(adapter: PayPalAdapter) -> None:
    """The SDK's OAuth token taken now, as the first call would take it."""
    assert adapter._sdk.oauth_2.is_valid()


def approval_url(result: ChargeResult) -> str:
    assert result.next_action is not None
    assert result.next_action["type"] == "redirect_to_url"
    return str(result.next_action["redirect_to_url"]["url"])


def approve(control: httpx.Client, order_id: str) -> None:
    answer = control.post(f"/paypal/approve/{order_id}")
    assert answer.status_code == 200, answer.text


def captured(adapter: PayPalAdapter, control: httpx.Client, **extra: Any) -> ChargeResult:
    order = adapter.charge(paypal(**extra))
    approve(control, order.reference)
    done = adapter.capture(order.reference, "cap-" + order.reference)
    assert done.status is ChargeStatus.SUCCEEDED
    return done


def captures_made(adapter: PayPalAdapter, order_id: str) -> list[Any]:
    """The captures the order holds at the simulator."""
    unit = adapter._order(order_id)["purchase_units"][0]
    return list((unit.get("payments") or {}).get("captures") or [])


# Orders.


def test_a_charge_requires_the_payer_s_approval_at_paypal(
    adapter: PayPalAdapter, control: httpx.Client
) -> None:
    result = adapter.charge(paypal())

    assert result.status is ChargeStatus.REQUIRES_ACTION
    assert (result.amount, result.currency, result.capture_reference) == (1050, "BRL", "")
    assert result.next_action == {
        "type": "redirect_to_url",
        "redirect_to_url": {"url": approval_url(result), "return_url": RETURN_URL},
    }
    url = urlsplit(approval_url(result))
    assert parse_qs(url.query)["token"] == [result.reference]
    [recorded] = recorded_charges(control, "paypal")
    assert (recorded["id"], recorded["reference"]) == (result.reference, "pw-1")
    assert (recorded["idempotency_key"], recorded["amount"]) == ("pp-key-1", 1050)


def test_the_order_carries_the_payment_and_the_urls(
    adapter: PayPalAdapter, control: httpx.Client
) -> None:
    order = adapter.charge(paypal(amount=123456, description="Top-up"))

    unit = adapter._order(order.reference)["purchase_units"][0]
    canceled = control.post(f"/paypal/approve/{order.reference}", json={"action": "cancel"})
    approved = control.post(f"/paypal/approve/{order.reference}")

    assert unit["amount"] == {"currency_code": "BRL", "value": "1234.56"}
    assert (unit["custom_id"], unit["invoice_id"], unit["description"]) == (
        "pw-1",
        "pw-1",
        "Top-up",
    )
    assert canceled.json()["redirect"] == f"{CANCEL_URL}?token={order.reference}"
    assert approved.json()["redirect"].startswith(f"{RETURN_URL}?token={order.reference}&PayerID=")


def test_amounts_cross_the_wire_exactly(adapter: PayPalAdapter) -> None:
    for amount in (1, 99, 100_001, 99_999_999):
        result = adapter.charge(paypal(key=f"amount-{amount}", amount=amount))
        assert result.amount == amount


def test_only_paypal_goes_to_paypal(adapter: PayPalAdapter, control: httpx.Client) -> None:
    with pytest.raises(Declined) as raised:
        adapter.charge(charge_request(method="pix"))

    assert raised.value.code == "method_not_supported"
    assert requests_to(control, CREATE_PATH) == []


def test_a_charge_without_a_return_url_is_refused_before_sending(
    adapter: PayPalAdapter, control: httpx.Client
) -> None:
    with pytest.raises(Declined) as raised:
        adapter.charge(paypal(return_url=""))

    assert raised.value.code == "missing_return_url"
    assert requests_to(control, CREATE_PATH) == []


def test_the_same_idempotency_key_twice_is_one_order(
    adapter: PayPalAdapter, control: httpx.Client
) -> None:
    first = adapter.charge(paypal(key="same"))
    second = adapter.charge(paypal(key="same"))
    found = adapter.find_charge(paypal(key="same"))

    assert second.reference == first.reference
    assert found is not None
    assert found.reference == first.reference
    assert len(recorded_charges(control, "paypal")) == 1


# Capture.


def test_an_approved_order_captures_once(adapter: PayPalAdapter, control: httpx.Client) -> None:
    order = adapter.charge(paypal())
    approve(control, order.reference)

    approved = adapter.retrieve(order.reference)
    done = adapter.capture(order.reference, "cap-1")

    assert (approved.status, approved.raw_status) == (ChargeStatus.PENDING, "APPROVED")
    assert approved.next_action is None
    assert done.status is ChargeStatus.SUCCEEDED
    assert (done.reference, done.amount, done.currency) == (order.reference, 1050, "BRL")
    assert done.capture_reference
    assert done.raw_status == "COMPLETED/COMPLETED"
    assert len(captures_made(adapter, order.reference)) == 1


@pytest.mark.parametrize("second_key", ["cap-1", "cap-other"])
def test_capturing_twice_answers_the_one_capture(
    adapter: PayPalAdapter, control: httpx.Client, second_key: str
) -> None:
    order = adapter.charge(paypal())
    approve(control, order.reference)

    first = adapter.capture(order.reference, "cap-1")
    again = adapter.capture(order.reference, second_key)

    assert again.status is ChargeStatus.SUCCEEDED
    assert again.capture_reference == first.capture_reference
    assert len(captures_made(adapter, order.reference)) == 1


def test_a_capture_before_approval_still_requires_action(
    adapter: PayPalAdapter, control: httpx.Client
) -> None:
    order = adapter.charge(paypal())

    early = adapter.capture(order.reference, "cap-early")

    assert early.status is ChargeStatus.REQUIRES_ACTION
    assert approval_url(early) == approval_url(order)
    approve(control, order.reference)
    assert adapter.capture(order.reference, "cap-early").status is ChargeStatus.SUCCEEDED


def test_a_declined_capture_asks_the_payer_to_approve_again(
    adapter: PayPalAdapter, control: httpx.Client
) -> None:
    order = adapter.charge(paypal())
    approve(control, order.reference)
    faults(control, "paypal", capture_status="declined")

    declined = adapter.capture(order.reference, "cap-1")

    assert declined.status is ChargeStatus.REQUIRES_ACTION
    assert declined.failure_code == "INSTRUMENT_DECLINED"
    assert urlsplit(approval_url(declined)).path.endswith(f"/approve/{order.reference}")
    assert adapter.retrieve(order.reference).status is ChargeStatus.REQUIRES_ACTION
    control.delete("/faults")
    approve(control, order.reference)
    done = adapter.capture(order.reference, "cap-1")
    assert (done.status, done.capture_reference != "") == (ChargeStatus.SUCCEEDED, True)


def test_capturing_an_unknown_order_is_charge_not_found(adapter: PayPalAdapter) -> None:
    with pytest.raises(ChargeNotFound):
        adapter.capture("NOSUCHORDER0000", "cap-x")


# Retrieve and cancel.


def test_retrieve_reads_each_state(adapter: PayPalAdapter, control: httpx.Client) -> None:
    order = adapter.charge(paypal())

    created = adapter.retrieve(order.reference)
    approve(control, order.reference)
    approved = adapter.retrieve(order.reference)
    adapter.capture(order.reference, "cap-1")
    completed = adapter.retrieve(order.reference)

    assert (created.status, created.raw_status) == (
        ChargeStatus.REQUIRES_ACTION,
        "PAYER_ACTION_REQUIRED",
    )
    assert approval_url(created) == approval_url(order)
    assert approved.status is ChargeStatus.PENDING
    assert completed.status is ChargeStatus.SUCCEEDED
    assert (completed.amount, completed.currency) == (1050, "BRL")


def test_a_fully_refunded_order_reads_refunded_never_succeeded(
    adapter: PayPalAdapter, control: httpx.Client
) -> None:
    done = captured(adapter, control)
    adapter.refund(reference=done.reference, amount=300, idempotency_key="rf-1")
    partly = adapter.retrieve(done.reference)
    adapter.refund(reference=done.reference, amount=750, idempotency_key="rf-2")

    whole = adapter.retrieve(done.reference)

    assert partly.status is ChargeStatus.SUCCEEDED
    assert (whole.status, whole.raw_status) == (ChargeStatus.REFUNDED, "COMPLETED/REFUNDED")


def test_retrieving_an_unknown_reference_is_charge_not_found(adapter: PayPalAdapter) -> None:
    with pytest.raises(ChargeNotFound) as raised:
        adapter.retrieve("NOSUCHORDER0000")

    assert raised.value.http_status == 404


def test_cancel_answers_what_the_order_is(adapter: PayPalAdapter, control: httpx.Client) -> None:
    order = adapter.charge(paypal())

    canceled = adapter.cancel(order.reference)

    assert canceled.status is ChargeStatus.REQUIRES_ACTION
    assert canceled.reference == order.reference


# Refunds.


def test_refund_partly_then_the_rest_then_nothing_more(
    adapter: PayPalAdapter, control: httpx.Client
) -> None:
    done = captured(adapter, control)

    part = adapter.refund(reference=done.reference, amount=300, idempotency_key="rf-1")
    rest = adapter.refund(reference=done.reference, amount=750, idempotency_key="rf-2")

    assert (part.status, part.amount, part.raw_status) == (
        RefundStatus.SUCCEEDED,
        300,
        "COMPLETED",
    )
    assert (rest.status, rest.amount) == (RefundStatus.SUCCEEDED, 750)
    assert part.reference != rest.reference
    with pytest.raises(Declined) as raised:
        adapter.refund(reference=done.reference, amount=1, idempotency_key="rf-3")
    assert raised.value.http_status == 422


def test_refunding_more_than_was_paid_is_declined_not_trimmed(
    adapter: PayPalAdapter, control: httpx.Client
) -> None:
    done = captured(adapter, control)

    with pytest.raises(Declined) as raised:
        adapter.refund(reference=done.reference, amount=1051, idempotency_key="rf-over")

    assert (raised.value.code, raised.value.http_status) == ("REFUND_AMOUNT_EXCEEDED", 422)
    assert control.get("/refunds", params={"gateway": "paypal"}).json() == []


def test_a_repeated_refund_key_refunds_once(adapter: PayPalAdapter, control: httpx.Client) -> None:
    done = captured(adapter, control)

    first = adapter.refund(reference=done.reference, amount=300, idempotency_key="rf-same")
    again = adapter.refund(reference=done.reference, amount=300, idempotency_key="rf-same")

    assert again == first
    assert len(control.get("/refunds", params={"gateway": "paypal"}).json()) == 1


def test_a_pending_refund_is_read_back_by_its_id(
    adapter: PayPalAdapter, control: httpx.Client
) -> None:
    done = captured(adapter, control)
    faults(control, "paypal", refund_status="pending")
    pending = adapter.refund(reference=done.reference, amount=300, idempotency_key="rf-p")
    control.delete("/faults")

    asked_again = adapter.refund(reference=done.reference, amount=300, idempotency_key="rf-p")

    assert (pending.status, pending.raw_status) == (RefundStatus.PENDING, "PENDING")
    assert asked_again.status is RefundStatus.SUCCEEDED
    assert asked_again.reference == pending.reference


def test_an_order_never_captured_cannot_be_refunded(adapter: PayPalAdapter) -> None:
    order = adapter.charge(paypal())

    with pytest.raises(Declined) as raised:
        adapter.refund(reference=order.reference, amount=100, idempotency_key="rf-none")

    assert raised.value.code == "not_captured"


# Health and credentials.


def test_health_is_healthy_with_its_latency(adapter: PayPalAdapter, control: httpx.Client) -> None:
    health = adapter.health()

    assert health.healthy is True
    assert health.latency_ms >= 0
    assert len(requests_to(control, TOKEN_PATH)) == 1


def test_health_is_unhealthy_when_the_simulator_is_down() -> None:
    health = paypal_at(closed_port_url(), timeout=1).health()

    assert (health.healthy, health.detail.split(":")[0]) == (False, "retryable")


def test_wrong_credentials_are_misconfigured(
    sim: SimulatorServer, control: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_credential(monkeypatch, "paypal", "CLIENT_SECRET", "wrong-secret")
    adapter = paypal_at(sim.base_url)

    with pytest.raises(Misconfigured) as raised:
        adapter.charge(paypal())
    health = adapter.health()

    assert (raised.value.http_status, raised.value.code) == (401, "invalid_client")
    assert (health.healthy, health.detail.split(":")[0]) == (False, "misconfigured")
    assert requests_to(control, CREATE_PATH) == []


def test_a_missing_credential_is_misconfigured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("gateways.credentials.SANDBOX_VALUES", {"paypal": {}})

    with pytest.raises(Misconfigured) as raised:
        paypal_at("http://127.0.0.1:1")

    assert raised.value.code == "missing_credentials"


def test_one_token_serves_many_calls(adapter: PayPalAdapter, control: httpx.Client) -> None:
    adapter.charge(paypal(key="a"))
    adapter.charge(paypal(key="b"))

    assert len(requests_to(control, TOKEN_PATH)) == 1


def test_a_token_paypal_forgot_is_replaced_once(
    adapter: PayPalAdapter, control: httpx.Client
) -> None:
    """A kept token refused before it expires (revoked): one new token, the call again."""
    adapter.charge(paypal(key="before"))
    assert control.post("/reset").status_code == 200  # the simulator forgets its tokens

    after = adapter.charge(paypal(key="after"))

    assert after.status is ChargeStatus.REQUIRES_ACTION
    assert len(requests_to(control, TOKEN_PATH)) == 1
    assert [r["status"] for r in requests_to(control, CREATE_PATH)] == [401, 201]


# The error mapping table (docs/gateways.md, "What a failure means").


@dataclass(frozen=True)
class Case:
    expected: type[GatewayError]
    faults: dict[str, Any] = field(default_factory=dict)
    timeout: float = TIMEOUT
    refused: bool = False  # point the adapter at a closed port
    own_port: bool = False  # point the adapter at the gateway's own simulator port
    recorded: int = 0  # orders the simulator holds afterwards
    http_status: int | None = None
    sent: int = 1  # create requests that reached the simulator: the SDK never retries


ERROR_TABLE = {
    "connection refused": Case(Retryable, refused=True, sent=0),
    "500": Case(Ambiguous, {"error_rate": 1}, http_status=500),
    "502": Case(Ambiguous, {"error_rate": 1, "error_status": 502}, http_status=502),
    "503": Case(Retryable, {"error_rate": 1, "error_status": 503}, http_status=503),
    "outage as 503": Case(Retryable, {"down": True, "down_mode": "503"}, http_status=503),
    "429": Case(Retryable, {"error_rate": 1, "error_status": 429}, http_status=429),
    "504 from a proxy": Case(Ambiguous, {"error_rate": 1, "error_status": 504}, http_status=504),
    "reset after sending": Case(Ambiguous, {"down": True}),
    "read timeout": Case(Ambiguous, {"timeout_rate": 1}, timeout=SHORT_TIMEOUT, recorded=1),
    "refused at its own port": Case(Retryable, {"down": True, "down_mode": "refuse"},
                                    own_port=True, sent=0),
    "reset before reading": Case(Ambiguous, {"down": True, "down_mode": "reset_before_read"}),
    "reset after handling": Case(Ambiguous, {"down": True, "down_mode": "reset_after_read"},
                                 recorded=1),
    "hang after handling": Case(Ambiguous, {"down": True, "down_mode": "hang"},
                                timeout=SHORT_TIMEOUT, recorded=1),
    "502 after handling": Case(Ambiguous, {"down": True, "down_mode": "502"}, http_status=502,
                               recorded=1),
    "504 after handling": Case(Ambiguous, {"down": True, "down_mode": "504"}, http_status=504,
                               recorded=1),
}  # fmt: skip


def _base_url(sim: SimulatorServer, case: Case) -> str:
    return sim.gateway_base_url("paypal") if case.own_port else sim.base_url


@pytest.mark.parametrize("case", ERROR_TABLE.values(), ids=ERROR_TABLE.keys())
def test_error_mapping(case: Case, sim: SimulatorServer, control: httpx.Client) -> None:
    base_url = closed_port_url() if case.refused else _base_url(sim, case)
    adapter = paypal_at(base_url, timeout=case.timeout)
    if not case.refused:
        with_token(adapter)  # the fault meets the order itself
    if case.faults:
        faults(control, "paypal", **case.faults)

    started = time.monotonic()
    with pytest.raises(GatewayError) as raised:
        adapter.charge(paypal())

    assert type(raised.value) is case.expected, raised.value
    assert raised.value.http_status == case.http_status
    assert time.monotonic() - started < case.timeout + 1
    assert len(requests_to(control, CREATE_PATH)) == case.sent
    assert len(recorded_charges(control, "paypal")) == case.recorded


TOKEN_FAULTS = {
    "503": {"error_rate": 1, "error_status": 503},
    "500": {"error_rate": 1},
    "429": {"error_rate": 1, "error_status": 429},
    "reset after sending": {"down": True},
    "read timeout": {"timeout_rate": 1},
}


@pytest.mark.parametrize("fault", TOKEN_FAULTS.values(), ids=TOKEN_FAULTS.keys())
def test_a_failed_token_request_is_retryable_whatever_became_of_it(
    fault: dict[str, Any], sim: SimulatorServer, control: httpx.Client
) -> None:
    """A token request changes nothing at the gateway: no order can exist."""
    adapter = paypal_at(sim.base_url, timeout=SHORT_TIMEOUT)
    faults(control, "paypal", **fault)

    with pytest.raises(Retryable) as raised:
        adapter.charge(paypal())

    assert "OAuth" in raised.value.message
    assert requests_to(control, CREATE_PATH) == []


def test_after_an_ambiguous_timeout_the_same_key_finds_the_one_order(
    sim: SimulatorServer, control: httpx.Client
) -> None:
    impatient = paypal_at(sim.base_url, timeout=SHORT_TIMEOUT)
    with_token(impatient)
    faults(control, "paypal", timeout_rate=1)
    with pytest.raises(Ambiguous):
        impatient.charge(paypal(key="lost-answer"))
    [recorded] = recorded_charges(control, "paypal")
    control.delete("/faults")

    found = impatient.find_charge(paypal(key="lost-answer"))
    retried = impatient.charge(paypal(key="lost-answer"))

    assert found is not None
    assert (found.reference, found.status) == (recorded["id"], ChargeStatus.REQUIRES_ACTION)
    assert retried.reference == recorded["id"]
    assert len(recorded_charges(control, "paypal")) == 1


@pytest.mark.parametrize(
    ("fault", "expected"),
    [({"error_rate": 1, "error_status": 503}, Retryable), ({"timeout_rate": 1}, Ambiguous)],
)
def test_a_capture_that_fails_is_mapped_and_safe_to_repeat(
    sim: SimulatorServer,
    control: httpx.Client,
    fault: dict[str, Any],
    expected: type[GatewayError],
) -> None:
    adapter = paypal_at(sim.base_url, timeout=SHORT_TIMEOUT)
    order = adapter.charge(paypal())
    approve(control, order.reference)
    faults(control, "paypal", **fault)

    with pytest.raises(expected):
        adapter.capture(order.reference, "cap-1")
    control.delete("/faults")
    done = adapter.capture(order.reference, "cap-1")

    assert done.status is ChargeStatus.SUCCEEDED
    assert len(captures_made(adapter, order.reference)) == 1


# Callbacks: verified by PayPal's verify-webhook-signature call.

VERIFY_PATH = "/paypal/v1/notifications/verify-webhook-signature"


@pytest.fixture
def hooked(control: httpx.Client, receiver: CallbackReceiver) -> CallbackReceiver:
    answer = control.put("/callbacks/paypal", json={"url": receiver.url + "/webhooks/paypal"})
    assert answer.status_code == 200, answer.text
    return receiver


def event_of(delivery: Delivery) -> dict[str, Any]:
    return dict(json.loads(delivery.body))


def test_an_approval_callback_names_the_order_to_capture(
    adapter: PayPalAdapter, control: httpx.Client, hooked: CallbackReceiver
) -> None:
    order = adapter.charge(paypal(payment_id="pw-hook"))
    approve(control, order.reference)
    delivery = hooked.only()

    event = adapter.parse_callback(headers=delivery.headers, query={}, body=delivery.body)

    assert event.kind is CallbackKind.PAYMENT_PENDING
    assert (event.gateway, event.reference, event.payment_id) == (
        "paypal",
        order.reference,
        "pw-hook",
    )
    assert (event.event_id, event.amount) == (event_of(delivery)["id"], 1050)
    assert event.raw["event_type"] == "CHECKOUT.ORDER.APPROVED"
    assert len(requests_to(control, VERIFY_PATH)) == 1


def test_capture_callbacks_name_the_order_not_the_capture(
    adapter: PayPalAdapter, control: httpx.Client, hooked: CallbackReceiver
) -> None:
    done = captured(adapter, control)
    adapter.refund(reference=done.reference, amount=1050, idempotency_key="rf-all")
    kinds = {}
    for delivery in hooked.deliveries[1:]:
        event = adapter.parse_callback(headers=delivery.headers, query={}, body=delivery.body)
        kinds[event_of(delivery)["event_type"]] = event
        assert event.reference == done.reference

    completed = kinds["PAYMENT.CAPTURE.COMPLETED"]
    assert (completed.kind, completed.payment_id, completed.amount) == (
        CallbackKind.PAYMENT_SUCCEEDED,
        "pw-1",
        1050,
    )
    assert kinds["PAYMENT.CAPTURE.REFUNDED"].kind is CallbackKind.REFUND_SUCCEEDED


def test_a_denied_capture_callback_says_look_it_up(
    adapter: PayPalAdapter, control: httpx.Client, hooked: CallbackReceiver
) -> None:
    order = adapter.charge(paypal())
    approve(control, order.reference)
    faults(control, "paypal", capture_status="declined")
    adapter.capture(order.reference, "cap-1")
    delivery = hooked.deliveries[-1]

    event = adapter.parse_callback(headers=delivery.headers, query={}, body=delivery.body)

    assert event_of(delivery)["event_type"] == "PAYMENT.CAPTURE.DENIED"
    assert (event.kind, event.reference) == (CallbackKind.PAYMENT_UPDATED, order.reference)


def test_a_redelivery_is_the_same_event(
    adapter: PayPalAdapter, control: httpx.Client, hooked: CallbackReceiver
) -> None:
    order = adapter.charge(paypal())
    approve(control, order.reference)
    [first] = control.get("/callbacks/deliveries").json()
    control.post(f"/callbacks/deliveries/{first['id']}/redeliver")
    one, again = hooked.deliveries

    event = adapter.parse_callback(headers=again.headers, query={}, body=again.body)

    assert event.event_id == event_of(one)["id"]
    assert header(again.headers, "PAYPAL-TRANSMISSION-ID") != header(
        one.headers, "PAYPAL-TRANSMISSION-ID"
    )


def _genuine(adapter: PayPalAdapter, control: httpx.Client, hooked: CallbackReceiver) -> Delivery:
    order = adapter.charge(paypal())
    approve(control, order.reference)
    return hooked.only()


def _without(headers: dict[str, str], name: str) -> dict[str, str]:
    return {key: value for key, value in headers.items() if key.lower() != name.lower()}


def _with(headers: dict[str, str], name: str, value: str) -> dict[str, str]:
    return {**_without(headers, name), name: value}


@pytest.mark.parametrize(
    "why",
    ["tampered body", "wrong signature", "another transmission id", "stale transmission",
     "missing signature", "missing transmission id", "missing cert url", "malformed body"],
)  # fmt: skip
def test_forged_tampered_and_incomplete_callbacks_are_refused(
    adapter: PayPalAdapter, control: httpx.Client, hooked: CallbackReceiver, why: str
) -> None:
    delivery = _genuine(adapter, control, hooked)
    headers, body = delivery.headers, delivery.body
    tampered = body.replace(b'"1050"', b'"1.00"').replace(b'"10.50"', b'"1.00"')
    assert tampered != body
    stale = (datetime.now(UTC) - timedelta(seconds=301)).strftime("%Y-%m-%dT%H:%M:%SZ")
    headers, body = {
        "tampered body": (headers, tampered),
        "wrong signature": (_with(headers, "PAYPAL-TRANSMISSION-SIG", "AAAA" + "A" * 40), body),
        "another transmission id": (_with(headers, "PAYPAL-TRANSMISSION-ID", str(uuid4())), body),
        "stale transmission": (_with(headers, "PAYPAL-TRANSMISSION-TIME", stale), body),
        "missing signature": (_without(headers, "PAYPAL-TRANSMISSION-SIG"), body),
        "missing transmission id": (_without(headers, "PAYPAL-TRANSMISSION-ID"), body),
        "missing cert url": (_without(headers, "PAYPAL-CERT-URL"), body),
        "malformed body": (headers, b"{not json"),
    }[why]

    with pytest.raises(InvalidCallback):
        adapter.parse_callback(headers=headers, query={}, body=body)


def test_a_callback_for_another_webhook_id_is_refused(
    adapter: PayPalAdapter,
    control: httpx.Client,
    hooked: CallbackReceiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    delivery = _genuine(adapter, control, hooked)
    set_credential(monkeypatch, "paypal", "WEBHOOK_ID", "WH-SOMEONE-ELSE")

    with pytest.raises(InvalidCallback) as raised:
        adapter.parse_callback(headers=delivery.headers, query={}, body=delivery.body)

    assert "FAILURE" in str(raised.value)


def test_when_paypal_cannot_verify_the_callback_is_not_called_forged(
    adapter: PayPalAdapter, control: httpx.Client, hooked: CallbackReceiver
) -> None:
    """PayPal sends an unacknowledged callback again: a genuine one is not lost."""
    delivery = _genuine(adapter, control, hooked)
    faults(control, "paypal", error_rate=1, error_status=503)

    with pytest.raises(Retryable):
        adapter.parse_callback(headers=delivery.headers, query={}, body=delivery.body)
