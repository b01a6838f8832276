"""What StripeAdapter sends to Stripe and reads from its answers, field by field.

Stripe's answers here are written out whole and served by a scripted local server
(`scripted`), so the real SDK parses them and builds its own errors, as it does from
Stripe; callbacks are signed bodies; the errors no HTTP answer carries (no status, a
TLS failure) are the SDK's error classes built directly. No simulator, no database.
Every result is compared whole: a field read from the wrong place fails.
"""

import hashlib
import hmac
import json
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

import pytest
import stripe
from urllib3.exceptions import ConnectTimeoutError

from gateways.adapters.stripe import StripeAdapter, _map_error
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
from gateways.transport import CallTrace
from tests.gateways.adapters.conftest import TIMEOUT, charge_request, credentials

WEBHOOK_SECRET = SANDBOX_VALUES["stripe"]["WEBHOOK_SECRET"]


@pytest.fixture(autouse=True)
def _fresh_simulator() -> None:
    """The package's simulator is not used here (this replaces its reset)."""


# A scripted Stripe: each request gets the next answer, and is recorded as it arrived.


@dataclass
class Asked:
    method: str
    path: str
    headers: dict[str, str]  # names lower-cased
    form: dict[str, str]


@dataclass
class Script:
    url: str = ""
    answers: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    asked: list[Asked] = field(default_factory=list)

    def answer(self, status: int, body: dict[str, Any]) -> None:
        self.answers.append((status, body))

    def only(self) -> Asked:
        [asked] = self.asked
        return asked


@pytest.fixture(scope="module")
def _script_server() -> Iterator[Script]:
    script = Script()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.do_POST(method="GET")

        def do_POST(self, method: str = "POST") -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            script.asked.append(
                Asked(
                    method=method,
                    path=self.path,
                    headers={name.lower(): value for name, value in self.headers.items()},
                    form=dict(parse_qsl(body.decode(), keep_blank_values=True)),
                )
            )
            status, answer = script.answers.pop(0)
            payload = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Request-Id", "req_scripted")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

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
def scripted(_script_server: Script) -> Script:
    _script_server.answers.clear()
    _script_server.asked.clear()
    return _script_server


@pytest.fixture
def adapter(scripted: Script) -> StripeAdapter:
    return StripeAdapter(
        code="stripe",
        timeout_seconds=TIMEOUT,
        credentials=credentials("stripe"),
        api_base=scripted.url,
    )


def card_request(**extra: Any) -> Any:
    return charge_request(method="card", card_token="pm_card_visa", key="card-key-1", **extra)


def intent(**fields: Any) -> dict[str, Any]:
    """A PaymentIntent as Stripe renders it, with `fields` over a succeeded one."""
    return {
        "id": "pi_1",
        "object": "payment_intent",
        "amount": 1050,
        "amount_received": 1050,
        "currency": "brl",
        "last_payment_error": None,
        "metadata": {"payment_id": "pw-1"},
        "next_action": None,
        "payment_method": {
            "id": "pm_1",
            "object": "payment_method",
            "card": {"brand": "visa", "last4": "4242", "exp_month": 12, "exp_year": 2034},
            "type": "card",
        },
        "status": "succeeded",
        **fields,
    }


# What a charge asks for.


def test_a_charge_asks_for_a_confirmed_card_payment_intent(
    adapter: StripeAdapter, scripted: Script
) -> None:
    scripted.answer(200, intent())

    adapter.charge(card_request(description="Wallet top-up", return_url="https://app/back"))

    asked = scripted.only()
    assert (asked.method, asked.path) == ("POST", "/v1/payment_intents")
    assert asked.headers["idempotency-key"] == "card-key-1"
    assert asked.form == {
        "amount": "1050",
        "currency": "brl",
        "payment_method": "pm_card_visa",
        "payment_method_types[0]": "card",
        "confirm": "true",
        "metadata[payment_id]": "pw-1",
        "expand[0]": "payment_method",
        "description": "Wallet top-up",
        "return_url": "https://app/back",
    }


