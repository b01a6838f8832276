"""StripeAdapter through the real stripe SDK against the Stripe simulator."""

import dataclasses
import hashlib
import hmac
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from gateways.adapters._common import elapsed_ms
from gateways.adapters.stripe import StripeAdapter
from gateways.base import (
    Ambiguous,
    CallbackKind,
    ChargeNotFound,
    ChargeStatus,
    Declined,
    GatewayError,
    InvalidCallback,
    Misconfigured,
    RefundStatus,
    Retryable,
)
from gateways.credentials import SANDBOX_VALUES
from gateways.simulators import SimulatorServer
from tests.gateways.adapters.conftest import (
    SHORT_TIMEOUT,
    TIMEOUT,
    CallbackReceiver,
    charge_request,
    closed_port_url,
    credentials,
    faults,
    recorded_charges,
    requests_to,
    set_credential,
)

WEBHOOK_SECRET = SANDBOX_VALUES["stripe"]["WEBHOOK_SECRET"]
CREATE_PATH = "/stripe/v1/payment_intents"


def stripe_at(base_url: str, *, timeout: float = TIMEOUT) -> StripeAdapter:
    return StripeAdapter(
        code="stripe",
        timeout_seconds=timeout,
        credentials=credentials("stripe"),
        api_base=base_url + "/stripe",
    )


@pytest.fixture
def adapter(sim: SimulatorServer) -> StripeAdapter:
    return stripe_at(sim.base_url)


def card(method: str = "pm_card_visa", *, key: str = "card-key-1", **extra: Any) -> Any:
    return charge_request(method="card", card_token=method, key=key, **extra)


# Charges.


def test_a_card_charge_succeeds_with_the_cards_details(
    adapter: StripeAdapter, control: httpx.Client
) -> None:
    result = adapter.charge(card())

    assert result.status is ChargeStatus.SUCCEEDED
    assert result.reference.startswith("pi_")
    assert (result.amount, result.card_brand, result.card_last4) == (1050, "visa", "4242")
    [recorded] = recorded_charges(control, "stripe")
    assert (recorded["id"], recorded["reference"]) == (result.reference, "pw-1")
    assert (recorded["idempotency_key"], recorded["amount"]) == ("card-key-1", 1050)


def test_a_charge_writes_none_of_the_sdks_info_lines(
    adapter: StripeAdapter, caplog: pytest.LogCaptureFixture
) -> None:
    """Two lines per request, which the attempt's own line says (config/settings)."""
    with caplog.at_level(logging.INFO):
        adapter.charge(card())
        logging.getLogger("stripe").warning("a warning of the SDK's")

    assert [(r.name, r.levelname) for r in caplog.records if r.name == "stripe"] == [
        ("stripe", "WARNING")
    ]


@pytest.mark.parametrize(
    ("token", "code"),
    [
        ("pm_card_chargeDeclined", "generic_decline"),
        ("pm_card_chargeDeclinedInsufficientFunds", "insufficient_funds"),
        ("pm_card_chargeDeclinedExpiredCard", "expired_card"),
    ],
)
def test_a_declined_card_is_declined_with_the_decline_code(
    adapter: StripeAdapter, token: str, code: str
) -> None:
    with pytest.raises(Declined) as raised:
        adapter.charge(card(token))

    assert (raised.value.code, raised.value.http_status) == (code, 402)


def test_only_cards_go_to_stripe(adapter: StripeAdapter, control: httpx.Client) -> None:
    with pytest.raises(Declined) as raised:
        adapter.charge(charge_request(method="pix"))

    assert raised.value.code == "method_not_supported"
    assert requests_to(control, CREATE_PATH) == []


def test_3d_secure_requires_action_then_succeeds_once_authenticated(
    adapter: StripeAdapter, control: httpx.Client
) -> None:
    pending = adapter.charge(card("pm_card_authenticationRequired"))

    assert pending.status is ChargeStatus.REQUIRES_ACTION
    assert pending.next_action is not None
    url = pending.next_action["redirect_to_url"]["url"]
    assert url.endswith(f"/_sim/card/{pending.reference}/authenticate")
    assert control.post(f"/card/{pending.reference}/authenticate").status_code == 200
    done = adapter.retrieve(pending.reference)
    assert done.status is ChargeStatus.SUCCEEDED
    assert (done.reference, done.amount, done.next_action) == (pending.reference, 1050, None)


def test_3d_secure_failed_reads_as_failed_with_the_reason(
    adapter: StripeAdapter, control: httpx.Client
) -> None:
    pending = adapter.charge(card("pm_card_threeDSecure2Required"))
    control.post(f"/card/{pending.reference}/authenticate", json={"result": "fail"})

    failed = adapter.retrieve(pending.reference)

    assert failed.status is ChargeStatus.FAILED
    assert failed.failure_code == "payment_intent_authentication_failure"


