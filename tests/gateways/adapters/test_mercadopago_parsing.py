"""What MercadoPagoAdapter reads from Mercado Pago's answers and errors, field by field.

The answers have the shapes of Mercado Pago's payments and refunds API (as the simulator
and the SDK's documentation give them). They reach the real SDK through a stand-in for
the HTTP session: no simulator, no network, no database. Each answer is read into a
whole ChargeResult, RefundResult, CallbackEvent or error and compared whole, so a
field read from the wrong key, or a default changed, fails.
"""

import hashlib
import hmac
import json
import re
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
import requests

from gateways.adapters import mercadopago as module
from gateways.adapters.mercadopago import MercadoPagoAdapter, _error_for, _notification, _unreadable
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
    PixCharge,
    RefundResult,
    RefundStatus,
    Retryable,
)
from gateways.credentials import SANDBOX_VALUES
from gateways.pix.brcode import BRCodeError, parse
from gateways.simulators._brcode import dynamic_brcode
from tests.gateways.adapters.conftest import charge_request, credentials

API = "http://mercadopago.test"
PAYMENT_ID = 1325032948
WEBHOOK_SECRET = SANDBOX_VALUES["mercadopago"]["WEBHOOK_SECRET"]
BR_CODE = dynamic_brcode(
    location="pix.example.invalid/qr/v2/9d36b84f", amount=1050,
    merchant_name="PAYWAVE SANDBOX", merchant_city="SAO PAULO",
)  # fmt: skip
BR_CODE_WITH_TXID = dynamic_brcode(
    location="pix.example.invalid/qr/v2/9d36b84f", amount=1050,
    merchant_name="PAYWAVE SANDBOX", merchant_city="SAO PAULO", txid="MPQR1325032948",
)  # fmt: skip
BAD_BR_CODE = BR_CODE[:-4] + ("0000" if not BR_CODE.endswith("0000") else "FFFF")
EXPIRES = "2026-12-05T08:00:00.000-04:00"
EXPIRES_AT = datetime(2026, 12, 5, 8, 0, tzinfo=timezone(timedelta(hours=-4)))
ABSENT = object()  # a field the answer leaves out


@pytest.fixture(autouse=True)
def _fresh_simulator() -> None:
    """No simulator here (the package's conftest resets one before every test)."""