def test_a_charge_without_description_or_return_url_sends_neither(
    adapter: StripeAdapter, scripted: Script
) -> None:
    scripted.answer(200, intent())

    adapter.charge(card_request(currency="usd"))

    assert scripted.only().form == {
        "amount": "1050",
        "currency": "usd",
        "payment_method": "pm_card_visa",
        "payment_method_types[0]": "card",
        "confirm": "true",
        "metadata[payment_id]": "pw-1",
        "expand[0]": "payment_method",
    }


def test_a_method_other_than_card_is_declined_without_asking(
    adapter: StripeAdapter, scripted: Script
) -> None:
    with pytest.raises(GatewayError) as raised:
        adapter.charge(charge_request(method="pix"))

    assert _fields(raised.value) == (
        Declined,
        "stripe: only cards are configured",
        "method_not_supported",
        "",
        None,
    )
    assert scripted.asked == []


# What a PaymentIntent reads as.

CARD_DECLINED = {
    "type": "card_error",
    "code": "card_declined",
    "decline_code": "insufficient_funds",
    "message": "Your card has insufficient funds.",
}
NOT_AUTHENTICATED = {
    "type": "card_error",
    "code": "payment_intent_authentication_failure",
    "message": "We are unable to authenticate your payment method.",
}
ACTION = {"type": "redirect_to_url", "redirect_to_url": {"url": "https://3ds/pi_1"}}
NO_CARD = {"card_brand": "", "card_last4": ""}


def unpaid(status: str, **fields: Any) -> dict[str, Any]:
    return intent(status=status, amount_received=0, **fields)


def read(status: ChargeStatus, raw_status: str, **fields: Any) -> ChargeResult:
    """What the intent reads as: `fields` over 10.50 BRL on the Visa ending 4242."""
    defaults = {"amount": 1050, "currency": "BRL", "card_brand": "visa", "card_last4": "4242"}
    return ChargeResult(status, "pi_1", raw_status, **{**defaults, **fields})


SUCCEEDED_RAW = (ChargeStatus.SUCCEEDED, "succeeded")
SUCCEEDED = read(*SUCCEEDED_RAW)
FAILED = (ChargeStatus.FAILED, "requires_payment_method")
INTENTS: dict[str, tuple[dict[str, Any], ChargeResult]] = {
    "succeeded": (intent(), SUCCEEDED),
    "received less than asked": (
        intent(amount_received=1000),
        read(ChargeStatus.SUCCEEDED, "succeeded", amount=1000),
    ),
    "nothing received yet": (unpaid("processing"), read(ChargeStatus.PENDING, "processing")),
    "no amount received": (
        {k: v for k, v in intent().items() if k != "amount_received"},
        SUCCEEDED,
    ),
    "requires action": (
        unpaid("requires_action", next_action=ACTION, payment_method="pm_1"),
        read(ChargeStatus.REQUIRES_ACTION, "requires_action", next_action=ACTION, **NO_CARD),
    ),
    "an empty next action": (intent(next_action={}), SUCCEEDED),
    "declined with a decline code": (
        unpaid("requires_payment_method", last_payment_error=CARD_DECLINED),
        read(*FAILED, failure_code="insufficient_funds", failure_message=CARD_DECLINED["message"]),
    ),
    "declined with only a code": (
        unpaid("requires_payment_method", last_payment_error=NOT_AUTHENTICATED),
        read(
            *FAILED,
            failure_code="payment_intent_authentication_failure",
            failure_message=NOT_AUTHENTICATED["message"],
        ),
    ),
    "declined with only a message": (
        unpaid("requires_payment_method", last_payment_error={"message": "It went wrong."}),
        read(*FAILED, failure_message="It went wrong."),
    ),
    "declined with an empty error": (
        unpaid("requires_payment_method", last_payment_error={}, payment_method=None),
        read(*FAILED, **NO_CARD),
    ),
    "requires confirmation": (
        unpaid("requires_confirmation"),
        read(ChargeStatus.PENDING, "requires_confirmation"),
    ),
    "requires capture": (
        unpaid("requires_capture"),
        read(ChargeStatus.PENDING, "requires_capture"),
    ),
    "canceled": (unpaid("canceled"), read(ChargeStatus.CANCELED, "canceled")),
    "an unknown status": (unpaid("on_hold"), read(ChargeStatus.PENDING, "on_hold")),
    "a bare payment method id": (intent(payment_method="pm_1"), read(*SUCCEEDED_RAW, **NO_CARD)),
    "a payment method without a card": (
        intent(payment_method={"id": "pm_1", "object": "payment_method", "card": None}),
        read(*SUCCEEDED_RAW, **NO_CARD),
    ),
    "no currency": (intent(currency=None), read(*SUCCEEDED_RAW, currency="")),
}


