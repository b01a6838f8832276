"""POST /api/v1/payments: a wallet_id names an active wallet of the app, in its currency."""

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from rest_framework.test import APIClient

from payments.models import Payment
from tests.factories import WalletFactory
from tests.helpers import card_body, pix_body, post_payment
from wallets.models import WalletStatus

Wallets = Callable[..., Any]


@pytest.mark.django_db
def test_the_apps_own_active_wallet_in_the_currency_is_accepted(
    api: APIClient, wallet_of: Wallets
) -> None:
    wallet = wallet_of()

    response = post_payment(api, pix_body(wallet_id=str(wallet.pk)))

    assert response.status_code == 202, response.json()
    assert response.json()["wallet_id"] == str(wallet.pk)


@pytest.mark.django_db
def test_another_apps_wallet_reads_like_a_missing_one(api: APIClient) -> None:
    theirs = WalletFactory()

    response = post_payment(api, pix_body(wallet_id=str(theirs.pk)), key="a")
    missing = post_payment(api, pix_body(wallet_id=str(uuid.uuid4())), key="b")

    assert response.status_code == missing.status_code == 400
    assert response.json() == missing.json()
    assert response.json()["error"]["fields"] == {"wallet_id": "No such wallet."}
    assert not Payment.objects.exists()


@pytest.mark.parametrize(
    ("wallet_fields", "body", "message"),
    [
        ({"status": WalletStatus.FROZEN}, pix_body(), "frozen"),
        ({"currency": "USD"}, pix_body(), "holds USD"),
        ({"currency": "BRL"}, card_body(currency="USD"), "holds BRL"),
    ],
)
@pytest.mark.django_db
def test_a_frozen_or_other_currency_wallet_is_400(
    api: APIClient,
    wallet_of: Wallets,
    wallet_fields: dict[str, Any],
    body: dict[str, Any],
    message: str,
) -> None:
    wallet = wallet_of(**wallet_fields)

    response = post_payment(api, body | {"wallet_id": str(wallet.pk)})

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert message in error["fields"]["wallet_id"]
    assert not Payment.objects.exists()


@pytest.mark.django_db
def test_a_refused_wallet_does_not_consume_the_idempotency_key(
    api: APIClient, wallet_of: Wallets
) -> None:
    assert post_payment(api, pix_body(wallet_id=str(uuid.uuid4())), key="k").status_code == 400

    response = post_payment(api, pix_body(wallet_id=str(wallet_of().pk)), key="k")

    assert response.status_code == 202
    assert "Idempotent-Replayed" not in response


@pytest.mark.django_db
def test_no_wallet_id_or_null_needs_no_wallet(api: APIClient) -> None:
    assert post_payment(api, pix_body(), key="a").status_code == 202
    assert post_payment(api, pix_body(wallet_id=None), key="b").status_code == 202