def test_retrieve_reads_the_charge(adapter: StripeAdapter) -> None:
    charged = adapter.charge(card("pm_card_mastercard"))

    read = adapter.retrieve(charged.reference)

    assert read == charged


def test_retrieving_an_unknown_reference_is_charge_not_found(adapter: StripeAdapter) -> None:
    with pytest.raises(ChargeNotFound) as raised:
        adapter.retrieve("pi_doesnotexist")

    assert raised.value.http_status == 404


def test_cancel_a_charge_awaiting_authentication(adapter: StripeAdapter) -> None:
    pending = adapter.charge(card("pm_card_authenticationRequired"))

    canceled = adapter.cancel(pending.reference)

    assert canceled.status is ChargeStatus.CANCELED
    assert adapter.retrieve(pending.reference).status is ChargeStatus.CANCELED


def test_a_succeeded_charge_cannot_be_canceled(adapter: StripeAdapter) -> None:
    charged = adapter.charge(card())

    with pytest.raises(Declined) as raised:
        adapter.cancel(charged.reference)

    assert raised.value.code == "payment_intent_unexpected_state"


def test_refund_partly_then_the_rest_then_nothing_more(
    adapter: StripeAdapter, control: httpx.Client
) -> None:
    charged = adapter.charge(card())

    partial = adapter.refund(reference=charged.reference, amount=400, idempotency_key="rf-1")
    with pytest.raises(Declined) as too_much:
        adapter.refund(reference=charged.reference, amount=651, idempotency_key="rf-2")
    rest = adapter.refund(reference=charged.reference, amount=650, idempotency_key="rf-3")
    with pytest.raises(Declined) as again:
        adapter.refund(reference=charged.reference, amount=1, idempotency_key="rf-4")

    assert (partial.status, partial.amount) == (RefundStatus.SUCCEEDED, 400)
    assert (rest.status, rest.amount) == (RefundStatus.SUCCEEDED, 650)
    assert partial.reference.startswith("re_")
    assert partial.reference != rest.reference
    assert too_much.value.code == "amount_too_large"
    assert again.value.code == "charge_already_refunded"
    [recorded] = recorded_charges(control, "stripe")
    assert recorded["amount_refunded"] == 1050


def test_a_repeated_refund_key_refunds_once(adapter: StripeAdapter, control: httpx.Client) -> None:
    charged = adapter.charge(card())

    first = adapter.refund(reference=charged.reference, amount=300, idempotency_key="rf-same")
    second = adapter.refund(reference=charged.reference, amount=300, idempotency_key="rf-same")

    assert first == second
    assert [r["amount"] for r in control.get("/refunds").json()] == [300]


def test_the_same_idempotency_key_twice_is_one_charge(
    adapter: StripeAdapter, control: httpx.Client
) -> None:
    first = adapter.charge(card(key="same-key"))
    second = adapter.charge(card(key="same-key"))
    found = adapter.find_charge(card(key="same-key"))

    assert second.reference == first.reference
    assert found is not None
    assert found.reference == first.reference
    assert len(recorded_charges(control, "stripe", idempotency_key="same-key")) == 1
    assert len(recorded_charges(control, "stripe")) == 1


def test_find_charge_says_what_the_charge_is_now_not_what_it_was(
    adapter: StripeAdapter, control: httpx.Client
) -> None:
    """Stripe answers a replayed key with its first answer, whatever came since: a charge
    that was waiting for 3-D Secure (or processing) is read back by its id."""
    waiting = adapter.charge(card("pm_card_authenticationRequired", key="then-paid"))
    assert waiting.status is ChargeStatus.REQUIRES_ACTION
    control.post(f"/card/{waiting.reference}/authenticate")

    found = adapter.find_charge(card("pm_card_authenticationRequired", key="then-paid"))

    assert found is not None
    assert (found.reference, found.status) == (waiting.reference, ChargeStatus.SUCCEEDED)
    assert len(recorded_charges(control, "stripe", idempotency_key="then-paid")) == 1


def test_find_charge_of_a_declined_card_says_failed(adapter: StripeAdapter) -> None:
    found = adapter.find_charge(card("pm_card_chargeDeclined", key="declined-key"))

    assert found is not None
    assert (found.status, found.failure_code) == (ChargeStatus.FAILED, "generic_decline")


# Health.


def test_health_is_healthy_with_its_latency(adapter: StripeAdapter, control: httpx.Client) -> None:
    faults(control, "stripe", latency_ms=60)

    health = adapter.health()

    assert health.healthy is True
    assert 60 <= health.latency_ms < 2000


def test_health_is_unhealthy_when_the_simulator_is_down() -> None:
    health = stripe_at(closed_port_url()).health()

    assert health.healthy is False
    assert health.detail.startswith("retryable")


