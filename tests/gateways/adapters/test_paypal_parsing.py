"""What PayPalAdapter sends to PayPal and reads from its answers, field by field.

PayPal's answers are written out here and served by a scripted local server
(`scripted`): the real SDK sends the requests and reads the answers, as it does with
PayPal. No simulator, no database. Results are compared whole.
"""

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from gateways.adapters.paypal import PayPalAdapter, _error_for
from gateways.base import (
    Ambiguous,
    CallbackEvent,
    CallbackKind,
    ChargeNotFound,
    ChargeResult,
    ChargeStatus,
    Declined,
    GatewayError,
    InvalidCallback,
    Misconfigured,
    RefundResult,
    RefundStatus,
    Retryable,
)
from gateways.credentials import SANDBOX_VALUES
from tests.gateways.adapters.conftest import TIMEOUT, charge_request, credentials

WEBHOOK_ID = SANDBOX_VALUES["paypal"]["WEBHOOK_ID"]
TOKEN = {"access_token": "A21AAtoken", "token_type": "Bearer", "expires_in": 32400}
APPROVE = "https://www.paypal.com/checkoutnow?token=5O190127TN364715T"
RETURN_URL = "https://wallet.example/return"
CAPTURE_ID = "3C679366HH908993F"


@pytest.fixture(autouse=True)
def _fresh_simulator() -> None:
    """The package's simulator is not used here (this replaces its reset)."""


@dataclass
class Asked:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class Script:
    url: str
    answers: list[tuple[int, Any]] = field(default_factory=list)
    token_answer: tuple[int, Any] = (200, TOKEN)
    asked: list[Asked] = field(default_factory=list)

    def then(self, status: int, body: Any) -> "Script":
        self.answers.append((status, body))
        return self

    def api_calls(self) -> list[Asked]:
        return [a for a in self.asked if a.path != "/v1/oauth2/token"]


@pytest.fixture
def scripted() -> Iterator[Script]:
    """A PayPal that answers token requests with `token_answer`, others with the next answer."""
    script = Script(url="")

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            try:
                body: Any = json.loads(raw) if raw else None
            except ValueError:
                body = raw.decode()
            script.asked.append(Asked(self.command, self.path, dict(self.headers.items()), body))
            if self.path == "/v1/oauth2/token":
                status, answer = script.token_answer
            else:
                status, answer = script.answers.pop(0)
            data = answer.encode() if isinstance(answer, str) else json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            self._answer()

        def do_POST(self) -> None:
            self._answer()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    script.url = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield script
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.fixture
def adapter(scripted: Script) -> PayPalAdapter:
    return PayPalAdapter(
        code="paypal", timeout_seconds=TIMEOUT, credentials=credentials("paypal"),
        api_base=scripted.url,
    )  # fmt: skip


def money(value: str, currency: str = "BRL") -> dict[str, str]:
    return {"currency_code": currency, "value": value}


def order(status: str, *, capture: dict[str, Any] | None = None, **unit: Any) -> dict[str, Any]:
    purchase_unit: dict[str, Any] = {"amount": money("10.50"), "custom_id": "pw-1", **unit}
    if capture is not None:
        purchase_unit["payments"] = {"captures": [capture]}
    return {
        "id": "5O190127TN364715T",
        "status": status,
        "purchase_units": [purchase_unit],
        "links": [
            {"href": "https://api-m.paypal.com/v2/checkout/orders/5O1", "rel": "self"},
            {"href": APPROVE, "rel": "payer-action"},
        ],
    }


def capture(status: str, **extra: Any) -> dict[str, Any]:
    return {"id": CAPTURE_ID, "status": status, "amount": money("10.50"), **extra}


def redirect(url: str = APPROVE, return_url: str = "") -> dict[str, Any]:
    return {"type": "redirect_to_url", "redirect_to_url": {"url": url, "return_url": return_url}}


def result(status: ChargeStatus, raw: str, **extra: Any) -> ChargeResult:
    fields: dict[str, Any] = {"amount": 1050, "currency": "BRL", **extra}
    return ChargeResult(status=status, reference="5O190127TN364715T", raw_status=raw, **fields)