@pytest.mark.parametrize(("answer", "expected"), INTENTS.values(), ids=INTENTS.keys())
def test_a_payment_intent_reads_as(
    adapter: StripeAdapter, scripted: Script, answer: dict[str, Any], expected: ChargeResult
) -> None:
    scripted.answer(200, answer)

    assert adapter.charge(card_request()) == expected


# What a refund asks for and reads as.

REFUNDS: dict[str, tuple[str | None, RefundStatus]] = {
    "succeeded": ("succeeded", RefundStatus.SUCCEEDED),
    "pending": ("pending", RefundStatus.PENDING),
    "requires_action": ("requires_action", RefundStatus.PENDING),
    "failed": ("failed", RefundStatus.FAILED),
    "canceled": ("canceled", RefundStatus.FAILED),
    "unknown": ("in_review_somewhere", RefundStatus.PENDING),
    "no status": (None, RefundStatus.PENDING),
}


@pytest.mark.parametrize(("raw", "status"), REFUNDS.values(), ids=REFUNDS.keys())
def test_a_refund_reads_as(
    adapter: StripeAdapter, scripted: Script, raw: str | None, status: RefundStatus
) -> None:
    answer = {"id": "re_1", "object": "refund", "amount": 400, "status": raw}
    scripted.answer(200, answer)
    # Not final yet: read back by its id (a create asked again replays its first answer).
    reads_back = raw not in ("succeeded", "failed", "canceled")
    if reads_back:
        scripted.answer(200, answer)  # still so when read back

    refund = adapter.refund(reference="pi_1", amount=400, idempotency_key="rf-1")

    assert refund == RefundResult(status=status, reference="re_1", amount=400, raw_status=raw or "")
    asked, *reads = scripted.asked
    assert (asked.method, asked.path) == ("POST", "/v1/refunds")
    assert asked.headers["idempotency-key"] == "rf-1"
    assert asked.form == {"payment_intent": "pi_1", "amount": "400"}
    assert [(read.method, read.path) for read in reads] == (
        [("GET", "/v1/refunds/re_1")] if reads_back else []
    )


# What a callback reads as.


def event_body(event_type: str, obj: dict[str, Any]) -> bytes:
    return json.dumps(
        {
            "id": "evt_1",
            "object": "event",
            "api_version": "2026-10-28.endive",
            "created": 1_700_000_000,
            "type": event_type,
            "data": {"object": obj},
        }
    ).encode()


def signed(body: bytes) -> dict[str, str]:
    at = int(time.time())
    digest = hmac.new(WEBHOOK_SECRET.encode(), f"{at}.".encode() + body, hashlib.sha256)
    return {"Stripe-Signature": f"t={at},v1={digest.hexdigest()}"}


def parsed(adapter: StripeAdapter, body: bytes) -> CallbackEvent:
    return adapter.parse_callback(headers=signed(body), query={}, body=body)


PAID_INTENT = {
    "id": "pi_1",
    "object": "payment_intent",
    "amount": 1050,
    "currency": "brl",
    "metadata": {"payment_id": "pw-1"},
    "status": "succeeded",
}
KINDS = {
    "payment_intent.succeeded": CallbackKind.PAYMENT_SUCCEEDED,
    "payment_intent.payment_failed": CallbackKind.PAYMENT_FAILED,
    "payment_intent.canceled": CallbackKind.PAYMENT_CANCELED,
    "payment_intent.processing": CallbackKind.PAYMENT_PENDING,
    "payment_intent.requires_action": CallbackKind.PAYMENT_PENDING,
    "charge.refunded": CallbackKind.REFUND_SUCCEEDED,
    "payment_intent.created": CallbackKind.OTHER,
    "customer.created": CallbackKind.OTHER,
}


