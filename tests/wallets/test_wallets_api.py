"""POST/GET /api/v1/wallets, GET /api/v1/wallets/{id} and its /entries."""

import base64
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import pytest
from rest_framework.test import APIClient

from tests.factories import WalletFactory
from tests.wallets.helpers import post_transfer, post_wallet, transfer_body
from wallets import services
from wallets.models import Account, Wallet, WalletStatus

Wallets = Callable[..., Any]


@pytest.mark.django_db
def test_create_opens_an_empty_active_wallet(api: APIClient, wallet_app: Any) -> None:
    response = post_wallet(api, {"currency": "BRL"})

    assert response.status_code == 201, response.json()
    body = response.json()
    assert body == {
        "id": body["id"],
        "currency": "BRL",
        "balance": 0,
        "status": "active",
        "created_at": body["created_at"],
    }
    assert response["Location"] == f"/api/v1/wallets/{body['id']}"
    wallet = Wallet.objects.get(pk=body["id"])
    assert (wallet.client_id, wallet.allow_negative) == (wallet_app.pk, False)
    assert api.get(response["Location"]).json() == body


@pytest.mark.django_db
def test_create_is_idempotent(api: APIClient) -> None:
    first = post_wallet(api, {"currency": "USD"}, key="w")
    second = post_wallet(api, {"currency": "USD"}, key="w")
    other = post_wallet(api, {"currency": "BRL"}, key="w")

    assert second.json() == first.json()
    assert second["Idempotent-Replayed"] == "true"
    assert other.status_code == 422
    assert Wallet.objects.count() == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "currency"),
        ({"currency": "brl"}, "currency"),
        ({"currency": "XXX"}, "currency"),
        ({"currency": 986}, "currency"),
        ({"currency": " BRL"}, "currency"),
        ({"currency": "BRL", "balance": 100}, "balance"),
    ],
)
@pytest.mark.django_db
def test_create_refuses_invalid_bodies(api: APIClient, body: dict[str, Any], field: str) -> None:
    response = post_wallet(api, body)

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert field in error["fields"]
    assert not Wallet.objects.exists()


@pytest.mark.django_db
def test_create_needs_an_idempotency_key(api: APIClient) -> None:
    response = post_wallet(api, {"currency": "BRL"}, key=None)

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "idempotency_key_required"


@pytest.mark.django_db
def test_list_shows_only_the_apps_wallets_newest_first(api: APIClient, wallet_of: Wallets) -> None:
    mine = [wallet_of(), wallet_of(currency="USD"), wallet_of(status=WalletStatus.FROZEN)]
    WalletFactory()  # another app's
    Account.objects.create(kind="clearing", code="stripe", currency="BRL", allow_negative=True)

    listed = api.get("/api/v1/wallets").json()

    assert [w["id"] for w in listed["results"]] == [str(w.pk) for w in reversed(mine)]
    assert listed["next"] is None
    assert listed["has_more"] is False
    usd = api.get("/api/v1/wallets?currency=USD").json()["results"]
    assert [w["id"] for w in usd] == [str(mine[1].pk)]
    frozen = api.get("/api/v1/wallets?status=frozen").json()["results"]
    assert [w["id"] for w in frozen] == [str(mine[2].pk)]


@pytest.mark.django_db
def test_list_pages_with_a_cursor(api: APIClient, wallet_of: Wallets) -> None:
    wallets = [wallet_of() for _ in range(5)]

    seen: list[str] = []
    url: str | None = "/api/v1/wallets?limit=2"
    while url:
        page = api.get(url).json()
        seen += [w["id"] for w in page["results"]]
        url = page["next"]

    assert seen == [str(w.pk) for w in reversed(wallets)]


@pytest.mark.parametrize(
    "query", ["status=closed", "currency=TOOLONG", "cursor=bz0wJnI9MCZwPW5vdC1hLWRhdGU="]
)
@pytest.mark.django_db
def test_list_refuses_bad_filters(api: APIClient, query: str) -> None:
    response = api.get(f"/api/v1/wallets?{query}")

    assert response.status_code == 400
    assert "error" in response.json()


@pytest.mark.django_db
def test_another_apps_wallet_is_404_like_a_missing_one(
    api: APIClient, other_api: APIClient, wallet_of: Wallets
) -> None:
    wallet = wallet_of(funds=100)

    for path in (f"/api/v1/wallets/{wallet.pk}", f"/api/v1/wallets/{wallet.pk}/entries"):
        theirs = other_api.get(path)
        missing = api.get(path.replace(str(wallet.pk), str(uuid.uuid4())))
        assert theirs.status_code == missing.status_code == 404
        assert theirs.json() == missing.json()
        assert theirs.json()["error"]["code"] == "wallet_not_found"


@pytest.mark.django_db
def test_entries_are_the_ledger_lines_newest_first(api: APIClient, wallet_of: Wallets) -> None:
    wallet, other = wallet_of(funds=1000), wallet_of()
    sent = post_transfer(api, transfer_body(wallet, other, 300), key="a").json()
    post_transfer(api, transfer_body(other, wallet, 100), key="b")
    payment_id = wallet.entries.get(sequence=1).journal.payment_id

    entries = api.get(f"/api/v1/wallets/{wallet.pk}/entries").json()

    assert entries["next"] is None
    lines = [
        (e["amount"], e["balance_after"], e["kind"], e["payment_id"], e["transfer_id"])
        for e in entries["results"]
    ]
    received = Wallet.objects.get(pk=wallet.pk).entries.get(sequence=3).journal.transfer_id
    assert lines == [
        (100, 800, "transfer", None, str(received)),
        (-300, 700, "transfer", None, sent["id"]),
        (1000, 1000, "payment_credit", str(payment_id), None),
    ]
    assert set(entries["results"][0]) == {
        "id",
        "amount",
        "balance_after",
        "kind",
        "payment_id",
        "refund_id",
        "transfer_id",
        "dispute_id",
        "created_at",
    }
    assert api.get(f"/api/v1/wallets/{wallet.pk}").json()["balance"] == 800


@pytest.mark.django_db
def test_entries_page_with_a_cursor(api: APIClient, wallet_of: Wallets) -> None:
    wallet, other = wallet_of(funds=1000), wallet_of()
    for number in range(6):
        services.transfer_create(
            client_id=str(wallet.client_id),
            from_wallet_id=wallet.pk,
            to_wallet_id=other.pk,
            amount=10 + number,
            currency="BRL",
        )

    amounts: list[int] = []
    url: str | None = f"/api/v1/wallets/{wallet.pk}/entries?limit=3"
    while url:
        page = api.get(url).json()
        amounts += [e["amount"] for e in page["results"]]
        url = page["next"]

    assert amounts == [-15, -14, -13, -12, -11, -10, 1000]


def _cursor(position: str) -> str:
    return base64.b64encode(urlencode({"o": "0", "r": "0", "p": position}).encode()).decode()


@pytest.mark.parametrize("position", ["2026-01-01T00:00:00Z", "x", "-1", "9" * 40])
@pytest.mark.django_db
def test_entries_refuse_an_edited_cursor(api: APIClient, wallet_of: Wallets, position: str) -> None:
    wallet = wallet_of(funds=10)

    response = api.get(f"/api/v1/wallets/{wallet.pk}/entries?cursor={_cursor(position)}")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_cursor"
