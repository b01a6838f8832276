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
