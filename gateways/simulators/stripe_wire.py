"""Stripe's wire: form-encoded parameters, test cards, and errors in Stripe's shape."""

import re
import time
from dataclasses import dataclass
from enum import Enum
from typing import Any

from gateways.simulators.routing import Response

CANCELABLE = (
    "requires_payment_method",
    "requires_capture",
    "requires_confirmation",
    "requires_action",
    "processing",
)


class CardOutcome(Enum):
    SUCCEED = "succeed"
    DECLINE = "decline"
    AUTHENTICATE = "authenticate"  # 3-D Secure: requires_action until /_sim/card/{id}/authenticate


@dataclass(frozen=True)
class TestCard:
    brand: str
    last4: str
    outcome: CardOutcome
    code: str = ""
    decline_code: str = ""
    message: str = ""
    funding: str = "credit"


def _declined(last4: str, code: str, decline_code: str, message: str) -> TestCard:
    return TestCard("visa", last4, CardOutcome.DECLINE, code, decline_code, message)


# Stripe's test PaymentMethod tokens (https://docs.stripe.com/testing).
TEST_CARDS: dict[str, TestCard] = {
    "pm_card_visa": TestCard("visa", "4242", CardOutcome.SUCCEED),
    "pm_card_visa_debit": TestCard("visa", "5556", CardOutcome.SUCCEED, funding="debit"),
    "pm_card_mastercard": TestCard("mastercard", "4444", CardOutcome.SUCCEED),
    "pm_card_amex": TestCard("amex", "8431", CardOutcome.SUCCEED),
    "pm_card_chargeDeclined": _declined(
        "0002", "card_declined", "generic_decline", "Your card was declined."
    ),
    "pm_card_chargeDeclinedInsufficientFunds": _declined(
        "9995", "card_declined", "insufficient_funds", "Your card has insufficient funds."
    ),
    "pm_card_chargeDeclinedLostCard": _declined(
        "9987", "card_declined", "lost_card", "Your card was declined."
    ),
    "pm_card_chargeDeclinedExpiredCard": _declined(
        "0069", "expired_card", "expired_card", "Your card has expired."
    ),
    "pm_card_authenticationRequired": TestCard("visa", "3184", CardOutcome.AUTHENTICATE),
    "pm_card_threeDSecure2Required": TestCard("visa", "3220", CardOutcome.AUTHENTICATE),
}


class FormError(ValueError):
    pass


_FORM_KEY = re.compile(r"([^\[\]]+)((?:\[[^\[\]]*\])*)")