# What a charge sends.


def test_a_charge_sends_the_order_paypal_documents(
    adapter: PayPalAdapter, scripted: Script
) -> None:
    scripted.then(201, order("PAYER_ACTION_REQUIRED"))
    request = charge_request(
        method="paypal", amount=123456, key="idem-1", description="Top-up",
        return_url=RETURN_URL, cancel_url="https://wallet.example/cancel",
    )  # fmt: skip

    answered = adapter.charge(request)

    [created] = scripted.api_calls()
    assert (created.method, created.path) == ("POST", "/v2/checkout/orders")
    assert created.body == {
        "intent": "CAPTURE",
        "purchase_units": [
            {
                "amount": {"currency_code": "BRL", "value": "1234.56"},
                "custom_id": "pw-1",
                "invoice_id": "pw-1",
                "description": "Top-up",
            }
        ],
        "payment_source": {
            "paypal": {
                "experience_context": {
                    "return_url": RETURN_URL,
                    "cancel_url": "https://wallet.example/cancel",
                    "user_action": "PAY_NOW",
                }
            }
        },
    }
    headers = {name.lower(): value for name, value in created.headers.items()}
    assert headers["paypal-request-id"] == "idem-1"
    assert headers["prefer"] == "return=representation"
    assert headers["authorization"] == "Bearer A21AAtoken"
    assert answered == result(
        ChargeStatus.REQUIRES_ACTION,
        "PAYER_ACTION_REQUIRED",
        next_action=redirect(return_url=RETURN_URL),
    )


def test_no_cancel_url_is_made_up(adapter: PayPalAdapter, scripted: Script) -> None:
    scripted.then(201, order("PAYER_ACTION_REQUIRED"))

    adapter.charge(charge_request(method="paypal", return_url=RETURN_URL))

    context = scripted.api_calls()[0].body["payment_source"]["paypal"]["experience_context"]
    assert "cancel_url" not in context


@pytest.mark.parametrize(
    ("currency", "amount", "value"), [("JPY", 1050, "1050"), ("USD", 5, "0.05")]
)
def test_amounts_in_the_currency_s_own_decimals(
    adapter: PayPalAdapter, scripted: Script, currency: str, amount: int, value: str
) -> None:
    scripted.then(201, order("CREATED", amount=money(value, currency)))

    answered = adapter.charge(
        charge_request(method="paypal", amount=amount, currency=currency, return_url=RETURN_URL)
    )

    assert scripted.api_calls()[0].body["purchase_units"][0]["amount"]["value"] == value
    assert (answered.amount, answered.currency) == (amount, currency)


# What an order read back says.


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (order("CREATED"), result(ChargeStatus.REQUIRES_ACTION, "CREATED", next_action=redirect())),
        (order("APPROVED"), result(ChargeStatus.PENDING, "APPROVED")),
        (order("SAVED"), result(ChargeStatus.PENDING, "SAVED")),
        (order("VOIDED"), result(ChargeStatus.CANCELED, "VOIDED")),
        (order("COMPLETED"), result(ChargeStatus.PENDING, "COMPLETED/")),
        (order("COMPLETED", capture=capture("COMPLETED")),
         result(ChargeStatus.SUCCEEDED, "COMPLETED/COMPLETED", capture_reference=CAPTURE_ID)),
        (order("COMPLETED", capture=capture("PARTIALLY_REFUNDED")),
         result(ChargeStatus.SUCCEEDED, "COMPLETED/PARTIALLY_REFUNDED",
                capture_reference=CAPTURE_ID)),
        (order("COMPLETED", capture=capture("PENDING")),
         result(ChargeStatus.PENDING, "COMPLETED/PENDING", capture_reference=CAPTURE_ID)),
        (order("COMPLETED", capture=capture("DECLINED", status_details={"reason": "DECLINED"})),
         result(ChargeStatus.FAILED, "COMPLETED/DECLINED", capture_reference=CAPTURE_ID,
                failure_code="DECLINED")),
        (order("COMPLETED", capture=capture("FAILED")),
         result(ChargeStatus.FAILED, "COMPLETED/FAILED", capture_reference=CAPTURE_ID)),
        (order("COMPLETED", capture=capture("REFUNDED")),
         result(ChargeStatus.REFUNDED, "COMPLETED/REFUNDED", capture_reference=CAPTURE_ID)),
    ],
    ids=["created", "approved", "saved", "voided", "completed-no-capture", "captured",
         "partly-refunded", "capture-pending", "capture-declined", "capture-failed", "refunded"],
)  # fmt: skip
def test_retrieve_maps_each_order_status(
    adapter: PayPalAdapter, scripted: Script, answer: dict[str, Any], expected: ChargeResult
) -> None:
    scripted.then(200, answer)

    assert adapter.retrieve("5O190127TN364715T") == expected
    assert scripted.api_calls()[0].path == "/v2/checkout/orders/5O190127TN364715T"