@pytest.mark.parametrize(("event_type", "kind"), KINDS.items(), ids=KINDS.keys())
def test_an_event_reads_as_its_kind(
    adapter: StripeAdapter, event_type: str, kind: CallbackKind
) -> None:
    body = event_body(event_type, PAID_INTENT)

    assert parsed(adapter, body) == CallbackEvent(
        gateway="stripe",
        event_id="evt_1",
        kind=kind,
        reference="pi_1",
        payment_id="pw-1",
        amount=1050,
        raw=json.loads(body),
    )


REFUNDED_CHARGE = {
    "id": "ch_1",
    "object": "charge",
    "amount": 1050,
    "amount_refunded": 1050,
    "payment_intent": "pi_1",
    "metadata": {"payment_id": "pw-1"},
}
BARE_INTENT = {"id": "pi_1", "object": "payment_intent"}
# The event's object, and what the event reads as: (reference, payment_id, amount).
EVENT_OBJECTS: dict[str, tuple[dict[str, Any], tuple[str, str, int | None]]] = {
    "a charge: its payment intent": (REFUNDED_CHARGE, ("pi_1", "pw-1", 1050)),
    "a charge without a payment intent: its own id": (
        {**REFUNDED_CHARGE, "payment_intent": None},
        ("ch_1", "pw-1", 1050),
    ),
    "no metadata": ({**BARE_INTENT, "amount": 1050}, ("pi_1", "", 1050)),
    "null metadata": ({**PAID_INTENT, "metadata": None}, ("pi_1", "", 1050)),
    "no payment id": ({**PAID_INTENT, "metadata": {"order": "7"}}, ("pi_1", "", 1050)),
    "an amount in a string": ({**PAID_INTENT, "amount": "1050"}, ("pi_1", "pw-1", None)),
    "an amount with a fraction": ({**PAID_INTENT, "amount": 10.5}, ("pi_1", "pw-1", None)),
    "no amount": ({**BARE_INTENT, "metadata": {"payment_id": "pw-1"}}, ("pi_1", "pw-1", None)),
    "no id at all": ({"object": "balance", "available": []}, ("", "", None)),
}


@pytest.mark.parametrize(("obj", "expected"), EVENT_OBJECTS.values(), ids=EVENT_OBJECTS.keys())
def test_an_events_object_gives_the_reference_payment_and_amount(
    adapter: StripeAdapter, obj: dict[str, Any], expected: tuple[str, str, int | None]
) -> None:
    body = event_body("charge.refunded", obj)
    reference, payment_id, amount = expected

    assert parsed(adapter, body) == CallbackEvent(
        gateway="stripe",
        event_id="evt_1",
        kind=CallbackKind.REFUND_SUCCEEDED,
        reference=reference,
        payment_id=payment_id,
        amount=amount,
        raw=json.loads(body),
    )


# The refusal's message is the answer's to the sender and the rejected callback's record:
# the SDK's reason when it refused the body, else that it is not an event.
NOT_AN_EVENT = "stripe: the signed body is not an event"
REFUSED_CALLBACKS: dict[str, tuple[dict[str, str] | None, bytes, str | None]] = {
    "no signature": ({}, event_body("payment_intent.succeeded", PAID_INTENT), None),
    "a garbled signature": ({"Stripe-Signature": "garbage"}, b"{}", None),
    "signed, not JSON": (None, b"not json", None),
    "signed, a list": (None, b"[]", NOT_AN_EVENT),
    "signed, an empty object": (None, b"{}", NOT_AN_EVENT),
}


