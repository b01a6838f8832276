"""The payment as wallet apps see it (API.md), shared by the API and the cache."""

import re
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from paywave.api.pagination import PageQuerySerializer, QueryDateTimeField
from paywave.api.serializer_fields import (
    AmountField,
    CountryField,
    CurrencyField,
    StrictBooleanField,
    StrictCharField,
    StrictIntegerField,
    StrictSerializer,
    StrictUUIDField,
    StringMapField,
)
from paywave.values.cards import looks_like_card_number
from paywave.values.countries import COUNTRY_CODES
from paywave.values.money import supported_currencies
from paywave.values.tax_ids import normalize_tax_id, tax_id_kind

from .hosted_tokens import hosted_url
from .models import (
    AttemptOutcome,
    ParkedReason,
    Payment,
    PaymentAttempt,
    PaymentMethod,
    PaymentStatus,
)

_TOKEN_PATTERN = r"^[A-Za-z0-9_\-]{3,255}$"  # noqa: S105 (a pattern, not a secret)
_TOKEN = re.compile(_TOKEN_PATTERN)


@extend_schema_field({"type": "string", "pattern": _TOKEN_PATTERN})
class CardTokenField(StrictCharField):
    """Checked by CardInputSerializer.validate_token (card numbers first, then the pattern)."""


class PayerOutputSerializer(serializers.Serializer):
    name = serializers.CharField()
    email = serializers.CharField(allow_null=True)
    tax_id_last4 = serializers.CharField(allow_null=True)
    country = serializers.CharField()


class PixOutputSerializer(serializers.Serializer):
    txid = serializers.CharField(allow_null=True)
    qr_code = serializers.CharField(allow_null=True, help_text="The BR Code (PIX copia e cola).")
    qr_code_url = serializers.CharField(allow_null=True)
    expires_in = serializers.IntegerField()
    expires_at = serializers.DateTimeField(allow_null=True)


class CardOutputSerializer(serializers.Serializer):
    brand = serializers.CharField(allow_null=True)
    last4 = serializers.CharField(allow_null=True)


class PayPalOutputSerializer(serializers.Serializer):
    order_id = serializers.CharField(allow_null=True, help_text="PayPal's order id.")
    capture_id = serializers.CharField(
        allow_null=True, help_text="PayPal's capture id, once the money was taken."
    )
    approval_expires_at = serializers.DateTimeField(
        allow_null=True, help_text="Not approved by then, the payment is `expired`."
    )


class AttemptOutputSerializer(serializers.Serializer):
    gateway = serializers.CharField()
    number = serializers.IntegerField()
    outcome = serializers.ChoiceField(choices=AttemptOutcome.choices)
    error = serializers.CharField()
    latency_ms = serializers.IntegerField()
    at = serializers.DateTimeField()