@dataclass
class Wire:
    """Stands in for the pooled `requests` session: records what is sent, answers from a
    queue of (status, body); a body that is bytes goes as it is, anything else as JSON."""

    answers: list[tuple[int, Any]] = field(default_factory=list)
    sent: list[dict[str, Any]] = field(default_factory=list)

    def request(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        self.sent.append({"method": method, "url": url, **kwargs})
        status, body = self.answers.pop(0)
        response = requests.Response()
        response.status_code = status
        response._content = body if isinstance(body, bytes) else json.dumps(body).encode()
        response.headers["Content-Type"] = "application/json"
        response.url = url
        return response

    def body(self, index: int = -1) -> Any:
        return json.loads(self.sent[index]["data"])


@pytest.fixture
def wire(monkeypatch: pytest.MonkeyPatch) -> Wire:
    stand_in = Wire()
    monkeypatch.setattr(module, "pooled_session", lambda: stand_in)
    return stand_in


@pytest.fixture
def adapter() -> MercadoPagoAdapter:
    return MercadoPagoAdapter(
        code="mercadopago", timeout_seconds=5.0, credentials=credentials("mercadopago"),
        api_base=API,
    )  # fmt: skip


def payment(**fields: Any) -> dict[str, Any]:
    """A PIX payment as Mercado Pago answers it, with `fields` replaced (ABSENT: left out)."""
    answer: dict[str, Any] = {
        "id": PAYMENT_ID,
        "date_created": "2026-12-04T08:00:00.000-04:00",
        "date_approved": None,
        "date_of_expiration": EXPIRES,
        "operation_type": "regular_payment",
        "payment_method_id": "pix",
        "payment_type_id": "bank_transfer",
        "status": "pending",
        "status_detail": "pending_waiting_transfer",
        "currency_id": "BRL",
        "description": "PayWave payment pw-1",
        "external_reference": "pw-1",
        "transaction_amount": 10.5,
        "transaction_amount_refunded": 0,
        "transaction_details": {"net_received_amount": 0, "total_paid_amount": 10.5},
        "captured": True,
        "refunds": [],
        "point_of_interaction": {
            "type": "OPENPLATFORM",
            "transaction_data": {
                "qr_code": BR_CODE,
                "qr_code_base64": "iVBORw0KGgo=",
                "ticket_url": "https://www.mercadopago.com.br/payments/1325032948/ticket",
                "transaction_id": None,
                "e2e_id": None,
            },
        },
    }
    answer.update(fields)
    return {name: value for name, value in answer.items() if value is not ABSENT}


def pix_data(qr_code: Any) -> dict[str, Any]:
    return {"type": "OPENPLATFORM", "transaction_data": {"qr_code": qr_code}}


PIX = PixCharge(txid=str(PAYMENT_ID), br_code=BR_CODE, expires_at=EXPIRES_AT)


def result(**fields: Any) -> ChargeResult:
    """The ChargeResult of `payment()` (awaiting payment), with `fields` replaced."""
    expected: dict[str, Any] = {
        "status": ChargeStatus.AWAITING_PAYMENT,
        "reference": str(PAYMENT_ID),
        "raw_status": "pending/pending_waiting_transfer",
        "amount": 1050,
        "currency": "BRL",
        "pix": PIX,
        "failure_code": "",
    }
    expected.update(fields)
    return ChargeResult(**expected)


def described(error: BaseException) -> tuple[Any, ...]:
    """An error whole: its class, message (also as str()), code, gateway's words and status."""
    assert isinstance(error, GatewayError)
    assert str(error) == error.message
    return (type(error), error.message, error.code, error.gateway_message, error.http_status)


# Payments: status, detail, amount, currency and PIX data, read whole.


def _status(status: str, detail: Any, mapped: ChargeStatus, raw: str, failure: str = "") -> Any:
    return pytest.param(
        payment(status=status, status_detail=detail),
        result(status=mapped, raw_status=raw, failure_code=failure),
        id=f"{status}/{detail}",
    )


PAYMENTS = [
    _status("pending", "pending_waiting_transfer", ChargeStatus.AWAITING_PAYMENT,
            "pending/pending_waiting_transfer"),
    _status("in_process", "pending_contingency", ChargeStatus.PENDING,
            "in_process/pending_contingency"),
    _status("authorized", "pending_capture", ChargeStatus.PENDING, "authorized/pending_capture"),
    _status("approved", "accredited", ChargeStatus.SUCCEEDED, "approved/accredited"),
    _status("refunded", "refunded", ChargeStatus.REFUNDED, "refunded/refunded"),
    _status("charged_back", "settled", ChargeStatus.CHARGED_BACK, "charged_back/settled"),
    _status("in_mediation", "", ChargeStatus.IN_DISPUTE, "in_mediation"),
    _status("rejected", "rejected_high_risk", ChargeStatus.FAILED, "rejected/rejected_high_risk",
            "rejected_high_risk"),
    _status("rejected", "", ChargeStatus.FAILED, "rejected"),
    _status("cancelled", "expired", ChargeStatus.EXPIRED, "cancelled/expired"),
    _status("cancelled", "by_collector", ChargeStatus.CANCELED, "cancelled/by_collector"),
    _status("cancelled", "", ChargeStatus.CANCELED, "cancelled"),
    # "expired" makes a cancelled payment expired, and only a cancelled one.
    _status("pending", "expired", ChargeStatus.AWAITING_PAYMENT, "pending/expired"),
    _status("approved", "expired", ChargeStatus.SUCCEEDED, "approved/expired"),
    # A word Mercado Pago may add later: not final, looked up again.
    _status("in_review", "manual_review", ChargeStatus.PENDING, "in_review/manual_review"),
    _status("in_review", None, ChargeStatus.PENDING, "in_review"),
    pytest.param(payment(status=ABSENT, status_detail=ABSENT),
                 result(status=ChargeStatus.PENDING, raw_status=""), id="no status, no detail"),
    pytest.param(payment(status=ABSENT), result(status=ChargeStatus.PENDING,
                 raw_status="/pending_waiting_transfer"), id="no status"),
    pytest.param(payment(status_detail=ABSENT), result(raw_status="pending"), id="no detail"),
    pytest.param(payment(status="rejected", status_detail=ABSENT),
                 result(status=ChargeStatus.FAILED, raw_status="rejected"),
                 id="rejected, no detail"),
    # Amount and currency.
    pytest.param(payment(transaction_amount=0.01), result(amount=1), id="one centavo"),
    pytest.param(payment(transaction_amount=1234567.89), result(amount=123456789), id="millions"),
    pytest.param(payment(transaction_amount=10), result(amount=1000), id="an integer"),
    pytest.param(payment(transaction_amount="10.50"), result(amount=1050), id="a string"),
    pytest.param(payment(transaction_amount=ABSENT), result(amount=None), id="no amount"),
    pytest.param(payment(transaction_amount=None), result(amount=None), id="null amount"),
    pytest.param(payment(transaction_amount=True), result(amount=None), id="a boolean"),
    pytest.param(payment(transaction_amount=False), result(amount=None), id="false"),
    pytest.param(payment(transaction_amount="ten"), result(amount=None), id="not a number"),
    pytest.param(payment(transaction_amount=10.505), result(amount=None), id="finer than cents"),
    pytest.param(payment(transaction_amount=[10.5]), result(amount=None), id="a list"),
    pytest.param(payment(currency_id=ABSENT), result(currency=""), id="no currency: reais"),
    pytest.param(payment(currency_id=None), result(currency=""), id="null currency: reais"),
    pytest.param(payment(currency_id="CLP", transaction_amount=1050),
                 result(currency="CLP", amount=1050), id="pesos: no minor unit"),
    pytest.param(payment(currency_id="ARS", transaction_amount=10.5),
                 result(currency="ARS", amount=1050), id="another currency in cents"),
    pytest.param(payment(currency_id="real"), result(currency="real", amount=None),
                 id="not a currency code"),
    # PIX data.
    pytest.param(payment(id="1325032948"), result(), id="an id as a string"),
    pytest.param(payment(point_of_interaction=ABSENT), result(pix=None), id="no PIX data"),
    pytest.param(payment(point_of_interaction=None), result(pix=None), id="null PIX data"),
    pytest.param(payment(point_of_interaction={"type": "OPENPLATFORM"}), result(pix=None),
                 id="no transaction data"),
    pytest.param(payment(point_of_interaction={"transaction_data": None}), result(pix=None),
                 id="null transaction data"),
    pytest.param(payment(point_of_interaction=pix_data("")), result(pix=None), id="empty code"),
    pytest.param(payment(point_of_interaction=pix_data(None)), result(pix=None), id="null code"),
    pytest.param(payment(point_of_interaction=pix_data(BR_CODE)), result(), id="only the code"),
    pytest.param(payment(point_of_interaction=pix_data(BR_CODE_WITH_TXID)),
                 result(pix=PixCharge("MPQR1325032948", BR_CODE_WITH_TXID, EXPIRES_AT)),
                 id="a code with its own txid"),
    pytest.param(payment(date_of_expiration=ABSENT),
                 result(pix=PixCharge(str(PAYMENT_ID), BR_CODE, None)), id="no expiry"),
    pytest.param(payment(date_of_expiration=None),
                 result(pix=PixCharge(str(PAYMENT_ID), BR_CODE, None)), id="null expiry"),
    pytest.param(payment(date_of_expiration="2026-12-05T12:00:00+00:00"),
                 result(pix=PixCharge(str(PAYMENT_ID), BR_CODE, datetime(2026, 12, 5, 12,
                                                                         tzinfo=UTC))),
                 id="an expiry in UTC"),
]  # fmt: skip


@pytest.mark.parametrize(("answer", "expected"), PAYMENTS)
def test_a_payment_is_read_whole(
    adapter: MercadoPagoAdapter, wire: Wire, answer: dict[str, Any], expected: ChargeResult
) -> None:
    wire.answers.append((200, answer))

    assert adapter.retrieve(str(PAYMENT_ID)) == expected
    assert (wire.sent[0]["method"], wire.sent[0]["url"]) == (
        "GET",
        f"{API}/v1/payments/{PAYMENT_ID}",
    )


@pytest.mark.parametrize("qr_code", [BAD_BR_CODE, "not a br code", BR_CODE + "é"])
def test_an_invalid_br_code_is_ambiguous_with_the_reason(
    adapter: MercadoPagoAdapter, wire: Wire, qr_code: str
) -> None:
    """The payment may exist, but its code cannot be shown to a payer."""
    with pytest.raises(BRCodeError) as invalid:
        parse(qr_code)
    wire.answers.append((201, payment(point_of_interaction=pix_data(qr_code))))

    with pytest.raises(Ambiguous) as raised:
        adapter.charge(charge_request())

    assert described(raised.value) == (
        Ambiguous,
        "mercadopago: the PIX code in the answer is not a valid BR Code",
        "invalid_br_code",
        str(invalid.value),
        None,
    )
    assert str(invalid.value)  # the reason is said
    assert isinstance(raised.value.__cause__, BRCodeError)


# What a charge sends.


def test_a_charge_sends_the_amount_payer_and_expiry_and_reads_the_answer(
    adapter: MercadoPagoAdapter, wire: Wire
) -> None:
    wire.answers.append((201, payment()))
    request = charge_request(pix_expires_in=1800, key="key-1", payment_id="pw-1")
    before = datetime.now(UTC)

    charged = adapter.charge(request)

    assert charged == result()
    [sent] = wire.sent
    assert (sent["method"], sent["url"]) == ("POST", f"{API}/v1/payments")
    assert sent["headers"]["x-idempotency-key"] == "key-1"
    body = wire.body()
    sent_expiry = body.pop("date_of_expiration")
    # Mercado Pago's format: milliseconds and an offset (yyyy-MM-dd'T'HH:mm:ss.SSSZ).
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", sent_expiry)
    expires = datetime.fromisoformat(sent_expiry)
    assert before + timedelta(seconds=1799) < expires < datetime.now(UTC) + timedelta(seconds=1801)
    assert body == {
        "transaction_amount": 10.5,
        "payment_method_id": "pix",
        "description": "PayWave payment pw-1",
        "external_reference": "pw-1",
        "payer": {
            "email": "maria@example.com",
            "first_name": "Maria",
            "last_name": "Silva",
            "identification": {"type": "CPF", "number": "52998224725"},
        },
    }


@pytest.mark.parametrize(
    ("name", "tax_id", "first", "last", "kind"),
    [
        ("Maria da Silva Santos", "52998224725", "Maria", "da Silva Santos", "CPF"),
        ("Maria", "52998224725", "Maria", "", "CPF"),
        ("Padaria Pão Quente Ltda", "11222333000181", "Padaria", "Pão Quente Ltda", "CNPJ"),
    ],
)
def test_the_payer_s_name_is_split_at_the_first_space(
    adapter: MercadoPagoAdapter, wire: Wire, name: str, tax_id: str, first: str, last: str,
    kind: str,
) -> None:  # fmt: skip
    wire.answers.append((201, payment()))
    request = charge_request(description="Order 42")
    payer = replace(request.payer, name=name, email="a@example.com", tax_id=tax_id)

    adapter.charge(replace(request, payer=payer))

    body = wire.body()
    assert body["payer"] == {
        "email": "a@example.com",
        "first_name": first,
        "last_name": last,
        "identification": {"type": kind, "number": tax_id},
    }
    assert body["description"] == "Order 42"


def test_only_pix_is_charged_and_nothing_is_sent_otherwise(
    adapter: MercadoPagoAdapter, wire: Wire
) -> None:
    with pytest.raises(Declined) as raised:
        adapter.charge(charge_request(method="card", card_token="tok"))

    assert described(raised.value) == (
        Declined,
        "mercadopago: only PIX is configured",
        "method_not_supported",
        "",
        None,
    )
    assert wire.sent == []


# Refunds.


def _refund(**fields: Any) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "id": 1009042015, "payment_id": PAYMENT_ID, "amount": 4.0, "metadata": {},
        "source": {"id": "1", "name": "PayWave", "type": "collector"},
        "date_created": "2026-12-04T09:00:00.000-04:00", "refund_mode": "standard",
        "status": "approved", "amount_refunded_to_payer": 4.0,
    }  # fmt: skip
    answer.update(fields)
    return {name: value for name, value in answer.items() if value is not ABSENT}