def test_a_success_that_cannot_be_read_is_ambiguous(
    adapter: PayPalAdapter, scripted: Script
) -> None:
    scripted.then(201, "<html>not json</html>")

    with pytest.raises(Ambiguous):
        adapter.charge(charge_request(method="paypal", return_url=RETURN_URL))


# Captures.


def test_a_capture_sends_its_key_and_reads_the_capture(
    adapter: PayPalAdapter, scripted: Script
) -> None:
    scripted.then(201, order("COMPLETED", capture=capture("COMPLETED")))

    done = adapter.capture("5O190127TN364715T", "cap-key")

    [asked] = scripted.api_calls()
    headers = {name.lower(): value for name, value in asked.headers.items()}
    assert (asked.method, asked.path) == ("POST", "/v2/checkout/orders/5O190127TN364715T/capture")
    assert (headers["paypal-request-id"], headers["prefer"]) == ("cap-key", "return=representation")
    assert done.capture_reference == "3C679366HH908993F"


def test_a_declined_instrument_sends_the_payer_to_paypal_s_redirect_link(
    adapter: PayPalAdapter, scripted: Script
) -> None:
    """At PayPal the order stays APPROVED: the link to approve again is in the error."""
    again = "https://www.paypal.com/checkoutnow?token=5O190127TN364715T&retry=1"
    scripted.then(422, {
        "name": "UNPROCESSABLE_ENTITY",
        "details": [{"issue": "INSTRUMENT_DECLINED", "description": "declined"}],
        "links": [{"href": again, "rel": "redirect", "method": "GET"}],
    }).then(200, order("APPROVED"))  # fmt: skip

    declined = adapter.capture("5O190127TN364715T", "cap-key")

    assert declined == result(
        ChargeStatus.REQUIRES_ACTION, "APPROVED", next_action=redirect(again),
        failure_code="INSTRUMENT_DECLINED", failure_message="declined",
    )  # fmt: skip


def test_a_declined_instrument_without_a_link_sends_the_payer_to_the_order_s_page(
    adapter: PayPalAdapter, scripted: Script
) -> None:
    scripted.then(422, {
        "name": "UNPROCESSABLE_ENTITY",
        "details": [{"issue": "INSTRUMENT_DECLINED", "description": "declined"}],
    }).then(200, order("PAYER_ACTION_REQUIRED"))  # fmt: skip

    declined = adapter.capture("5O190127TN364715T", "cap-key")

    assert declined == result(
        ChargeStatus.REQUIRES_ACTION, "PAYER_ACTION_REQUIRED", next_action=redirect(APPROVE),
        failure_code="INSTRUMENT_DECLINED", failure_message="declined",
    )  # fmt: skip