@pytest.mark.parametrize(
    ("headers", "body", "message"), REFUSED_CALLBACKS.values(), ids=REFUSED_CALLBACKS.keys()
)
def test_a_refused_callback_says_why(
    adapter: StripeAdapter, headers: dict[str, str] | None, body: bytes, message: str | None
) -> None:
    with pytest.raises(InvalidCallback) as raised:
        adapter.parse_callback(
            headers=signed(body) if headers is None else headers, query={}, body=body
        )

    reason = raised.value.__cause__
    assert reason is not None
    assert str(raised.value) == (message or f"stripe: {reason}")
    assert str(reason) not in ("", "None")


# What an error reads as: (class, message, code, gateway_message, http_status).

Read = tuple[type[GatewayError], str, str, str, int | None]


def _fields(exc: GatewayError) -> Read:
    return type(exc), exc.message, exc.code, exc.gateway_message, exc.http_status


def _error(kind: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"error": {"type": kind, "message": message, **extra}}


DECLINED = "stripe: the card was declined"
REFUSED = "stripe: the request was refused"
CREDENTIALS = "stripe: credentials refused"
UNKNOWN = "stripe: HTTP {}, the outcome is unknown"
WRONG_KEY = "Invalid API Key provided: sk_test_****"
NO_ACCESS = "The provided key does not have access."
REUSED = "Keys for idempotent requests can only be used with the same parameters."
IN_USE = "Another request with this key is running."
NO_SUCH = "No such payment_intent: 'pi_x'"
OUR_END = "Something went wrong on Stripe's end."
# Stripe's error answers, as the SDK turns them into its errors.
WIRE_ERRORS: dict[str, tuple[int, dict[str, Any], Read]] = {
    "card declined, with a decline code": (
        402,
        {"error": CARD_DECLINED},
        (Declined, DECLINED, "insufficient_funds", CARD_DECLINED["message"], 402),
    ),
    "card declined, only a code": (
        402,
        _error("card_error", "Your card has expired.", code="expired_card", decline_code=None),
        (Declined, DECLINED, "expired_card", "Your card has expired.", 402),
    ),
    "card declined, no code": (
        402,
        _error("card_error", "Your card was declined."),
        (Declined, DECLINED, "card_declined", "Your card was declined.", 402),
    ),
    "wrong key": (
        401,
        _error("invalid_request_error", WRONG_KEY),
        (Misconfigured, CREDENTIALS, "", WRONG_KEY, 401),
    ),
    "restricted key": (
        403,
        _error("invalid_request_error", NO_ACCESS),
        (Misconfigured, CREDENTIALS, "", NO_ACCESS, 403),
    ),
    "rate limited": (
        429,
        _error("invalid_request_error", "Too many requests.", code="rate_limit"),
        (Retryable, "stripe: rate limited", "", "Too many requests.", 429),
    ),
    "key reused with other parameters": (
        400,
        _error("idempotency_error", REUSED),
        (Ambiguous, "stripe: idempotency key reused with other parameters", "", REUSED, 400),
    ),
    "no such payment intent": (
        404,
        _error("invalid_request_error", NO_SUCH, code="resource_missing"),
        (ChargeNotFound, "stripe: no such object", "resource_missing", NO_SUCH, 404),
    ),
    "an invalid parameter": (
        400,
        _error("invalid_request_error", "Invalid integer: x", code="parameter_invalid_integer"),
        (Declined, REFUSED, "parameter_invalid_integer", "Invalid integer: x", 400),
    ),
    # The SDK makes a status it has no class for an APIError, without its code.
    "a 409": (
        409,
        _error("idempotency_error", IN_USE, code="idempotency_key_in_use"),
        (Ambiguous, UNKNOWN.format(409), "", IN_USE, 409),
    ),
    "a 500": (
        500,
        _error("api_error", OUR_END),
        (Ambiguous, UNKNOWN.format(500), "", OUR_END, 500),
    ),
}


@pytest.mark.parametrize(
    ("status", "answer", "expected"), WIRE_ERRORS.values(), ids=WIRE_ERRORS.keys()
)
def test_a_stripe_error_answer_reads_as(
    adapter: StripeAdapter, scripted: Script, status: int, answer: dict[str, Any], expected: Read
) -> None:
    scripted.answer(status, answer)

    with pytest.raises(GatewayError) as raised:
        adapter.charge(card_request())

    assert _fields(raised.value) == expected