REFUNDS = [
    pytest.param(_refund(), RefundResult(RefundStatus.SUCCEEDED, "1009042015", 400, "approved"),
                 id="approved"),
    pytest.param(_refund(status="rejected"),
                 RefundResult(RefundStatus.FAILED, "1009042015", 400, "rejected"), id="rejected"),
    pytest.param(_refund(status="in_process"),
                 RefundResult(RefundStatus.PENDING, "1009042015", 400, "in_process"),
                 id="in process"),
    pytest.param(_refund(status="cancelled"),
                 RefundResult(RefundStatus.PENDING, "1009042015", 400, "cancelled"),
                 id="another word"),
    pytest.param(_refund(status=ABSENT),
                 RefundResult(RefundStatus.PENDING, "1009042015", 400, ""), id="no status"),
    pytest.param(_refund(id=ABSENT), RefundResult(RefundStatus.SUCCEEDED, "", 400, "approved"),
                 id="no id"),
    pytest.param(_refund(id="R-7"), RefundResult(RefundStatus.SUCCEEDED, "R-7", 400, "approved"),
                 id="an id as a string"),
    pytest.param(_refund(amount=ABSENT), RefundResult(RefundStatus.SUCCEEDED, "1009042015", 0,
                 "approved"), id="no amount"),
    pytest.param(_refund(amount=0.01), RefundResult(RefundStatus.SUCCEEDED, "1009042015", 1,
                 "approved"), id="one centavo"),
    pytest.param(_refund(amount="6.50"), RefundResult(RefundStatus.SUCCEEDED, "1009042015", 650,
                 "approved"), id="a string"),
    pytest.param(_refund(amount=1234567.89), RefundResult(RefundStatus.SUCCEEDED, "1009042015",
                 123456789, "approved"), id="millions"),
]  # fmt: skip


