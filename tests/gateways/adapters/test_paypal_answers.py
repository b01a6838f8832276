"""How the PayPal adapter reads orders and error bodies, field by field.

The bodies are PayPal's documented shapes (Orders v2, and its error format: `name`,
`message`, `details[].issue` / `description`, `links`; OAuth's `error` and
`error_description`), given straight to the parsing, without HTTP (test_paypal_parsing.py
has them through the SDK).
"""

import json
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest
from paypalserversdk.exceptions.api_exception import ApiException

from gateways.adapters.paypal import PayPalAdapter, _amount, _api_error, _error_for, _order_body
from gateways.base import (
    Ambiguous,
    ChargeNotFound,
    ChargeStatus,
    Declined,
    GatewayError,
    InvalidCallback,
    Misconfigured,
    Retryable,
)
from tests.gateways.adapters.conftest import charge_request, credentials

APPROVE = "https://www.paypal.com/checkoutnow?token=5O190127TN364715T"


@pytest.fixture
def adapter() -> PayPalAdapter:
    return PayPalAdapter(
        code="paypal",
        timeout_seconds=1,
        credentials=credentials("paypal"),
        api_base="http://127.0.0.1:9/paypal",
    )


def an_order(status: str, *, capture: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    unit: dict[str, Any] = {"amount": {"currency_code": "BRL", "value": "10.50"}}
    if capture is not None:
        unit["payments"] = {"captures": [capture]}
    return {
        "id": "5O190127TN364715T",
        "status": status,
        "purchase_units": [unit],
        "links": [
            {"rel": "self", "href": "https://api-m.paypal.com/v2/checkout/orders/5O19"},
            {"rel": "payer-action", "href": APPROVE},
        ],
        **extra,
    }


# Orders.


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("CREATED", ChargeStatus.REQUIRES_ACTION),
        ("PAYER_ACTION_REQUIRED", ChargeStatus.REQUIRES_ACTION),
        ("APPROVED", ChargeStatus.PENDING),
        ("SAVED", ChargeStatus.PENDING),
        ("VOIDED", ChargeStatus.CANCELED),
        ("SOMETHING_NEW", ChargeStatus.PENDING),  # unknown: look again, never settle
        ("", ChargeStatus.PENDING),
    ],
)
def test_an_order_s_status_reads_as(
    adapter: PayPalAdapter, status: str, expected: ChargeStatus
) -> None:
    result = adapter._result(an_order(status), return_url="https://wallet.example/back")

    assert result.status is expected
    assert result.raw_status == status
    assert result.reference == "5O190127TN364715T"
    assert (result.amount, result.currency) == (1050, "BRL")
    assert (result.failure_code, result.capture_reference) == ("", "")
    if expected is ChargeStatus.REQUIRES_ACTION:  # the payer's page, only while it is needed
        assert result.next_action == {
            "type": "redirect_to_url",
            "redirect_to_url": {"url": APPROVE, "return_url": "https://wallet.example/back"},
        }
    else:
        assert result.next_action is None


@pytest.mark.parametrize(
    ("capture_status", "expected"),
    [
        ("COMPLETED", ChargeStatus.SUCCEEDED),
        ("PARTIALLY_REFUNDED", ChargeStatus.SUCCEEDED),
        ("PENDING", ChargeStatus.PENDING),
        ("DECLINED", ChargeStatus.FAILED),
        ("FAILED", ChargeStatus.FAILED),
        ("REFUNDED", ChargeStatus.REFUNDED),
        ("SOMETHING_NEW", ChargeStatus.PENDING),
    ],
)
def test_a_completed_order_is_what_its_capture_is(
    adapter: PayPalAdapter, capture_status: str, expected: ChargeStatus
) -> None:
    capture = {
        "id": "3C679366HH908993F",
        "status": capture_status,
        "status_details": {"reason": "PENDING_REVIEW"},
    }

    result = adapter._result(an_order("COMPLETED", capture=capture))

    assert result.status is expected
    assert result.raw_status == f"COMPLETED/{capture_status}"
    assert result.capture_reference == "3C679366HH908993F"
    assert result.next_action is None
    assert result.failure_code == ("PENDING_REVIEW" if expected is ChargeStatus.FAILED else "")