def test_a_declined_instrument_with_no_page_anywhere_names_none(
    adapter: PayPalAdapter, scripted: Script
) -> None:
    """No link in the error nor in the order: no page to send the payer to, not an empty one."""
    unlinked = {**order("PAYER_ACTION_REQUIRED"), "links": []}
    scripted.then(422, {
        "name": "UNPROCESSABLE_ENTITY", "details": [{"issue": "INSTRUMENT_DECLINED"}],
    }).then(200, unlinked)  # fmt: skip

    declined = adapter.capture("5O190127TN364715T", "cap-key")

    assert (declined.status, declined.next_action) == (ChargeStatus.REQUIRES_ACTION, None)
    assert declined.failure_code == "INSTRUMENT_DECLINED"


@pytest.mark.parametrize("issue", ["ORDER_NOT_APPROVED", "ORDER_ALREADY_CAPTURED"])
def test_a_capture_refused_for_the_order_s_state_answers_the_order(
    adapter: PayPalAdapter, scripted: Script, issue: str
) -> None:
    read = order("COMPLETED", capture=capture("COMPLETED"))
    scripted.then(422, {"name": "UNPROCESSABLE_ENTITY", "details": [{"issue": issue}]})
    scripted.then(200, read)

    answered = adapter.capture("5O190127TN364715T", "cap-key")

    assert answered.status is ChargeStatus.SUCCEEDED
    assert [a.method for a in scripted.api_calls()] == ["POST", "GET"]


def test_another_capture_refusal_is_declined(adapter: PayPalAdapter, scripted: Script) -> None:
    scripted.then(422, {"name": "UNPROCESSABLE_ENTITY", "details": [{"issue": "PAYEE_BLOCKED"}]})

    with pytest.raises(Declined) as raised:
        adapter.capture("5O190127TN364715T", "cap-key")

    assert (raised.value.code, raised.value.http_status) == ("PAYEE_BLOCKED", 422)


# Refunds.


def test_a_refund_states_its_amount_and_reads_a_pending_one_back(
    adapter: PayPalAdapter, scripted: Script
) -> None:
    scripted.then(200, order("COMPLETED", capture=capture("COMPLETED")))
    scripted.then(201, {"id": "1JU08902781691411", "status": "PENDING", "amount": money("3.00")})
    scripted.then(200, {"id": "1JU08902781691411", "status": "COMPLETED", "amount": money("3.00")})

    refund = adapter.refund(reference="5O190127TN364715T", amount=300, idempotency_key="rf-1")

    read, created, again = scripted.api_calls()
    assert read.path == "/v2/checkout/orders/5O190127TN364715T"
    assert created.path == "/v2/payments/captures/3C679366HH908993F/refund"
    assert created.body == {"amount": {"currency_code": "BRL", "value": "3.00"}}
    assert {k.lower(): v for k, v in created.headers.items()}["paypal-request-id"] == "rf-1"
    assert again.path == "/v2/payments/refunds/1JU08902781691411"
    assert refund == RefundResult(RefundStatus.SUCCEEDED, "1JU08902781691411", 300, "COMPLETED")


@pytest.mark.parametrize(
    ("raw", "status"),
    [("COMPLETED", RefundStatus.SUCCEEDED), ("FAILED", RefundStatus.FAILED),
     ("CANCELLED", RefundStatus.FAILED), ("SOMETHING_NEW", RefundStatus.PENDING)],
)  # fmt: skip
def test_refund_statuses(
    adapter: PayPalAdapter, scripted: Script, raw: str, status: RefundStatus
) -> None:
    scripted.then(200, order("COMPLETED", capture=capture("COMPLETED")))
    scripted.then(201, {"id": "R1", "status": raw, "amount": money("10.50")})

    refund = adapter.refund(reference="5O190127TN364715T", amount=1050, idempotency_key="rf")

    assert refund == RefundResult(status, "R1", 1050, raw)


# Errors by status.