@pytest.mark.parametrize(("answer", "expected"), REFUNDS)
def test_a_refund_is_read_whole(
    adapter: MercadoPagoAdapter, wire: Wire, answer: dict[str, Any], expected: RefundResult
) -> None:
    wire.answers.append((201, answer))
    # Not final yet: read back by its id (a create asked again replays its first answer).
    reads_back = answer.get("status") not in ("approved", "rejected") and "id" in answer
    if reads_back:
        wire.answers.append((200, answer))  # still so when read back

    refunded = adapter.refund(reference=str(PAYMENT_ID), amount=400, idempotency_key="rf-1")

    assert refunded == expected
    sent = wire.sent[0]
    assert (sent["method"], sent["url"]) == ("POST", f"{API}/v1/payments/{PAYMENT_ID}/refunds")
    assert sent["headers"]["x-idempotency-key"] == "rf-1"
    assert wire.body(0) == {"amount": 4.0}
    reads = [(r["method"], r["url"]) for r in wire.sent[1:]]
    refunds_url = f"{API}/v1/payments/{PAYMENT_ID}/refunds"
    assert reads == ([("GET", f"{refunds_url}/{answer['id']}")] if reads_back else [])


# Notifications.


def _notice(data_id: Any = "1325032948", **fields: Any) -> dict[str, Any]:
    """A payment notification (webhook) as Mercado Pago sends it."""
    notice: dict[str, Any] = {
        "id": 12345678901, "live_mode": False, "type": "payment",
        "date_created": "2026-12-04T09:00:00.000-04:00", "user_id": 123456,
        "api_version": "v1", "action": "payment.updated", "data": {"id": data_id},
    }  # fmt: skip
    notice.update(fields)
    return {name: value for name, value in notice.items() if value is not ABSENT}


