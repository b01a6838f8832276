from typing import Any

from rest_framework.test import APIClient

from wallets.models import Account, Entry


def post_transfer(api: APIClient, body: dict[str, Any], key: str | None = "transfer-1") -> Any:
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key is not None else {}
    return api.post("/api/v1/transfers", body, format="json", **headers)


def post_wallet(api: APIClient, body: dict[str, Any], key: str | None = "wallet-1") -> Any:
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key is not None else {}
    return api.post("/api/v1/wallets", body, format="json", **headers)


def transfer_body(source: Any, target: Any, amount: int = 100, **overrides: Any) -> dict[str, Any]:
    body = {
        "from_wallet": str(source.pk),
        "to_wallet": str(target.pk),
        "amount": amount,
        "currency": source.currency,
        "description": "rent share",
    }
    body.update(overrides)
    return body


def balance(account: Any) -> int:
    return Account.objects.get(pk=account.pk).balance


def entries_of(account: Any) -> list[tuple[int, int]]:
    """(amount, balance_after) of the account's entries, oldest first."""
    return list(
        Entry.objects.filter(account_id=account.pk)
        .order_by("sequence")
        .values_list("amount", "balance_after")
    )