@pytest.mark.parametrize(
    ("status", "body", "expected", "code"),
    [
        (400, {"name": "INVALID_REQUEST", "details": [{"issue": "MISSING_REQUIRED_PARAMETER"}]},
         Declined, "MISSING_REQUIRED_PARAMETER"),
        (401, {"name": "AUTHENTICATION_FAILURE"}, Misconfigured, "AUTHENTICATION_FAILURE"),
        (403, {"name": "NOT_AUTHORIZED"}, Misconfigured, "NOT_AUTHORIZED"),
        (404, {"name": "RESOURCE_NOT_FOUND"}, ChargeNotFound, "RESOURCE_NOT_FOUND"),
        (422, {"name": "UNPROCESSABLE_ENTITY"}, Declined, "UNPROCESSABLE_ENTITY"),
        (429, {"name": "RATE_LIMIT_REACHED"}, Retryable, "RATE_LIMIT_REACHED"),
        (500, {"name": "INTERNAL_SERVER_ERROR"}, Ambiguous, "INTERNAL_SERVER_ERROR"),
        (502, {}, Ambiguous, "502"),
        (503, {"name": "SERVICE_UNAVAILABLE"}, Retryable, "SERVICE_UNAVAILABLE"),
        (504, {}, Ambiguous, "504"),
    ],
)  # fmt: skip
def test_error_for(
    status: int, body: dict[str, Any], expected: type[GatewayError], code: str
) -> None:
    error = _error_for(status, body, gateway="paypal")

    assert (type(error), error.code, error.http_status) == (expected, code, status)


def test_an_error_page_that_is_not_json_is_read_by_its_status(
    adapter: PayPalAdapter, scripted: Script
) -> None:
    scripted.then(502, "<html>Bad Gateway</html>")

    with pytest.raises(Ambiguous) as raised:
        adapter.retrieve("5O190127TN364715T")

    assert raised.value.http_status == 502


@pytest.mark.parametrize(
    ("status", "expected"), [(401, Misconfigured), (400, Misconfigured), (503, Retryable)]
)
def test_a_token_refused_or_unavailable(
    adapter: PayPalAdapter, scripted: Script, status: int, expected: type[GatewayError]
) -> None:
    refusal = {"error": "invalid_client", "error_description": "Client Authentication failed"}
    scripted.token_answer = (status, refusal)

    with pytest.raises(expected) as raised:
        adapter.retrieve("5O190127TN364715T")

    assert raised.value.http_status == status
    assert scripted.api_calls() == []


# Callbacks.


def _transmission(**overrides: str) -> dict[str, str]:
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    headers = {
        "PAYPAL-TRANSMISSION-ID": "69cd13f0-d67a-11e5-baa3-778b53f4ae55",
        "PAYPAL-TRANSMISSION-TIME": now,
        "PAYPAL-TRANSMISSION-SIG": "lmI95Jx3Y9nhR5SJWlHVIWpg4AgFk7n9bCHSRxbrd8A9zrhdu2r==",
        "PAYPAL-CERT-URL": "https://api.paypal.com/v1/notifications/certs/CERT-360caa42",
        "PAYPAL-AUTH-ALGO": "SHA256withRSA",
    }
    headers.update(overrides)
    return headers


def _event(event_type: str, resource: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": "WH-2WR32451HC0233532-67976317FL4543714",
        "event_version": "1.0",
        "create_time": "2024-05-01T12:00:00Z",
        "resource_type": "capture",
        "event_type": event_type,
        "resource": resource,
    }


def test_a_callback_is_verified_by_paypal_with_what_it_sent(
    adapter: PayPalAdapter, scripted: Script
) -> None:
    event = _event("PAYMENT.CAPTURE.COMPLETED", capture(
        "COMPLETED", custom_id="pw-1",
        supplementary_data={"related_ids": {"order_id": "5O190127TN364715T"}},
    ))  # fmt: skip
    scripted.then(200, {"verification_status": "SUCCESS"})
    headers = _transmission()

    parsed = adapter.parse_callback(headers=headers, query={}, body=json.dumps(event).encode())

    [verify] = scripted.api_calls()
    assert (verify.method, verify.path) == ("POST", "/v1/notifications/verify-webhook-signature")
    assert {k.lower(): v for k, v in verify.headers.items()}["authorization"] == "Bearer A21AAtoken"
    assert verify.body == {
        "transmission_id": headers["PAYPAL-TRANSMISSION-ID"],
        "transmission_time": headers["PAYPAL-TRANSMISSION-TIME"],
        "transmission_sig": headers["PAYPAL-TRANSMISSION-SIG"],
        "cert_url": headers["PAYPAL-CERT-URL"],
        "auth_algo": "SHA256withRSA",
        "webhook_id": WEBHOOK_ID,
        "webhook_event": event,
    }
    assert parsed == CallbackEvent(
        gateway="paypal", event_id="WH-2WR32451HC0233532-67976317FL4543714",
        kind=CallbackKind.PAYMENT_SUCCEEDED, reference="5O190127TN364715T", payment_id="pw-1",
        amount=1050, raw=event,
    )  # fmt: skip