@pytest.mark.parametrize(
    ("query", "body", "data_id"),
    [
        ({"data.id": "1325032948", "type": "payment"}, _notice(), "1325032948"),
        ({}, _notice(), "1325032948"),
        ({"data.id": ""}, _notice(), "1325032948"),
        ({"data.id": "1325032948"}, _notice(1325032948), "1325032948"),
        ({}, _notice(1325032948), "1325032948"),
    ],
    ids=["query and body", "body only", "empty query id", "numeric id", "numeric, body only"],
)
def test_a_notification_names_its_payment(
    query: dict[str, str], body: dict[str, Any], data_id: str
) -> None:
    assert _notification(query, json.dumps(body).encode()) == (body, data_id)


@pytest.mark.parametrize(
    ("query", "body", "message"),
    [
        ({}, b"not json", "mercadopago: malformed notification"),
        ({}, b"\xff\xfe", "mercadopago: malformed notification"),
        ({}, b"[]", "mercadopago: malformed notification"),
        ({}, b"null", "mercadopago: malformed notification"),
        ({}, b"{}", "mercadopago: malformed notification"),
        ({}, b'{"data": null}', "mercadopago: malformed notification"),
        ({}, b'{"data": {}}', "mercadopago: malformed notification"),
        ({}, b'{"data": "1"}', "mercadopago: malformed notification"),
        ({}, b'{"data": []}', "mercadopago: malformed notification"),
        ({"data.id": "1325032948"}, b'{"data": {}}', "mercadopago: malformed notification"),
        ({"data.id": "1"}, json.dumps(_notice()).encode(),
         "mercadopago: the body names another payment than the query"),
        ({"data.id": "1325032948 "}, json.dumps(_notice()).encode(),
         "mercadopago: the body names another payment than the query"),
    ],
)  # fmt: skip
def test_a_malformed_or_contradicting_notification_is_invalid(
    query: dict[str, str], body: bytes, message: str
) -> None:
    with pytest.raises(InvalidCallback) as refused:
        _notification(query, body)

    assert str(refused.value) == message