def parse_form(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """Stripe's nested form keys as JSON-like values: a[b]=1 -> {"a": {"b": "1"}},
    a[0]=x or a[]=x -> {"a": ["x"]}."""
    root: dict[str, Any] = {}
    for key, value in pairs:
        found = _FORM_KEY.fullmatch(key)
        if found is None:
            raise FormError(f"malformed parameter name: {key}")
        parts = [found.group(1), *re.findall(r"\[([^\[\]]*)\]", found.group(2))]
        node = root
        for part in parts[:-1]:
            child = node.setdefault(part or str(len(node)), {})
            if not isinstance(child, dict):
                raise FormError(f"parameter {key} is both a value and a hash")
            node = child
        last = parts[-1] or str(len(node))
        if isinstance(node.get(last), dict):
            raise FormError(f"parameter {key} is both a value and a hash")
        node[last] = value
    return _listify(root)


def _listify(value: Any) -> Any:
    if not isinstance(value, dict):
        return value
    converted = {name: _listify(child) for name, child in value.items()}
    if converted and all(name.isdigit() for name in converted):
        return [converted[name] for name in sorted(converted, key=int)]
    return converted


def payment_method_object(pm_id: str, card: TestCard) -> dict[str, Any]:
    return {
        "id": pm_id,
        "object": "payment_method",
        "billing_details": {"address": None, "email": None, "name": None, "phone": None},
        "card": card_details(card),
        "created": int(time.time()),
        "customer": None,
        "livemode": False,
        "metadata": {},
        "type": "card",
    }


def card_details(card: TestCard) -> dict[str, Any]:
    return {
        "brand": card.brand,
        "country": "US",
        "exp_month": 12,
        "exp_year": 2034,
        "fingerprint": f"sim{card.brand}{card.last4}",
        "funding": card.funding,
        "last4": card.last4,
    }


def expand_list(params: dict[str, Any]) -> list[str]:
    expand = params.get("expand") or []
    return [str(item) for item in expand] if isinstance(expand, list) else [str(expand)]


def error(
    status: int,
    kind: str,
    message: str,
    *,
    code: str | None = None,
    param: str | None = None,
    replayable: bool = True,
    **extra: Any,
) -> Response:
    error: dict[str, Any] = {"type": kind, "message": message}
    if code:
        error["code"] = code
        error["doc_url"] = f"https://docs.stripe.com/error-codes/{code.replace('_', '-')}"
    if param:
        error["param"] = param
    error.update(extra)
    return Response.json(status, {"error": error}, replayable=replayable)


def idempotency_mismatch(key: str) -> Response:
    return error(
        400,
        "idempotency_error",
        "Keys for idempotent requests can only be used with the same parameters they "
        f"were first used with. Try using a key other than '{key}' if you meant to "
        "execute a different request.",
        replayable=False,
    )


def no_such(kind: str, object_id: str, *, param: str = "intent") -> Response:
    return error(
        404,
        "invalid_request_error",
        f"No such {kind}: '{object_id}'",
        code="resource_missing",
        param=param,
        replayable=False,
    )


def unexpected_state(intent: dict[str, Any], action: str) -> Response:
    allowed = ", ".join(CANCELABLE) if action == "cancel" else "requires_confirmation"
    return error(
        400,
        "invalid_request_error",
        f"You cannot {action} this PaymentIntent because it has a status of "
        f"{intent['status']}. Only a PaymentIntent with one of the following statuses "
        f"may be {action}ed: {allowed}.",
        code="payment_intent_unexpected_state",
        payment_intent=intent,
    )


def invalid(param: str, message: str) -> Response:
    return error(
        400,
        "invalid_request_error",
        f"{message}: {param}",
        code="parameter_invalid",
        param=param,
        replayable=False,
    )


def missing_or_invalid(params: dict[str, Any], name: str) -> Response:
    if name not in params or params[name] == "":
        return error(
            400,
            "invalid_request_error",
            f"Missing required param: {name}.",
            code="parameter_missing",
            param=name,
            replayable=False,
        )
    return invalid(name, "Invalid value")


def positive_int(params: dict[str, Any], name: str) -> int | Response:
    raw = params.get(name)
    if raw is None or raw == "":
        return missing_or_invalid(params, name)
    if not isinstance(raw, str) or not raw.isdigit():
        return error(
            400,
            "invalid_request_error",
            f"Invalid integer: {raw}",
            code="parameter_invalid_integer",
            param=name,
            replayable=False,
        )
    if int(raw) < 1:
        return error(
            400,
            "invalid_request_error",
            "This value must be greater than or equal to 1.",
            code="parameter_invalid_integer",
            param=name,
            replayable=False,
        )
    return int(raw)


# Disputes.

# A dispute's statuses: an inquiry (warning_*) is asked before any chargeback.
NEEDS_RESPONSE = ("needs_response", "warning_needs_response")
UNDER_REVIEW = ("under_review", "warning_under_review")
CLOSED = ("won", "lost", "warning_closed")
SUBMITTED = {"needs_response": "under_review", "warning_needs_response": "warning_under_review"}
DISPUTE_EVIDENCE_DAYS = 7  # evidence_details.due_by: this long after the dispute opens

# The text evidence fields a dispute update takes (Stripe has them all, and more).
EVIDENCE_FIELDS = (
    "access_activity_log",
    "billing_address",
    "cancellation_policy_disclosure",
    "cancellation_rebuttal",
    "customer_communication",
    "customer_email_address",
    "customer_name",
    "customer_purchase_ip",
    "duplicate_charge_explanation",
    "duplicate_charge_id",
    "product_description",
    "refund_policy_disclosure",
    "refund_refusal_explanation",
    "service_date",
    "shipping_address",
    "shipping_carrier",
    "shipping_date",
    "shipping_tracking_number",
    "uncategorized_text",
)

LIST_LIMIT_DEFAULT = 10
LIST_LIMIT_MAX = 100
_RANGE_OPERATORS = ("gt", "gte", "lt", "lte")


def dispute_closed(dispute_id: str) -> Response:
    return error(
        400,
        "invalid_request_error",
        f"This dispute ({dispute_id}) is already closed and cannot be updated.",
    )


def dispute_submitted(dispute_id: str) -> Response:
    return error(
        400,
        "invalid_request_error",
        f"The evidence of this dispute ({dispute_id}) has already been submitted; "
        "it can no longer be changed.",
    )


def charge_disputed(charge_id: str) -> Response:
    return error(
        400,
        "invalid_request_error",
        f"Charge {charge_id} has been charged back; cannot issue a refund.",
        code="charge_disputed",
    )


def unknown_parameter(name: str) -> Response:
    return error(
        400,
        "invalid_request_error",
        f"Received unknown parameter: {name}",
        code="parameter_unknown",
        param=name,
        replayable=False,
    )


def _integer(raw: Any, param: str) -> int | Response:
    text = raw if isinstance(raw, str) else ""
    if not re.fullmatch(r"-?\d+", text):
        return error(
            400,
            "invalid_request_error",
            f"Invalid integer: {raw}",
            code="parameter_invalid_integer",
            param=param,
            replayable=False,
        )
    return int(text)


def list_limit(params: dict[str, Any]) -> int | Response:
    """A list's `limit`: 1 to 100, 10 when not given."""
    if params.get("limit") in (None, ""):
        return LIST_LIMIT_DEFAULT
    limit = _integer(params["limit"], "limit")
    if isinstance(limit, Response):
        return limit
    if not 1 <= limit <= LIST_LIMIT_MAX:
        return error(
            400,
            "invalid_request_error",
            f"This value must be greater than or equal to 1 and less than or equal to "
            f"{LIST_LIMIT_MAX}.",
            code="parameter_invalid_integer",
            param="limit",
            replayable=False,
        )
    return limit


def created_bounds(params: dict[str, Any]) -> list[tuple[str, int]] | Response:
    """`created=<t>` or `created[gte]=<t>` (gt, gte, lt, lte) as (operator, unix seconds)."""
    raw = params.get("created")
    if raw is None or raw == "":
        return []
    given = raw if isinstance(raw, dict) else {"eq": raw}
    bounds: list[tuple[str, int]] = []
    for operator, value in given.items():
        name = "created" if operator == "eq" else f"created[{operator}]"
        if operator not in (*_RANGE_OPERATORS, "eq"):
            return unknown_parameter(name)
        moment = _integer(value, name)
        if isinstance(moment, Response):
            return moment
        bounds.append((operator, moment))
    return bounds


def within(created: int, bounds: list[tuple[str, int]]) -> bool:
    checks = {
        "eq": lambda bound: created == bound,
        "gt": lambda bound: created > bound,
        "gte": lambda bound: created >= bound,
        "lt": lambda bound: created < bound,
        "lte": lambda bound: created <= bound,
    }
    return all(checks[operator](bound) for operator, bound in bounds)


def evidence_changes(params: dict[str, Any]) -> dict[str, str | None] | Response:
    """The evidence fields an update sets (an empty value clears one)."""
    evidence = params.get("evidence")
    if evidence is None or evidence == "":
        return {}
    if not isinstance(evidence, dict):
        return invalid("evidence", "Invalid hash")
    changes: dict[str, str | None] = {}
    for name, value in evidence.items():
        if name not in EVIDENCE_FIELDS or not isinstance(value, str):
            return unknown_parameter(f"evidence[{name}]")
        changes[name] = value or None
    return changes


def submit_flag(params: dict[str, Any]) -> bool | Response:
    raw = params.get("submit")
    if raw is None or raw == "":
        return False
    if raw not in ("true", "false"):
        return invalid("submit", "Invalid boolean")
    return raw == "true"


def metadata_changes(params: dict[str, Any]) -> dict[str, str] | Response | None:
    """Metadata to merge in (an empty value removes a key); None: `metadata=` clears it all."""
    metadata = params.get("metadata")
    if metadata == "":
        return None
    if metadata is None:
        return {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        return invalid("metadata", "Invalid hash")
    return metadata
