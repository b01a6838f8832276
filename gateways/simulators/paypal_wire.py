"""PayPal REST on the wire: ids, times, money, order request validation, error bodies,
webhook events."""

import copy
import json
import re
import secrets
import string
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from gateways.simulators._money import AmountError, major_string, minor_from_major
from gateways.simulators.routing import Response

_ID_ALPHABET = string.ascii_uppercase + string.digits
# Currencies PayPal takes for payments; those without minor units take whole values only.
SUPPORTED_CURRENCIES = frozenset(
    [
        "AUD",
        "BRL",
        "CAD",
        "CNY",
        "CZK",
        "DKK",
        "EUR",
        "HKD",
        "HUF",
        "ILS",
        "JPY",
        "MYR",
        "MXN",
        "TWD",
        "NZD",
        "NOK",
        "PHP",
        "PLN",
        "GBP",
        "SGD",
        "SEK",
        "CHF",
        "THB",
        "USD",
    ]
)
ZERO_DECIMAL_CURRENCIES = frozenset({"HUF", "JPY", "TWD"})
VALUE_PATTERN = re.compile(r"\d{1,20}(\.\d{1,10})?")
ID_FIELD_LIMITS = {"custom_id": 127, "invoice_id": 127, "reference_id": 256}
INFORMATION_BASE = "https://developer.paypal.com/docs/api/orders/v2/#error-"

_NAMES = {
    400: (
        "INVALID_REQUEST",
        "Request is not well-formed, syntactically incorrect, or violates schema.",
    ),
    401: (
        "AUTHENTICATION_FAILURE",
        "Authentication failed due to invalid authentication credentials or a missing "
        "Authorization header.",
    ),
    403: ("NOT_AUTHORIZED", "Authorization failed due to insufficient permissions."),
    404: ("RESOURCE_NOT_FOUND", "The specified resource does not exist."),
    405: ("METHOD_NOT_SUPPORTED", "The server does not implement the requested HTTP method."),
    422: (
        "UNPROCESSABLE_ENTITY",
        "The requested action could not be performed, semantically incorrect, or failed "
        "business validation.",
    ),
    429: ("RATE_LIMIT_REACHED", "Too many requests. Blocked due to rate limiting."),
    500: ("INTERNAL_SERVER_ERROR", "An internal server error has occurred."),
    502: ("BAD_GATEWAY", "Bad gateway."),
    503: ("SERVICE_UNAVAILABLE", "Service Unavailable."),
    504: ("GATEWAY_TIMEOUT", "Gateway timeout."),
}
ISSUES = {
    "CANNOT_BE_ZERO_OR_NEGATIVE": "Must be greater than zero. If the currency supports "
    "decimals, only two decimal place precision is supported.",
    "CAPTURE_FULLY_REFUNDED": "The capture has already been fully refunded.",
    "CURRENCY_NOT_SUPPORTED": "Currency code is not currently supported. Please use a "
    "supported currency code.",
    "DECIMAL_PRECISION": "If the currency supports decimals, only two decimal place "
    "precision is supported.",
    "INSTRUMENT_DECLINED": "The instrument presented was either declined by the processor or "
    "bank, or it can't be used for this payment.",
    "INVALID_PARAMETER_SYNTAX": "The value of a field does not conform to the expected format.",
    "INVALID_PARAMETER_VALUE": "The value of a field is invalid.",
    "INVALID_RESOURCE_ID": "Specified resource ID does not exist. Please check the resource ID "
    "and try again.",
    "INVALID_STRING_LENGTH": "The value of a field is either too short or too long.",
    "MALFORMED_REQUEST_JSON": "The request JSON is not well formed.",
    "MISSING_REQUIRED_PARAMETER": "A required field / parameter is missing.",
    "ORDER_ALREADY_CAPTURED": "Order already captured. If 'intent=CAPTURE' only one capture per "
    "order is allowed.",
    "ORDER_NOT_APPROVED": "Payer has not yet approved the Order for payment. Redirect the payer "
    "to the 'rel':'approve' url returned as part of the HATEOAS links within the Create Order "
    "call or provide a valid payment_source in the request.",
    "REFUND_AMOUNT_EXCEEDED": "The refund amount must be less than or equal to the capture "
    "amount that has not yet been refunded.",
    "REFUND_CURRENCY_MISMATCH": "Refund must be in the same currency as the capture.",
    "REFUND_NOT_ALLOWED": "Only a completed capture can be refunded.",
    "REFUND_NOT_PERMITTED_DUE_TO_CHARGEBACK": "Refunds not allowed on this capture due to a "
    "chargeback on the card or bank. Please contact the payee to resolve the chargeback.",
    "TRANSACTION_REFUSED": "The request was refused.",
    "ACTION_NOT_ALLOWED_IN_CURRENT_DISPUTE_STATE": "You cannot complete this action for this "
    "dispute ID.",
}