def test_a_completed_order_without_a_capture_status_is_pending(adapter: PayPalAdapter) -> None:
    result = adapter._result(an_order("COMPLETED", capture={"id": "3C67"}))

    assert (result.status, result.raw_status) == (ChargeStatus.PENDING, "COMPLETED/")


def test_a_failed_capture_without_a_reason_has_no_code(adapter: PayPalAdapter) -> None:
    result = adapter._result(an_order("COMPLETED", capture={"id": "3C67", "status": "DECLINED"}))

    assert (result.status, result.failure_code) == (ChargeStatus.FAILED, "")


def test_an_order_without_id_status_or_amount_reads_as_nothing_known(
    adapter: PayPalAdapter,
) -> None:
    result = adapter._result({"purchase_units": [{}]})

    assert (result.reference, result.raw_status, result.status) == ("", "", ChargeStatus.PENDING)
    assert (result.amount, result.currency) == (None, "")


def test_the_last_capture_is_the_order_s(adapter: PayPalAdapter) -> None:
    """A declined capture may come before the one that took the money."""
    order = an_order("COMPLETED")
    order["purchase_units"][0]["payments"] = {
        "captures": [
            {"id": "DECLINED-1", "status": "DECLINED"},
            {"id": "OK-2", "status": "COMPLETED"},
        ]
    }

    result = adapter._result(order)

    assert (result.status, result.capture_reference) == (ChargeStatus.SUCCEEDED, "OK-2")


# Error answers.


@pytest.mark.parametrize(
    ("status", "kind", "message"),
    [
        (400, Declined, "paypal: the order was refused"),
        (401, Misconfigured, "paypal: credentials refused"),
        (403, Misconfigured, "paypal: credentials refused"),
        (404, ChargeNotFound, "paypal: no such order"),
        (422, Declined, "paypal: the order was refused"),
        (429, Retryable, "paypal: HTTP 429, not processed"),
        (503, Retryable, "paypal: HTTP 503, not processed"),
        (500, Ambiguous, "paypal: HTTP 500, the outcome is unknown"),
        (502, Ambiguous, "paypal: HTTP 502, the outcome is unknown"),
    ],
)
def test_an_error_answer_is_classed_by_its_status(
    status: int, kind: type[GatewayError], message: str
) -> None:
    body = {
        "name": "UNPROCESSABLE_ENTITY",
        "message": "The requested action could not be performed.",
        "details": [{"issue": "INSTRUMENT_DECLINED", "description": "The instrument declined."}],
    }

    error = _error_for(status, body, gateway="paypal")

    assert type(error) is kind
    assert error.message == message
    assert (error.code, error.gateway_message, error.http_status) == (
        "INSTRUMENT_DECLINED", "The instrument declined.", status,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("body", "code", "gateway_message"),
    [
        (
            {"name": "RESOURCE_NOT_FOUND", "message": "Not found."},
            "RESOURCE_NOT_FOUND",
            "Not found.",
        ),
        ({"details": ["not a mapping"], "name": "X", "message": "m"}, "X", "m"),
        ({"details": [{}], "name": "X", "message": "m"}, "X", "m"),
        (
            {"error": "invalid_client", "error_description": "Bad secret"},
            "invalid_client",
            "Bad secret",
        ),
        ({"name": "X", "error": "y", "message": "m", "error_description": "d"}, "X", "m"),
        ({}, "422", ""),
    ],
)
def test_an_error_answer_s_code_and_words(
    body: dict[str, Any], code: str, gateway_message: str
) -> None:
    error = _error_for(422, body, gateway="paypal")

    assert (error.code, error.gateway_message) == (code, gateway_message)


def api_exception(status: int, body: Any) -> ApiException:
    text = body if isinstance(body, str) else json.dumps(body)
    return ApiException("PayPal said no", SimpleNamespace(status_code=status, text=text))