def test_a_refund_callback_with_its_order_id_needs_no_lookup(
    adapter: PayPalAdapter, scripted: Script
) -> None:
    refund = {"id": "R1", "status": "COMPLETED", "amount": money("3.00"),
              "supplementary_data": {"related_ids": {"order_id": "5O190127TN364715T"}}}  # fmt: skip
    scripted.then(200, {"verification_status": "SUCCESS"})

    parsed = adapter.parse_callback(
        headers=_transmission(), query={},
        body=json.dumps(_event("PAYMENT.CAPTURE.REFUNDED", refund)).encode(),
    )  # fmt: skip

    assert (parsed.kind, parsed.reference, parsed.amount) == (
        CallbackKind.REFUND_SUCCEEDED, "5O190127TN364715T", 300,
    )  # fmt: skip
    assert len(scripted.api_calls()) == 1  # the verification only


def test_an_unknown_event_type_is_other(adapter: PayPalAdapter, scripted: Script) -> None:
    scripted.then(200, {"verification_status": "SUCCESS"})
    body = json.dumps(_event("PAYMENT.CAPTURE.REVERSED", capture("REVERSED"))).encode()

    parsed = adapter.parse_callback(headers=_transmission(), query={}, body=body)

    assert parsed.kind is CallbackKind.OTHER


@pytest.mark.parametrize(
    ("answer", "body"),
    [
        ({"verification_status": "FAILURE"}, None),
        ({}, None),
        ({"verification_status": "SUCCESS"}, {"id": "WH-1", "event_type": "X"}),
        ({"verification_status": "SUCCESS"}, {"id": "WH-1", "resource": "not an object"}),
    ],
    ids=["failure", "no verdict", "no resource", "resource not an object"],
)
def test_callbacks_paypal_does_not_vouch_for_are_invalid(
    adapter: PayPalAdapter, scripted: Script, answer: dict[str, Any], body: Any
) -> None:
    scripted.then(200, answer)
    event = body if body is not None else _event("PAYMENT.CAPTURE.COMPLETED", capture("COMPLETED"))

    with pytest.raises(InvalidCallback):
        adapter.parse_callback(headers=_transmission(), query={}, body=json.dumps(event).encode())


@pytest.mark.parametrize(
    "headers",
    [
        _transmission(**{"PAYPAL-TRANSMISSION-TIME": "yesterday"}),
        _transmission(**{"PAYPAL-TRANSMISSION-TIME": "2024-05-01T12:00:00"}),
        _transmission(**{"PAYPAL-AUTH-ALGO": ""}),
    ],
    ids=["unreadable time", "time without zone", "empty header"],
)
def test_unreadable_transmissions_are_refused_before_asking_paypal(
    adapter: PayPalAdapter, scripted: Script, headers: dict[str, str]
) -> None:
    body = json.dumps(_event("PAYMENT.CAPTURE.COMPLETED", capture("COMPLETED"))).encode()

    with pytest.raises(InvalidCallback):
        adapter.parse_callback(headers=headers, query={}, body=body)

    assert scripted.asked == []


@pytest.mark.parametrize("body", [b"", b"[]", b"\xff\xfe", b"null"])
def test_malformed_bodies_are_invalid(
    adapter: PayPalAdapter, scripted: Script, body: bytes
) -> None:
    with pytest.raises(InvalidCallback):
        adapter.parse_callback(headers=_transmission(), query={}, body=body)

    assert scripted.asked == []