def _signature(data_id: str, request_id: str | None, at: int, secret: str = WEBHOOK_SECRET) -> str:
    pair = f"request-id:{request_id};" if request_id is not None else ""
    manifest = f"id:{data_id};{pair}ts:{at};"
    return f"ts={at},v1={hmac.new(secret.encode(), manifest.encode(), hashlib.sha256).hexdigest()}"


@pytest.mark.parametrize(
    ("names", "body", "request_id", "event_id"),
    [
        (("x-signature", "x-request-id"), _notice(), "bb56a2f1-6aae", "12345678901"),
        (("X-Signature", "X-Request-Id"), _notice(), "bb56a2f1-6aae", "12345678901"),
        (("X-SIGNATURE", "X-REQUEST-ID"), _notice(), "bb56a2f1-6aae", "12345678901"),
        (("x-signature", "x-request-id"), _notice(id=ABSENT), "bb56a2f1-6aae",
         "1325032948:bb56a2f1-6aae"),
        (("x-signature", "x-request-id"), _notice(id=None), "bb56a2f1-6aae",
         "1325032948:bb56a2f1-6aae"),
        (("x-signature", None), _notice(id=ABSENT), None, "1325032948:"),
    ],
    ids=["lower case", "as sent", "upper case", "no notification id", "null id",
         "no id, no request id"],
)  # fmt: skip
def test_a_signed_notification_is_read_whole(
    adapter: MercadoPagoAdapter,
    names: tuple[str, str | None],
    body: dict[str, Any],
    request_id: str | None,
    event_id: str,
) -> None:
    signature_name, request_id_name = names
    headers = {signature_name: _signature("1325032948", request_id, int(time.time()))}
    if request_id_name is not None and request_id is not None:
        headers[request_id_name] = request_id

    event = adapter.parse_callback(
        headers=headers, query={"data.id": "1325032948"}, body=json.dumps(body).encode()
    )

    assert event == CallbackEvent(
        gateway="mercadopago",
        event_id=event_id,
        kind=CallbackKind.PAYMENT_UPDATED,
        reference="1325032948",
        raw=body,
    )