def test_an_instrument_declined_capture_names_where_the_payer_approves_again() -> None:
    body = {
        "name": "UNPROCESSABLE_ENTITY",
        "message": "The requested action could not be performed.",
        "details": [{"issue": "INSTRUMENT_DECLINED", "description": "Declined."}],
        "links": [
            {"rel": "information_link", "href": "https://developer.paypal.com/docs/api/"},
            {"rel": "redirect", "href": APPROVE},
        ],
    }

    error = _api_error(api_exception(422, body), gateway="paypal")

    assert isinstance(error, Declined)
    assert error.redirect_url == APPROVE  # type: ignore[attr-defined]
    assert (error.message, error.code, error.gateway_message, error.http_status) == (
        "paypal: the order was refused", "INSTRUMENT_DECLINED", "Declined.", 422,
    )  # fmt: skip


def test_another_refusal_is_a_plain_decline() -> None:
    body = {"name": "UNPROCESSABLE_ENTITY", "details": [{"issue": "ORDER_NOT_APPROVED"}]}

    error = _api_error(api_exception(422, body), gateway="paypal")

    assert type(error) is Declined
    assert (error.code, error.http_status) == ("ORDER_NOT_APPROVED", 422)


@pytest.mark.parametrize("text", ["<html>Bad gateway</html>", "[1, 2]", ""])
def test_an_error_body_that_is_not_a_json_object_is_classed_by_status_alone(text: str) -> None:
    error = _api_error(api_exception(502, text), gateway="paypal")

    assert type(error) is Ambiguous
    assert (error.message, error.code, error.http_status) == (
        "paypal: HTTP 502, the outcome is unknown", "502", 502,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("status", "message"),
    [
        (0, "paypal: no status recorded for the answer"),
        (200, "paypal: unreadable answer (HTTP 200)"),
        (201, "paypal: unreadable answer (HTTP 201)"),
        (299, "paypal: unreadable answer (HTTP 299)"),
    ],
)
def test_an_answer_that_says_nothing_of_the_outcome_is_ambiguous(status: int, message: str) -> None:
    """No status at all, or a success that could not be read: the order may exist."""
    error = _error_for(status, {"name": "X", "message": "m"}, gateway="paypal")

    assert type(error) is Ambiguous
    assert (error.message, error.code, error.gateway_message, error.http_status) == (
        message, "X", "m", status,
    )  # fmt: skip


def test_an_answer_with_no_status_at_all_is_ambiguous() -> None:
    error = _api_error(api_exception(None, {"name": "X"}), gateway="paypal")  # type: ignore[arg-type]

    assert type(error) is Ambiguous
    assert (error.message, error.http_status) == ("paypal: no status recorded for the answer", 0)


@pytest.mark.parametrize(
    ("money", "minor"),
    [
        ({"currency_code": "BRL", "value": "10.50"}, 1050),
        ({"currency_code": "JPY", "value": "105"}, 105),
        ({"currency_code": "BRL", "value": ""}, None),
        ({"currency_code": "BRL"}, None),
        ({"currency_code": "BRL", "value": "10.505"}, None),  # finer than the currency
        ({"currency_code": "XXX1", "value": "1"}, None),
        (None, None),
        ("10.50", None),
        ([], None),
    ],
)
def test_paypal_money_in_minor_units(money: Any, minor: int | None) -> None:
    assert _amount(money) == minor


def test_a_description_is_cut_to_paypal_s_limit() -> None:
    request = charge_request(
        method="paypal", key="k", description="d" * 200, return_url="https://w.example/r"
    )

    [unit] = _order_body(request)["purchase_units"]

    assert unit["description"] == "d" * 127


@pytest.mark.parametrize(
    ("method", "return_url", "message", "code"),
    [
        (
            "card",
            "https://w.example/r",
            "paypal: only PayPal is configured",
            "method_not_supported",
        ),
        ("paypal", "", "paypal: a return_url is required", "missing_return_url"),
    ],
)
def test_a_charge_paypal_cannot_take_is_declined_before_sending(
    adapter: PayPalAdapter, method: str, return_url: str, message: str, code: str
) -> None:
    request = charge_request(method=method, key="k", return_url=return_url)

    with pytest.raises(Declined) as raised:
        adapter.charge(request)

    assert (raised.value.message, raised.value.code) == (message, code)


# Callbacks, read (their signature is checked by PayPal: test_paypal_parsing.py).


def an_event(event_type: str, resource: Any, **extra: Any) -> dict[str, Any]:
    return {"id": "WH-1", "event_type": event_type, "resource": resource, **extra}