def test_health_is_unhealthy_with_a_wrong_key(
    sim: SimulatorServer, control: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_credential(monkeypatch, "stripe", "API_KEY", "sk_test_not_this_one")
    faults(control, "stripe", latency_ms=60)

    health = stripe_at(sim.base_url).health()

    assert (health.healthy, health.detail.split(":")[0]) == (False, "misconfigured")
    assert 60 <= health.latency_ms < 2000  # the health panel shows it for a failed probe too


def test_latency_is_in_whole_milliseconds() -> None:
    assert 10_000 <= elapsed_ms(time.monotonic() - 10) < 10_005


# The error mapping table.


@dataclass(frozen=True)
class Case:
    expected: type[GatewayError]
    faults: dict[str, Any] = field(default_factory=dict)
    timeout: float = TIMEOUT
    refused: bool = False  # point the adapter at a closed port
    own_port: bool = False  # point the adapter at the gateway's own simulator port
    api_key: str = ""  # a wrong key
    token: str = "pm_card_visa"
    currency: str = "BRL"
    recorded: int = 0  # charges the simulator holds afterwards
    http_status: int | None = None
    sent: int = 1  # requests that reached the simulator: the SDK never retries


ERROR_TABLE = {
    "connection refused": Case(Retryable, refused=True, sent=0),
    "500": Case(Ambiguous, {"error_rate": 1}, http_status=500),
    "502": Case(Ambiguous, {"error_rate": 1, "error_status": 502}, http_status=502),
    "503": Case(Ambiguous, {"error_rate": 1, "error_status": 503}, http_status=503),
    "outage as 503": Case(Ambiguous, {"down": True, "down_mode": "503"}, http_status=503),
    "429": Case(Retryable, {"error_rate": 1, "error_status": 429}, http_status=429),
    "504 from a proxy": Case(Ambiguous, {"error_rate": 1, "error_status": 504}, http_status=504),
    "reset after sending": Case(Ambiguous, {"down": True}),
    "read timeout": Case(Ambiguous, {"timeout_rate": 1}, timeout=SHORT_TIMEOUT, recorded=1),
    "401 wrong key": Case(Misconfigured, api_key="sk_test_wrong", http_status=401),
    "400 unknown card": Case(Declined, token="pm_card_nonexistent", http_status=400),
    "400 bad currency": Case(Declined, currency="BR$", http_status=400),
    # The simulators' outage modes (down_mode): what a real gateway's outage looks like.
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
    return sim.gateway_base_url("stripe") if case.own_port else sim.base_url


@pytest.mark.parametrize("case", ERROR_TABLE.values(), ids=ERROR_TABLE.keys())
def test_error_mapping(
    case: Case, sim: SimulatorServer, control: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    if case.api_key:
        set_credential(monkeypatch, "stripe", "API_KEY", case.api_key)
    adapter = stripe_at(
        closed_port_url() if case.refused else _base_url(sim, case), timeout=case.timeout
    )
    if case.faults:
        faults(control, "stripe", **case.faults)

    started = time.monotonic()
    with pytest.raises(GatewayError) as raised:
        adapter.charge(card(case.token, currency=case.currency))

    assert type(raised.value) is case.expected, raised.value
    assert raised.value.http_status == case.http_status
    assert time.monotonic() - started < case.timeout + 1
    assert len(requests_to(control, CREATE_PATH)) == case.sent
    assert len(recorded_charges(control, "stripe")) == case.recorded


def test_after_an_ambiguous_timeout_the_same_key_finds_the_one_charge(
    sim: SimulatorServer, control: httpx.Client
) -> None:
    impatient = stripe_at(sim.base_url, timeout=SHORT_TIMEOUT)
    faults(control, "stripe", timeout_rate=1)
    with pytest.raises(Ambiguous):
        impatient.charge(card(key="lost-answer"))
    [recorded] = recorded_charges(control, "stripe")
    control.delete("/faults")

    found = impatient.find_charge(card(key="lost-answer"))

    assert found is not None
    assert (found.reference, found.status) == (recorded["id"], ChargeStatus.SUCCEEDED)
    assert len(recorded_charges(control, "stripe")) == 1


# Callbacks.


@pytest.fixture
def delivered(
    adapter: StripeAdapter, control: httpx.Client, receiver: CallbackReceiver
) -> dict[str, Any]:
    """A real payment_intent.succeeded delivery, after 3-D Secure, and the intent's id."""
    control.put("/callbacks/stripe", json={"url": receiver.url + "/callbacks/stripe"})
    pending = adapter.charge(card("pm_card_authenticationRequired", payment_id="pw-3ds"))
    answer = control.post(f"/card/{pending.reference}/authenticate").json()
    assert answer["callback"]["delivered"] is True
    delivery = receiver.only()
    return {"reference": pending.reference, "headers": delivery.headers, "body": delivery.body}


def test_a_real_delivery_is_accepted_and_normalized(
    adapter: StripeAdapter, delivered: dict[str, Any]
) -> None:
    event = adapter.parse_callback(headers=delivered["headers"], query={}, body=delivered["body"])

    assert event.kind is CallbackKind.PAYMENT_SUCCEEDED
    assert (event.gateway, event.reference) == ("stripe", delivered["reference"])
    assert (event.payment_id, event.amount) == ("pw-3ds", 1050)
    assert event.event_id.startswith("evt_")
    assert event.event_id == json.loads(delivered["body"])["id"]


def test_header_names_are_not_case_sensitive(
    adapter: StripeAdapter, delivered: dict[str, Any]
) -> None:
    signature = next(v for k, v in delivered["headers"].items() if k.lower() == "stripe-signature")

    for name in ("stripe-signature", "STRIPE-SIGNATURE"):
        event = adapter.parse_callback(headers={name: signature}, query={}, body=delivered["body"])
        assert event.reference == delivered["reference"]


def test_a_redelivery_is_the_same_event(
    adapter: StripeAdapter,
    control: httpx.Client,
    receiver: CallbackReceiver,
    delivered: dict[str, Any],
) -> None:
    [first] = control.get("/callbacks/deliveries").json()
    control.post(f"/callbacks/deliveries/{first['id']}/redeliver")
    again = receiver.deliveries[-1]

    event = adapter.parse_callback(headers=again.headers, query={}, body=again.body)

    assert event.event_id == json.loads(delivered["body"])["id"]


def _signed(body: bytes, *, at: int, secret: str = WEBHOOK_SECRET) -> dict[str, str]:
    digest = hmac.new(secret.encode(), f"{at}.".encode() + body, hashlib.sha256).hexdigest()
    return {"Stripe-Signature": f"t={at},v1={digest}"}


@pytest.mark.parametrize("why", ["forged signature", "tampered body", "stale timestamp"])
def test_forged_tampered_and_stale_callbacks_are_refused(
    adapter: StripeAdapter, delivered: dict[str, Any], why: str
) -> None:
    body, now = delivered["body"], int(time.time())
    tampered = body.replace(b'"pw-3ds"', b'"pw-other"')
    assert tampered != body
    headers, payload = {
        "forged signature": (_signed(body, at=now, secret="whsec_guess"), body),
        "tampered body": (delivered["headers"], tampered),
        "stale timestamp": (_signed(body, at=now - 301), body),
    }[why]

    with pytest.raises(InvalidCallback):
        adapter.parse_callback(headers=headers, query={}, body=payload)


def test_a_re_signed_body_within_the_tolerance_is_accepted(
    adapter: StripeAdapter, delivered: dict[str, Any]
) -> None:
    body = delivered["body"]

    event = adapter.parse_callback(
        headers=_signed(body, at=int(time.time()) - 200), query={}, body=body
    )

    assert event.reference == delivered["reference"]


@pytest.mark.parametrize(
    ("headers", "body"),
    [
        ({}, None),
        ({"Stripe-Signature": ""}, None),
        ({"Stripe-Signature": "garbage"}, None),
        ({"Stripe-Signature": "t=notanumber,v1=abc"}, None),
        ("signed", b"not json"),
        ("signed", b"\xff\xfe"),
        ("signed", b"[]"),
        ("signed", b"{}"),
        ("signed", b'{"object": "event", "id": "evt_1", "type": "x", "data": 5}'),
    ],
    ids=[
        "no header",
        "empty header",
        "garbage header",
        "bad timestamp",
        "not json",
        "not utf-8",
        "a list",
        "empty object",
        "data not an object",
    ],
)
def test_malformed_callbacks_are_invalid(
    adapter: StripeAdapter, delivered: dict[str, Any], headers: Any, body: bytes | None
) -> None:
    payload = delivered["body"] if body is None else body
    if headers == "signed":
        headers = _signed(payload, at=int(time.time()))

    with pytest.raises(InvalidCallback):
        adapter.parse_callback(headers=headers, query={}, body=payload)


def test_the_same_key_with_other_parameters_is_ambiguous_never_a_decline(
    adapter: StripeAdapter, control: httpx.Client
) -> None:
    """The key made something already (possibly a charge): never read as a decline."""
    adapter.charge(card(key="edited-later"))
    edited = dataclasses.replace(card(key="edited-later"), description="edited by the app")

    with pytest.raises(GatewayError) as raised:
        adapter.charge(edited)

    assert type(raised.value) is Ambiguous
    assert raised.value.http_status == 400
    assert len(recorded_charges(control, "stripe")) == 1