def test_a_notification_signed_with_another_secret_is_refused(
    adapter: MercadoPagoAdapter,
) -> None:
    at = int(time.time())
    headers = {
        "x-signature": _signature("1325032948", "r-1", at, secret="guess"),
        "x-request-id": "r-1",
    }

    with pytest.raises(InvalidCallback) as refused:
        adapter.parse_callback(
            headers=headers, query={"data.id": "1325032948"}, body=json.dumps(_notice()).encode()
        )

    assert str(refused.value) == "mercadopago: SignatureMismatch"


# Errors: what each status means, and the code and words picked from the body.

BODIES: dict[str, tuple[dict[str, Any], str, str]] = {
    # Mercado Pago's error body: the first cause says what was wrong.
    "a cause": ({"message": "Invalid payer email", "error": "bad_request", "status": 400,
                 "cause": [{"code": 4050, "description": "payer.email must be a valid email",
                            "data": None}, {"code": 4051, "description": "second"}]},
                "4050", "payer.email must be a valid email"),
    "a cause without words": ({"message": "Invalid payer email", "error": "bad_request",
                               "cause": [{"code": 4050}]}, "4050", "Invalid payer email"),
    "a cause without a code": ({"message": "Invalid payer email", "error": "bad_request",
                                "cause": [{"description": "payer.email is empty"}]},
                               "bad_request", "payer.email is empty"),
    "a cause that is not an object": ({"message": "boom", "error": "internal_error",
                                       "cause": ["oops"]}, "internal_error", "boom"),
    "no causes": ({"message": "not found", "error": "not_found", "cause": []}, "not_found",
                  "not found"),
    "null causes": ({"message": "too many requests", "error": "too_many_requests",
                     "cause": None}, "too_many_requests", "too many requests"),
    "error and message": ({"message": "unauthorized", "error": "unauthorized"}, "unauthorized",
                          "unauthorized"),
    "only a message": ({"message": "Invalid JSON in response body"}, "{status}",
                       "Invalid JSON in response body"),
    "an empty body": ({}, "{status}", ""),
}  # fmt: skip

CLASSES = [
    (300, Declined, "mercadopago: the payment was refused"),
    (400, Declined, "mercadopago: the payment was refused"),
    (401, Misconfigured, "mercadopago: credentials refused"),
    (402, Declined, "mercadopago: the payment was refused"),
    (403, Misconfigured, "mercadopago: credentials refused"),
    (404, ChargeNotFound, "mercadopago: no such payment"),
    (409, Declined, "mercadopago: the payment was refused"),
    (422, Declined, "mercadopago: the payment was refused"),
    (428, Declined, "mercadopago: the payment was refused"),
    (429, Retryable, "mercadopago: HTTP 429, not processed"),
    (430, Declined, "mercadopago: the payment was refused"),
    (499, Declined, "mercadopago: the payment was refused"),
    (500, Ambiguous, "mercadopago: HTTP 500, the outcome is unknown"),
    (501, Ambiguous, "mercadopago: HTTP 501, the outcome is unknown"),
    (502, Ambiguous, "mercadopago: HTTP 502, the outcome is unknown"),
    (503, Retryable, "mercadopago: HTTP 503, not processed"),
    (504, Ambiguous, "mercadopago: HTTP 504, the outcome is unknown"),
]