def paypal_id(length: int = 17) -> str:
    """An id shaped like PayPal's order, capture and refund ids: "5O190127TN364715T"."""
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(length))


def paypal_time(moment: datetime) -> str:
    """ "2024-05-01T12:00:00Z", as PayPal writes times."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def money(minor: int, currency: str) -> dict[str, str]:
    value = str(minor) if currency in ZERO_DECIMAL_CURRENCIES else major_string(minor)
    return {"currency_code": currency, "value": value}


def link(href: str, rel: str, method: str = "GET") -> dict[str, str]:
    return {"href": href, "rel": rel, "method": method}


# Errors.


def error(
    status: int,
    message: str | None = None,
    details: list[dict[str, Any]] | None = None,
    links: list[dict[str, str]] | None = None,
) -> Response:
    """PayPal's error body: name, message, debug_id, details[{issue, description}], links."""
    name, default_message = _NAMES.get(status, _NAMES[500 if status >= 500 else 400])
    debug_id = secrets.token_hex(7)[:13]
    body: dict[str, Any] = {"name": name, "message": message or default_message}
    if details:
        body["details"] = details
    body["debug_id"] = debug_id
    body["links"] = links or [
        link(f"{INFORMATION_BASE}{name}", "information_link"),
    ]
    return Response.json(status, body, headers={"Paypal-Debug-Id": debug_id})


def issue(
    status: int,
    name: str,
    *,
    field: str | None = None,
    value: str | None = None,
    location: str = "body",
    description: str = "",
    extra_links: list[dict[str, str]] | None = None,
) -> Response:
    """An error with one detail whose `issue` is `name` (its description from ISSUES unless
    given); `field` is in the body, or where `location` says ("query", "path")."""
    detail: dict[str, Any] = {}
    if field is not None:
        detail.update(field=field, location=location)
    if value is not None:
        detail["value"] = value
    detail.update(issue=name, description=description or ISSUES.get(name, name))
    links = [link(f"{INFORMATION_BASE}{name}", "information_link"), *(extra_links or [])]
    return error(status, None, [detail], links)


def not_found(resource_id: str) -> Response:
    return issue(404, "INVALID_RESOURCE_ID", value=resource_id)


def oauth_error(status: int, kind: str, description: str) -> Response:
    """The OAuth endpoints' (and a bad bearer token's) own error shape."""
    return Response.json(status, {"error": kind, "error_description": description})


# Webhook events.


@dataclass(frozen=True)
class Webhook:
    """One event to send: its type (for the delivery log) and its body, as signed."""

    event_type: str
    body: bytes


Outbox = list[Webhook]  # events a change queued, sent once the store's lock is let go


def webhook_event(
    event_type: str,
    resource_type: str,
    resource: Any,
    summary: str,
    *,
    resource_version: str = "2.0",
) -> Webhook:
    """A webhook event as PayPal sends it, around a copy of `resource` as it is now."""
    event = {
        "id": f"WH-{paypal_id()}-{paypal_id()}",
        "event_version": "1.0",
        "create_time": paypal_time(datetime.now(UTC)),
        "resource_type": resource_type,
        "resource_version": resource_version,
        "event_type": event_type,
        "summary": summary,
        "resource": copy.deepcopy(resource),
    }
    return Webhook(event_type, json.dumps(event).encode())


# Request bodies.


@dataclass(frozen=True)
class OrderRequest:
    amount: int  # minor units
    currency: str
    unit: dict[str, Any]  # the purchase unit as the order shows it
    reference: str  # PayWave's payment id: custom_id, else invoice_id, else reference_id
    return_url: str
    cancel_url: str
    payment_source: bool  # asked through payment_source.paypal (PayPal then wants payer action)