def _connection_error(cause: BaseException | None = None) -> stripe.APIConnectionError:
    exc = stripe.APIConnectionError(CONNECTION)
    exc.__cause__ = cause
    return exc


def _untrusted() -> ssl.SSLCertVerificationError:
    exc = ssl.SSLCertVerificationError(1, "[SSL: CERTIFICATE_VERIFY_FAILED] verify failed")
    exc.verify_message = "self-signed certificate"
    return exc


def _key_mismatch() -> ssl.SSLError:
    exc = ssl.SSLError(116, "[X509: KEY_VALUES_MISMATCH] key values mismatch")
    exc.reason = "KEY_VALUES_MISMATCH"
    return exc


CONNECTION = "Unexpected error communicating with Stripe."
NOT_SENT = "stripe: the request was not sent ({})"
WITH_ID = {"request-id": "req_1"}
BAD_OBJECT = "Invalid response object from API."
# Errors no HTTP answer carries, or that the SDK makes otherwise: its classes built directly.
ERRORS: dict[str, tuple[stripe.StripeError, CallTrace | None, Read]] = {
    "an API error without a status": (
        stripe.APIError(BAD_OBJECT, headers=WITH_ID),
        None,
        (Ambiguous, UNKNOWN.format("error"), "", BAD_OBJECT, None),
    ),
    "a 500 of no known class": (
        stripe.StripeError("Server error.", http_status=500),
        None,
        (Ambiguous, UNKNOWN.format(500), "", "Server error.", 500),
    ),
    "another 4xx of no known class": (
        stripe.StripeError("I'm a teapot.", http_status=418, code="teapot"),
        None,
        (Declined, REFUSED, "teapot", "I'm a teapot.", 418),
    ),
    "no status and no known class": (
        stripe.StripeError("Something failed.", headers=WITH_ID),
        None,
        (Ambiguous, "stripe: unexpected failure", "", "Something failed.", None),
    ),
    "no message": (
        stripe.StripeError(None, headers=WITH_ID),
        None,
        (Ambiguous, "stripe: unexpected failure", "", "Request req_1: <empty message>", None),
    ),
    "the idempotency key in use": (
        stripe.IdempotencyError(
            IN_USE, http_status=409, code="idempotency_key_in_use", headers=WITH_ID
        ),
        None,
        (Retryable, "stripe: the idempotency key is in use", "idempotency_key_in_use", IN_USE, 409),
    ),
    "a card error without its error object": (
        stripe.CardError("Your card was declined.", None, None, http_status=402),
        None,
        (Declined, DECLINED, "card_declined", "Your card was declined.", 402),
    ),
    "an untrusted certificate": (
        _connection_error(_untrusted()),
        None,
        (
            Misconfigured,
            "stripe: the server's certificate is not trusted: self-signed certificate",
            "tls_certificate",
            "",
            None,
        ),
    ),
    "a refused client key": (
        _connection_error(_key_mismatch()),
        None,
        (Misconfigured, "stripe: TLS refused: KEY_VALUES_MISMATCH", "tls_certificate", "", None),
    ),
    "a connect timeout": (
        _connection_error(ConnectTimeoutError("timed out")),
        None,
        (Retryable, NOT_SENT.format("ConnectTimeoutError"), "", CONNECTION, None),
    ),
    "a connection failure before sending": (
        _connection_error(),
        CallTrace(request_started=False),
        (Retryable, NOT_SENT.format("APIConnectionError"), "", CONNECTION, None),
    ),
    "a connection failure after sending": (
        _connection_error(),
        CallTrace(request_started=True),
        (
            Ambiguous,
            "stripe: no answer after the request was sent (APIConnectionError)",
            "",
            CONNECTION,
            None,
        ),
    ),
}


@pytest.mark.parametrize(("exc", "trace", "expected"), ERRORS.values(), ids=ERRORS.keys())
def test_a_stripe_error_maps_to(
    exc: stripe.StripeError, trace: CallTrace | None, expected: Read
) -> None:
    assert _fields(_map_error(exc, gateway="stripe", trace=trace)) == expected