class PaymentOutputSerializer(serializers.Serializer):
    """The payment object of API.md, for the OpenAPI schema; `payment_document` builds it."""

    id = serializers.UUIDField()
    status = serializers.ChoiceField(choices=PaymentStatus.choices)
    amount = serializers.IntegerField(help_text="Minor units of `currency`.")
    currency = serializers.CharField()
    method = serializers.ChoiceField(choices=PaymentMethod.choices)
    description = serializers.CharField(allow_blank=True)
    metadata = serializers.DictField(child=serializers.CharField(allow_blank=True))
    payer = PayerOutputSerializer()
    wallet_id = serializers.UUIDField(allow_null=True)
    gateway = serializers.CharField(allow_null=True)
    failure_code = serializers.CharField(allow_null=True)
    failure_message = serializers.CharField(allow_null=True)
    parked_reason = serializers.ChoiceField(
        choices=ParkedReason.choices,
        allow_null=True,
        help_text="Set while PayWave holds the payment in its status until a gateway answers "
        "or a person looks (see the API guide); null otherwise.",
    )
    amount_refunded = serializers.IntegerField()
    pix = PixOutputSerializer(allow_null=True)
    card = CardOutputSerializer(allow_null=True)
    paypal = PayPalOutputSerializer(allow_null=True)
    next_action = serializers.DictField(
        allow_null=True,
        help_text="What the payer must do next, or null. A hosted payment that can still be "
        'paid: `{"type": "redirect", "url": <the hosted payment page>}`; otherwise the '
        "gateway's page (3-D Secure, PayPal approval): "
        '`{"type": "redirect_to_url", "url", "redirect_to_url": {"url", "return_url"}}`.',
    )
    return_url = serializers.CharField(allow_null=True)
    cancel_url = serializers.CharField(allow_null=True)
    hosted = serializers.BooleanField(
        help_text="Whether the payer pays on PayWave's hosted payment page (`next_action`)."
    )
    attempts = AttemptOutputSerializer(many=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class PaymentPageOutputSerializer(serializers.Serializer):
    results = PaymentOutputSerializer(many=True)
    next = serializers.URLField(allow_null=True, help_text="The next page, or null.")
    has_more = serializers.BooleanField(help_text="Whether a next page exists.")


def iso_timestamp(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _attempt_document(attempt: PaymentAttempt) -> dict[str, Any]:
    return {
        "gateway": attempt.gateway,
        "number": attempt.number,
        "outcome": attempt.outcome,
        "error": attempt.error_message,
        "latency_ms": attempt.latency_ms,
        "at": iso_timestamp(attempt.created_at),
    }


# A hosted payment sends its payer to the hosted page while it can still be paid there.
PAYABLE_STATUSES = frozenset(
    {
        PaymentStatus.PENDING,
        PaymentStatus.PROCESSING,
        PaymentStatus.REQUIRES_ACTION,
        PaymentStatus.AWAITING_PAYMENT,
    }
)


def _next_action(payment: Payment) -> dict[str, Any] | None:
    # The hosted page itself follows the gateway's next_action (3-D Secure, PayPal).
    if payment.hosted and payment.status in PAYABLE_STATUSES:
        return {"type": "redirect", "url": hosted_url(payment)}
    return payment.next_action


def payment_document(
    payment: Payment, attempts: Iterable[PaymentAttempt] | None = None
) -> dict[str, Any]:
    """The payment object wallet apps see: the API's answer and what the cache keeps.

    `attempts` defaults to the payment's own (prefetch them when serializing many).
    """
    attempts = payment.attempts.all() if attempts is None else attempts
    pix = None
    if payment.method == PaymentMethod.PIX:
        pix = {
            "txid": payment.pix_txid or None,
            "qr_code": payment.pix_qr_code or None,
            "qr_code_url": (
                reverse("payment-qrcode", kwargs={"payment_id": payment.id})
                if payment.pix_qr_code
                else None
            ),
            "expires_in": payment.pix_expires_in,
            "expires_at": iso_timestamp(payment.pix_expires_at),
        }
    card = None
    if payment.method == PaymentMethod.CARD:
        card = {"brand": payment.card_brand or None, "last4": payment.card_last4 or None}
    paypal = None
    if payment.method == PaymentMethod.PAYPAL:
        paypal = {
            "order_id": payment.gateway_reference or None,
            "capture_id": payment.capture_reference or None,
            "approval_expires_at": iso_timestamp(payment.approval_expires_at),
        }
    return {
        "id": str(payment.id),
        "status": payment.status,
        "amount": payment.amount,
        "currency": payment.currency,
        "method": payment.method,
        "description": payment.description,
        "metadata": payment.metadata,
        "payer": {
            "name": payment.payer_name,
            "email": payment.payer_email or None,
            "tax_id_last4": payment.payer_tax_id_last4 or None,
            "country": payment.payer_country,
        },
        "wallet_id": str(payment.wallet_id) if payment.wallet_id else None,
        "gateway": payment.gateway or None,
        "failure_code": payment.failure_code or None,
        "failure_message": payment.failure_message or None,
        "parked_reason": payment.parked_reason or None,
        "amount_refunded": payment.amount_refunded,
        "pix": pix,
        "card": card,
        "paypal": paypal,
        "next_action": _next_action(payment),
        "return_url": payment.return_url or None,
        "cancel_url": payment.cancel_url or None,
        "hosted": payment.hosted,
        "attempts": [_attempt_document(attempt) for attempt in attempts],
        "created_at": iso_timestamp(payment.created_at),
        "updated_at": iso_timestamp(payment.updated_at),
    }


# --- Input -------------------------------------------------------------------

_CARD_NUMBER_MESSAGE = (
    "Card numbers are never accepted: tokenize the card with the gateway and send its token."
)


@extend_schema_field(
    {"type": "string", "format": "uri", "maxLength": 2048, "pattern": "^[Hh][Tt][Tt][Pp][Ss]?://"}
)
class ReturnURLField(StrictCharField):
    """An absolute http(s) URL, as a JSON string (validate_return_url says which)."""


def validate_return_url(value: str) -> str:
    parts = urlsplit(value)
    schemes = ("https", "http") if settings.PAYWAVE_SANDBOX else ("https",)
    if parts.scheme not in schemes or not parts.hostname or parts.username or parts.password:
        allowed = " or ".join(schemes)
        raise serializers.ValidationError(f"An absolute {allowed} URL, without credentials.")
    return value


def _texts_to_scan(attrs: dict[str, Any]) -> dict[str, str]:
    """The free-text values of a request by field path; metadata keys count as text too."""
    texts = {
        "description": attrs.get("description", ""),
        "return_url": attrs.get("return_url", ""),
        "cancel_url": attrs.get("cancel_url", ""),
    }
    for key, value in attrs.get("metadata", {}).items():
        # A card number may be the key itself: report it under `metadata`, never by name.
        texts["metadata"] = f"{texts.get('metadata', '')} {key}"
        texts[f"metadata.{key}"] = value
    return texts


def _reject_card_numbers(values: dict[str, str]) -> None:
    found = [path for path, text in values.items() if looks_like_card_number(text)]
    if found:
        raise serializers.ValidationError(
            {
                path: serializers.ErrorDetail(_CARD_NUMBER_MESSAGE, code="card_number_forbidden")
                for path in found
            }
        )


class PayerInputSerializer(StrictSerializer):
    name = StrictCharField(max_length=140)
    email = serializers.EmailField(max_length=254, required=False)
    tax_id = StrictCharField(
        max_length=20, required=False, help_text="CPF or CNPJ; required for PIX."
    )
    country = CountryField(help_text="ISO 3166-1 alpha-2.")

    def validate_country(self, value: str) -> str:
        if value not in COUNTRY_CODES:
            raise serializers.ValidationError("Not an ISO 3166-1 alpha-2 country code (e.g. BR).")
        return value

    def validate_tax_id(self, value: str) -> str:
        normalized = normalize_tax_id(value)
        if tax_id_kind(normalized) is None:
            raise serializers.ValidationError("Not a valid CPF or CNPJ (check digits differ).")
        return normalized


class CardInputSerializer(StrictSerializer):
    unknown_field_message = _CARD_NUMBER_MESSAGE
    token = CardTokenField(
        max_length=255, help_text="The gateway's token for the card, e.g. pm_card_visa."
    )

    def validate_token(self, value: str) -> str:
        if looks_like_card_number(value):
            raise serializers.ValidationError(_CARD_NUMBER_MESSAGE, code="card_number_forbidden")
        if not _TOKEN.fullmatch(value):
            raise serializers.ValidationError("Not a gateway card token.")
        return value


class PixInputSerializer(StrictSerializer):
    expires_in = StrictIntegerField(
        min_value=60, max_value=7 * 86400, required=False, help_text="Seconds; default 3600."
    )


class PaymentCreateInputSerializer(StrictSerializer):
    amount = AmountField(help_text="Minor units: 1050 is 10.50.")
    currency = CurrencyField(help_text="ISO 4217; PIX payments are in BRL.")
    method = serializers.ChoiceField(choices=PaymentMethod.choices)
    payer = PayerInputSerializer()
    card = CardInputSerializer(required=False)
    pix = PixInputSerializer(required=False)
    wallet_id = StrictUUIDField(required=False, allow_null=True)
    description = StrictCharField(max_length=255, required=False, allow_blank=True)
    metadata = StringMapField(required=False)
    return_url = ReturnURLField(
        max_length=2048,
        required=False,
        help_text="Where the payer comes back to the wallet app after a gateway's page "
        "(3-D Secure, PayPal) or the hosted payment page (required for PayPal and for "
        "hosted payments): an absolute https URL (http too in the sandbox).",
    )
    hosted = StrictBooleanField(
        required=False,
        default=False,
        help_text="Pay on PayWave's hosted payment page: `next_action` sends the payer there "
        "while the payment can be paid; needs `return_url`.",
    )
    cancel_url = ReturnURLField(
        max_length=2048,
        required=False,
        help_text="PayPal only: where a payer who cancels at PayPal comes back to "
        "(default: return_url).",
    )

    def validate_return_url(self, value: str) -> str:
        return validate_return_url(value)

    def validate_cancel_url(self, value: str) -> str:
        return validate_return_url(value)

    schema_rules = [
        {
            "if": {"properties": {"method": {"const": PaymentMethod.PIX}}},
            "then": {
                "properties": {
                    "currency": {"const": "BRL"},
                    "payer": {"required": ["email", "tax_id"]},
                    "card": False,
                    "cancel_url": False,
                }
            },
        },
        {
            "if": {"properties": {"method": {"const": PaymentMethod.CARD}}},
            "then": {"required": ["card"], "properties": {"pix": False, "cancel_url": False}},
        },
        {
            "if": {"properties": {"method": {"const": PaymentMethod.PAYPAL}}},
            "then": {"required": ["return_url"], "properties": {"pix": False, "card": False}},
        },
        {
            "if": {"properties": {"hosted": {"const": True}}, "required": ["hosted"]},
            "then": {"required": ["return_url"]},
        },
    ]

    def validate_amount(self, value: int) -> int:
        maximum = settings.PAYWAVE_MAX_AMOUNT
        if value > maximum:
            raise serializers.ValidationError(f"Must be at most {maximum} minor units.")
        return value

    def validate_currency(self, value: str) -> str:
        supported = supported_currencies()
        if value not in supported:
            raise serializers.ValidationError(
                "Unsupported currency; use one of " + ", ".join(sorted(supported)) + "."
            )
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        errors: dict[str, str] = {}
        payer = attrs["payer"]
        if attrs["method"] != PaymentMethod.PAYPAL and "cancel_url" in attrs:
            errors["cancel_url"] = "Only for PayPal payments."
        if attrs["method"] == PaymentMethod.CARD:
            if "card" not in attrs:
                errors["card"] = "Required for card payments."
            if "pix" in attrs:
                errors["pix"] = "Only for PIX payments."
        elif attrs["method"] == PaymentMethod.PAYPAL:
            if "card" in attrs:
                errors["card"] = "Not allowed for PayPal payments."
            if "pix" in attrs:
                errors["pix"] = "Only for PIX payments."
            if not attrs.get("return_url"):
                errors["return_url"] = "Required for PayPal payments: PayPal sends the payer back."
        else:
            if "card" in attrs:
                errors["card"] = "Not allowed for PIX payments."
            if attrs["currency"] != "BRL":
                errors["currency"] = "PIX payments are in BRL."
            if not payer.get("tax_id"):
                errors["payer.tax_id"] = "Required for PIX payments (CPF or CNPJ)."
            if not payer.get("email"):
                errors["payer.email"] = "Required for PIX payments."
        if attrs.get("hosted") and not attrs.get("return_url"):
            errors.setdefault(
                "return_url",
                "Required for hosted payments: the hosted page sends the payer back there.",
            )
        if errors:
            raise serializers.ValidationError(errors)
        texts = {"payer.name": payer["name"], "payer.email": payer.get("email", "")}
        _reject_card_numbers(texts | _texts_to_scan(attrs))
        return attrs


class PaymentUpdateInputSerializer(StrictSerializer):
    unknown_field_message = "This field cannot be changed; only description and metadata can."
    description = StrictCharField(max_length=255, allow_blank=True)
    metadata = StringMapField()

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        _reject_card_numbers(_texts_to_scan(attrs))
        return attrs


class PaymentListFilterSerializer(PageQuerySerializer):
    status = serializers.ChoiceField(choices=PaymentStatus.choices, required=False)
    method = serializers.ChoiceField(choices=PaymentMethod.choices, required=False)
    created_after = QueryDateTimeField(
        required=False, help_text="Only payments created at or after this time (RFC 3339)."
    )
    created_before = QueryDateTimeField(
        required=False,
        help_text="Only payments created before this time (RFC 3339); must be later than "
        "`created_after` when both are given (else 400).",
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        after, before = attrs.get("created_after"), attrs.get("created_before")
        if after and before and after >= before:
            raise serializers.ValidationError({"created_before": "Must be after created_after."})
        return attrs