def test_an_approval_without_a_custom_id_names_no_payment(adapter: PayPalAdapter) -> None:
    event = adapter._callback_event(
        an_event("CHECKOUT.ORDER.APPROVED", {"id": "5O19", "purchase_units": [{}]})
    )

    assert (event.reference, event.payment_id, event.amount) == ("5O19", "", None)


def test_an_event_without_a_type_or_an_order_id_is_other_and_names_nothing(
    adapter: PayPalAdapter,
) -> None:
    event = adapter._callback_event(an_event("", {}))

    assert (event.kind, event.reference, event.payment_id) == ("other", "", "")
    approval = adapter._callback_event(
        an_event("CHECKOUT.ORDER.APPROVED", {"purchase_units": [{}]})
    )
    assert approval.reference == ""


@pytest.mark.parametrize(
    "event",
    [
        an_event("CHECKOUT.ORDER.APPROVED", "not an object"),
        an_event("CHECKOUT.ORDER.APPROVED", {"id": "5O19"}, id=""),
        {"event_type": "CHECKOUT.ORDER.APPROVED", "resource": {"id": "5O19"}},
    ],
)
def test_a_body_that_is_not_an_event_is_refused(adapter: PayPalAdapter, event: Any) -> None:
    with pytest.raises(InvalidCallback, match=r"^paypal: the signed body is not an event$"):
        adapter._callback_event(event)


TRANSMISSION = {
    "PAYPAL-TRANSMISSION-ID": "8f1c2f10-0000-4000-8000-000000000001",
    "PAYPAL-TRANSMISSION-TIME": "2026-01-01T00:00:00Z",
    "PAYPAL-TRANSMISSION-SIG": "c2ln",
    "PAYPAL-CERT-URL": "https://api.paypal.com/v1/notifications/certs/CERT-1",
    "PAYPAL-AUTH-ALGO": "SHA256withRSA",
}


def test_a_callback_missing_headers_names_them(adapter: PayPalAdapter) -> None:
    headers = {
        k: v for k, v in TRANSMISSION.items() if k not in ("PAYPAL-CERT-URL", "PAYPAL-AUTH-ALGO")
    }

    with pytest.raises(InvalidCallback) as raised:
        adapter.parse_callback(headers=headers, query={}, body=b"{}")

    assert str(raised.value) == "paypal: missing PAYPAL-CERT-URL, PAYPAL-AUTH-ALGO"


def test_a_stale_or_malformed_callback_is_refused_in_the_gateway_s_name(
    adapter: PayPalAdapter,
) -> None:
    with pytest.raises(InvalidCallback, match=r"^paypal: "):
        adapter.parse_callback(headers=TRANSMISSION, query={}, body=b"{}")  # from 2026-01-01
    fresh = {**TRANSMISSION, "PAYPAL-TRANSMISSION-TIME": datetime.now(UTC).isoformat()}
    with pytest.raises(InvalidCallback, match=r"^paypal: malformed event$"):
        adapter.parse_callback(headers=fresh, query={}, body=b"not json")


@pytest.mark.parametrize(
    "order",
    [
        {"id": "5O19", "status": "COMPLETED", "purchase_units": {"not": "a list"}},
        {"id": "5O19", "status": "COMPLETED", "purchase_units": [{"payments": "captured"}]},
        {"id": "5O19", "status": "CREATED", "purchase_units": [{"amount": "10.50"}]},
        {"id": "5O19", "status": "CREATED", "links": 3},
    ],
)
def test_an_order_not_shaped_as_paypal_documents_is_ambiguous(
    adapter: PayPalAdapter, order: dict[str, Any]
) -> None:
    """Read again later, as any answer that says nothing sure: never an unexpected error."""
    with pytest.raises(Ambiguous, match=r"^paypal: unreadable order$"):
        adapter._result(order)


def test_error_details_not_shaped_as_a_list_are_read_from_the_body_s_name() -> None:
    error = _error_for(
        422, {"name": "UNPROCESSABLE_ENTITY", "details": {"issue": "X"}}, gateway="paypal"
    )

    assert (type(error), error.code) == (Declined, "UNPROCESSABLE_ENTITY")
