"""Wallets, ledger entries and transfers as wallet apps see them (API.md), and API input."""

from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from rest_framework import serializers

from paywave.api.pagination import PageQuerySerializer
from paywave.api.serializer_fields import (
    AmountField,
    CurrencyField,
    StrictCharField,
    StrictSerializer,
    StrictUUIDField,
)
from paywave.values.cards import looks_like_card_number
from paywave.values.money import supported_currencies

from .models import Account, Entry, JournalKind, Transfer, TransferStatus, WalletStatus


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def wallet_document(wallet: Account) -> dict[str, Any]:
    return {
        "id": str(wallet.id),
        "currency": wallet.currency,
        "balance": wallet.balance,
        "status": wallet.status,
        "created_at": _iso(wallet.created_at),
    }


def entry_document(entry: Entry) -> dict[str, Any]:
    """A wallet's ledger line; `entry.journal` should be selected with it."""
    journal = entry.journal
    return {
        "id": str(entry.id),
        "amount": entry.amount,
        "balance_after": entry.balance_after,
        "kind": journal.kind,
        "payment_id": str(journal.payment_id) if journal.payment_id else None,
        "refund_id": str(journal.refund_id) if journal.refund_id else None,
        "transfer_id": str(journal.transfer_id) if journal.transfer_id else None,
        "dispute_id": str(journal.dispute_id) if journal.dispute_id else None,
        "created_at": _iso(entry.created_at),
    }


def transfer_document(transfer: Transfer) -> dict[str, Any]:
    return {
        "id": str(transfer.id),
        "from_wallet": str(transfer.from_wallet_id),
        "to_wallet": str(transfer.to_wallet_id),
        "amount": transfer.amount,
        "currency": transfer.currency,
        "description": transfer.description,
        "status": transfer.status,
        "created_at": _iso(transfer.created_at),
    }


# --- Output, for the OpenAPI schema (the documents above are the answers) ---------


class WalletOutputSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    currency = serializers.CharField()
    balance = serializers.IntegerField(help_text="Minor units of `currency`; never negative.")
    status = serializers.ChoiceField(choices=WalletStatus.choices)
    created_at = serializers.DateTimeField()


class WalletPageOutputSerializer(serializers.Serializer):
    results = WalletOutputSerializer(many=True)
    next = serializers.URLField(allow_null=True, help_text="The next page, or null.")
    has_more = serializers.BooleanField(help_text="Whether a next page exists.")


class EntryOutputSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    amount = serializers.IntegerField(help_text="Signed minor units: credit > 0, debit < 0.")
    balance_after = serializers.IntegerField()
    kind = serializers.ChoiceField(choices=JournalKind.choices)
    payment_id = serializers.UUIDField(allow_null=True)
    refund_id = serializers.UUIDField(allow_null=True)
    transfer_id = serializers.UUIDField(allow_null=True)
    dispute_id = serializers.UUIDField(allow_null=True)
    created_at = serializers.DateTimeField()


class EntryPageOutputSerializer(serializers.Serializer):
    results = EntryOutputSerializer(many=True)
    next = serializers.URLField(allow_null=True, help_text="The next page, or null.")
    has_more = serializers.BooleanField(help_text="Whether a next page exists.")


class TransferOutputSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    from_wallet = serializers.UUIDField()
    to_wallet = serializers.UUIDField()
    amount = serializers.IntegerField(help_text="Minor units of `currency`.")
    currency = serializers.CharField()
    description = serializers.CharField(allow_blank=True)
    status = serializers.ChoiceField(choices=TransferStatus.choices)
    created_at = serializers.DateTimeField()


# --- Input -------------------------------------------------------------------------


def _validate_currency(value: str) -> str:
    supported = supported_currencies()
    if value not in supported:
        raise serializers.ValidationError(
            "Unsupported currency; use one of " + ", ".join(sorted(supported)) + "."
        )
    return value


class WalletCreateInputSerializer(StrictSerializer):
    currency = CurrencyField(help_text="ISO 4217.")

    def validate_currency(self, value: str) -> str:
        return _validate_currency(value)


class WalletListFilterSerializer(PageQuerySerializer):
    status = serializers.ChoiceField(choices=WalletStatus.choices, required=False)
    currency = CurrencyField(required=False)

    def validate_currency(self, value: str) -> str:
        return _validate_currency(value)


class TransferCreateInputSerializer(StrictSerializer):
    from_wallet = StrictUUIDField(help_text="The wallet the money leaves.")
    to_wallet = StrictUUIDField(help_text="Another wallet of the same wallet app.")
    amount = AmountField(help_text="Minor units: 1050 is 10.50.")
    currency = CurrencyField(help_text="Both wallets' currency.")
    description = StrictCharField(max_length=255, required=False, allow_blank=True)

    def validate_amount(self, value: int) -> int:
        maximum = settings.PAYWAVE_MAX_AMOUNT
        if value > maximum:
            raise serializers.ValidationError(f"Must be at most {maximum} minor units.")
        return value

    def validate_currency(self, value: str) -> str:
        return _validate_currency(value)

    def validate_description(self, value: str) -> str:
        if looks_like_card_number(value):
            raise serializers.ValidationError(
                "Card numbers are never accepted.", code="card_number_forbidden"
            )
        return value