@pytest.mark.parametrize("body", BODIES, ids=BODIES)
@pytest.mark.parametrize(("status", "kind", "message"), CLASSES, ids=[str(c[0]) for c in CLASSES])
def test_an_error_answer_is_read_by_its_status_with_the_gateway_s_words(
    status: int, kind: type[GatewayError], message: str, body: str
) -> None:
    answer, code, words = BODIES[body]

    error = _error_for(status, answer, gateway="mercadopago")

    assert described(error) == (kind, message, code.format(status=status), words, status)


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (200, (Ambiguous, "mercadopago: unreadable answer", "", "page", None)),
        (201, (Ambiguous, "mercadopago: unreadable answer", "", "page", None)),
        (299, (Ambiguous, "mercadopago: unreadable answer", "", "page", None)),
        (199, (Declined, "mercadopago: the payment was refused", "199", "page", 199)),
        (300, (Declined, "mercadopago: the payment was refused", "300", "page", 300)),
        (401, (Misconfigured, "mercadopago: credentials refused", "401", "page", 401)),
        (404, (ChargeNotFound, "mercadopago: no such payment", "404", "page", 404)),
        (429, (Retryable, "mercadopago: HTTP 429, not processed", "429", "page", 429)),
        (502, (Ambiguous, "mercadopago: HTTP 502, the outcome is unknown", "502", "page", 502)),
    ],
)
def test_an_unreadable_answer_is_read_by_its_status(status: int, expected: tuple[Any]) -> None:
    """A 2xx that cannot be read may come after the payment was made: never a success."""
    assert described(_unreadable(status, "page", gateway="mercadopago")) == expected


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (200, [], (Ambiguous, "mercadopago: unreadable answer", "",
                   "HTTP 200 without a JSON object", None)),
        (201, b"", (Ambiguous, "mercadopago: unreadable answer", "",
                    "HTTP 201 without a JSON object", None)),
        (201, "created", (Ambiguous, "mercadopago: unreadable answer", "",
                          "HTTP 201 without a JSON object", None)),
        (400, BODIES["a cause"][0], (Declined, "mercadopago: the payment was refused", "4050",
                                     "payer.email must be a valid email", 400)),
        (400, ["not", "an", "object"], (Declined, "mercadopago: the payment was refused", "400",
                                        "", 400)),
        (404, {"message": "Payment not found", "error": "not_found", "status": 404, "cause": []},
         (ChargeNotFound, "mercadopago: no such payment", "not_found", "Payment not found", 404)),
        (502, b"", (Ambiguous, "mercadopago: HTTP 502, the outcome is unknown", "502", "", 502)),
        (502, b"<html>bad gateway</html>",
         (Ambiguous, "mercadopago: HTTP 502, the outcome is unknown", "502",
          "[502] Invalid JSON in response body", 502)),
    ],
    ids=["a list", "no body", "a string", "a cause", "a list with 400", "not found",
         "an empty 502", "an HTML 502"],
)  # fmt: skip
def test_an_answer_is_read_as_an_error_whole(
    adapter: MercadoPagoAdapter, wire: Wire, status: int, body: Any, expected: tuple[Any]
) -> None:
    wire.answers.append((status, body))

    with pytest.raises(GatewayError) as raised:
        adapter.retrieve(str(PAYMENT_ID))

    assert described(raised.value) == expected