def parse_money(data: Any, field: str) -> tuple[int, str] | Response:
    """(minor units, currency) from {"currency_code", "value"}, or the error PayPal gives."""
    if not isinstance(data, dict):
        return issue(400, "MISSING_REQUIRED_PARAMETER", field=field)
    currency, value = data.get("currency_code"), data.get("value")
    if currency is None:
        return issue(400, "MISSING_REQUIRED_PARAMETER", field=f"{field}/currency_code")
    if value is None:
        return issue(400, "MISSING_REQUIRED_PARAMETER", field=f"{field}/value")
    if not isinstance(currency, str) or not re.fullmatch(r"[A-Z]{3}", currency):
        return issue(400, "INVALID_PARAMETER_SYNTAX", field=f"{field}/currency_code")
    if currency not in SUPPORTED_CURRENCIES:
        return issue(422, "CURRENCY_NOT_SUPPORTED", field=f"{field}/currency_code", value=currency)
    if not isinstance(value, str) or not VALUE_PATTERN.fullmatch(value):
        return issue(400, "INVALID_PARAMETER_SYNTAX", field=f"{field}/value")
    try:
        minor = minor_from_major(value)
    except AmountError:
        return issue(422, "DECIMAL_PRECISION", field=f"{field}/value", value=value)
    if currency in ZERO_DECIMAL_CURRENCIES:
        if minor % 100:
            return issue(422, "DECIMAL_PRECISION", field=f"{field}/value", value=value)
        minor //= 100
    if minor <= 0:
        return issue(422, "CANNOT_BE_ZERO_OR_NEGATIVE", field=f"{field}/value", value=value)
    return minor, currency


def parse_order_request(body: dict[str, Any], merchant: dict[str, str]) -> OrderRequest | Response:
    intent = body.get("intent")
    if intent is None:
        return issue(400, "MISSING_REQUIRED_PARAMETER", field="/intent")
    if intent != "CAPTURE":  # AUTHORIZE is PayPal's too; the simulator captures only
        return issue(400, "INVALID_PARAMETER_VALUE", field="/intent", value=str(intent))
    units = body.get("purchase_units")
    if not isinstance(units, list) or not units:
        return issue(400, "MISSING_REQUIRED_PARAMETER", field="/purchase_units")
    if len(units) > 1 or not isinstance(units[0], dict):
        return issue(400, "INVALID_PARAMETER_VALUE", field="/purchase_units")
    request_unit = units[0]
    parsed = parse_money(request_unit.get("amount"), "/purchase_units/0/amount")
    if isinstance(parsed, Response):
        return parsed
    amount, currency = parsed
    unit: dict[str, Any] = {
        "reference_id": request_unit.get("reference_id") or "default",
        "amount": {**request_unit["amount"], **money(amount, currency)},  # "10.5" -> "10.50"
        "payee": merchant,
    }
    for name in ("description", "custom_id", "invoice_id", "soft_descriptor"):
        if request_unit.get(name) is not None:
            unit[name] = request_unit[name]
    for name, limit in ID_FIELD_LIMITS.items():
        value = unit.get(name)
        if value is not None and (not isinstance(value, str) or not 1 <= len(value) <= limit):
            return issue(400, "INVALID_STRING_LENGTH", field=f"/purchase_units/0/{name}")
    reference = unit.get("custom_id") or unit.get("invoice_id") or ""
    if not reference and unit["reference_id"] != "default":
        reference = unit["reference_id"]
    urls = _experience(body)
    if isinstance(urls, Response):
        return urls
    return OrderRequest(
        amount=amount,
        currency=currency,
        unit=unit,
        reference=str(reference),
        return_url=urls[0],
        cancel_url=urls[1],
        payment_source=urls[2],
    )


def _experience(body: dict[str, Any]) -> tuple[str, str, bool] | Response:
    """(return_url, cancel_url, whether given as payment_source.paypal.experience_context)."""
    source = body.get("payment_source")
    if source is not None:
        paypal = source.get("paypal") if isinstance(source, dict) else None
        if not isinstance(paypal, dict):  # cards, wallets...: not simulated
            return issue(400, "INVALID_PARAMETER_VALUE", field="/payment_source")
        context = paypal.get("experience_context") or {}
        field = "/payment_source/paypal/experience_context"
    else:
        context = body.get("application_context") or {}
        field = "/application_context"
    if not isinstance(context, dict):
        return issue(400, "INVALID_PARAMETER_SYNTAX", field=field)
    urls = []
    for name in ("return_url", "cancel_url"):
        url = context.get(name, "")
        if not isinstance(url, str) or (url and not re.match(r"https?://", url)):
            return issue(400, "INVALID_PARAMETER_SYNTAX", field=f"{field}/{name}")
        urls.append(url)
    return urls[0], urls[1], source is not None
