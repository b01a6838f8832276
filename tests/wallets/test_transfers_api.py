"""POST /api/v1/transfers and GET /api/v1/transfers/{id}."""

import uuid
from collections.abc import Callable
from typing import Any

import psycopg.errors
import pytest
from django.db import OperationalError
from rest_framework.test import APIClient

from notifications.models import Event
from paywave.api.errors import ApplicationError
from paywave.models import IdempotencyKey
from tests.factories import WalletFactory
from tests.wallets.helpers import balance, entries_of, post_transfer, transfer_body
from wallets import services
from wallets.integrity import ledger_problems
from wallets.models import Journal, JournalKind, Transfer, WalletStatus

Wallets = Callable[..., Any]


def _nothing_moved(*wallets: Any, balances: list[int]) -> None:
    assert [balance(wallet) for wallet in wallets] == balances
    assert not Transfer.objects.exists()
    assert not Journal.objects.filter(kind=JournalKind.TRANSFER).exists()
    assert not Event.objects.filter(type="transfer.completed").exists()
    assert ledger_problems() == []


@pytest.mark.django_db
def test_a_transfer_moves_the_money_in_one_journal(api: APIClient, wallet_of: Wallets) -> None:
    source, target = wallet_of(funds=1000), wallet_of(funds=50)

    response = post_transfer(api, transfer_body(source, target, 300))

    assert response.status_code == 201, response.json()
    body = response.json()
    assert body == {
        "id": body["id"],
        "from_wallet": str(source.pk),
        "to_wallet": str(target.pk),
        "amount": 300,
        "currency": "BRL",
        "description": "rent share",
        "status": "completed",
        "created_at": body["created_at"],
    }
    assert response["Location"] == f"/api/v1/transfers/{body['id']}"
    assert entries_of(source) == [(1000, 1000), (-300, 700)]
    assert entries_of(target) == [(50, 50), (300, 350)]
    journal = Journal.objects.get(kind=JournalKind.TRANSFER)
    assert str(journal.transfer_id) == body["id"]
    event = Event.objects.get(type="transfer.completed")
    assert (str(event.subject_id), event.data) == (body["id"], body)
    assert api.get(response["Location"]).json() == body
    assert ledger_problems() == []


@pytest.mark.django_db
def test_the_whole_balance_can_move(api: APIClient, wallet_of: Wallets) -> None:
    source, target = wallet_of(funds=1000), wallet_of()

    assert post_transfer(api, transfer_body(source, target, 1000)).status_code == 201

    assert (balance(source), balance(target)) == (0, 1000)


@pytest.mark.django_db
def test_the_smallest_amount_moves(api: APIClient, wallet_of: Wallets) -> None:
    source, target = wallet_of(funds=1), wallet_of()

    assert post_transfer(api, transfer_body(source, target, 1)).status_code == 201

    assert (balance(source), balance(target)) == (0, 1)


@pytest.mark.parametrize("amount", [0, -100])
@pytest.mark.django_db
def test_the_service_refuses_an_amount_below_one_by_itself(wallet_of: Wallets, amount: int) -> None:
    """Whatever calls it: the API's serializer refuses such amounts before it does."""
    source, target = wallet_of(funds=1000), wallet_of()

    with pytest.raises(ApplicationError) as refused:
        _transfer(source, target, amount)

    assert (refused.value.code, refused.value.message, refused.value.fields) == (
        "invalid_request",
        "The amount must be positive.",
        {"amount": "Must be > 0."},
    )
    _nothing_moved(source, target, balances=[1000, 0])


@pytest.mark.django_db
def test_a_transfer_made_without_a_description_has_an_empty_one(wallet_of: Wallets) -> None:
    source, target = wallet_of(funds=1000), wallet_of()

    assert _transfer(source, target, 100).description == ""


def _transfer(source: Any, target: Any, amount: int) -> Transfer:
    return services.transfer_create(
        client_id=str(source.client_id),
        from_wallet_id=source.pk,
        to_wallet_id=target.pk,
        amount=amount,
        currency=source.currency,
    )


@pytest.mark.django_db
def test_same_key_same_body_is_the_same_transfer(api: APIClient, wallet_of: Wallets) -> None:
    source, target = wallet_of(funds=1000), wallet_of()
    body = transfer_body(source, target, 300)

    first = post_transfer(api, body, key="t-1")
    second = post_transfer(api, body, key="t-1")

    assert (first.status_code, second.status_code) == (201, 201)
    assert second.json() == first.json()
    assert second["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first
    assert Transfer.objects.count() == 1
    assert (balance(source), balance(target)) == (700, 300)


@pytest.mark.django_db
def test_same_key_other_body_is_422(api: APIClient, wallet_of: Wallets) -> None:
    source, target = wallet_of(funds=1000), wallet_of()
    post_transfer(api, transfer_body(source, target, 300), key="t-1")

    response = post_transfer(api, transfer_body(source, target, 301), key="t-1")

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "idempotency_key_reused"
    assert Transfer.objects.count() == 1
    assert balance(source) == 700


@pytest.mark.django_db
def test_insufficient_funds_is_409_and_leaves_nothing_behind(
    api: APIClient, wallet_of: Wallets
) -> None:
    source, target = wallet_of(funds=299), wallet_of(funds=10)

    response = post_transfer(api, transfer_body(source, target, 300), key="t-1")

    assert response.status_code == 409
    assert response.json()["error"] == {
        "type": "conflict_error",
        "code": "insufficient_funds",
        "message": "The source wallet's balance is lower than the amount.",
        "fields": {"amount": "The balance of from_wallet is 299."},
    }
    _nothing_moved(source, target, balances=[299, 10])
    assert not IdempotencyKey.objects.exists()  # released: the client may try again


@pytest.mark.parametrize("frozen_side", ["source", "target"])
@pytest.mark.django_db
def test_a_frozen_wallet_on_either_side_is_409_and_leaves_nothing_behind(
    api: APIClient, wallet_of: Wallets, frozen_side: str
) -> None:
    source, target = wallet_of(funds=1000), wallet_of()
    frozen = source if frozen_side == "source" else target
    services.wallet_set_status(wallet_id=frozen.pk, status=WalletStatus.FROZEN, actor="test")

    response = post_transfer(api, transfer_body(source, target, 300))

    assert response.status_code == 409
    error = response.json()["error"]
    assert (error["code"], error["message"]) == (
        "wallet_frozen",
        "A frozen wallet cannot move money.",
    )
    side = "from_wallet" if frozen_side == "source" else "to_wallet"
    assert error["fields"] == {side: "This wallet is frozen."}
    _nothing_moved(source, target, balances=[1000, 0])


@pytest.mark.django_db
def test_a_currency_other_than_the_wallets_is_400(api: APIClient, wallet_of: Wallets) -> None:
    source, target = wallet_of(funds=1000), wallet_of(currency="USD")

    response = post_transfer(api, transfer_body(source, target, 300))
    wrong_body = post_transfer(
        api, transfer_body(source, wallet_of(), 300, currency="USD"), key="t-2"
    )

    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["code"], error["message"]) == ("currency_mismatch", "Both wallets must hold BRL.")
    assert error["fields"] == {
        "currency": "Must be the wallets' currency.",
        "to_wallet": "This wallet holds USD.",
    }
    assert wrong_body.status_code == 400
    assert wrong_body.json()["error"]["code"] == "currency_mismatch"
    assert wrong_body.json()["error"]["fields"] == {
        "currency": "Must be the wallets' currency.",
        "from_wallet": "This wallet holds BRL.",
        "to_wallet": "This wallet holds BRL.",
    }
    _nothing_moved(source, target, balances=[1000, 0])


@pytest.mark.django_db
def test_a_transfer_to_the_same_wallet_is_400(api: APIClient, wallet_of: Wallets) -> None:
    wallet = wallet_of(funds=1000)

    response = post_transfer(api, transfer_body(wallet, wallet, 300))

    assert response.status_code == 400
    assert response.json()["error"] == {
        "type": "invalid_request_error",
        "code": "same_wallet",
        "message": "A transfer needs two different wallets.",
        "fields": {"to_wallet": "Must be another wallet than from_wallet."},
    }
    _nothing_moved(wallet, balances=[1000])


@pytest.mark.parametrize("side", ["from_wallet", "to_wallet"])
@pytest.mark.django_db
def test_another_apps_wallet_is_404_like_one_that_does_not_exist(
    api: APIClient, wallet_of: Wallets, side: str
) -> None:
    mine, theirs = wallet_of(funds=1000), WalletFactory(funds=1000)
    body = transfer_body(mine, mine, 100) | {side: str(theirs.pk)}
    other = "to_wallet" if side == "from_wallet" else "from_wallet"
    body[other] = str(mine.pk)

    response = post_transfer(api, body, key="k-1")
    missing = post_transfer(api, body | {side: str(uuid.uuid4())}, key="k-2")

    assert response.status_code == missing.status_code == 404
    assert response.json() == missing.json()
    assert response.json()["error"]["code"] == "wallet_not_found"
    assert response.json()["error"]["fields"] == {side: "No such wallet."}
    assert (balance(mine), balance(theirs)) == (1000, 1000)
    assert not Transfer.objects.exists()


@pytest.mark.django_db
def test_another_apps_transfer_is_404(
    api: APIClient, other_api: APIClient, wallet_of: Wallets
) -> None:
    source, target = wallet_of(funds=1000), wallet_of()
    location = post_transfer(api, transfer_body(source, target, 300))["Location"]

    theirs = other_api.get(location)
    missing = api.get(f"/api/v1/transfers/{uuid.uuid4()}")

    assert theirs.status_code == missing.status_code == 404
    assert theirs.json() == missing.json()
    assert theirs.json()["error"]["code"] == "transfer_not_found"


@pytest.mark.django_db
def test_the_idempotency_key_is_required(api: APIClient, wallet_of: Wallets) -> None:
    source, target = wallet_of(funds=1000), wallet_of()

    response = post_transfer(api, transfer_body(source, target), key=None)

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "idempotency_key_required"
    assert not Transfer.objects.exists()


def _valid(overrides: dict[str, Any]) -> Callable[[Any, Any], dict[str, Any]]:
    return lambda source, target: transfer_body(source, target, 100) | overrides


BAD_BODIES = {
    "amount as a string": ("amount", _valid({"amount": "100"})),
    "amount zero": ("amount", _valid({"amount": 0})),
    "amount negative": ("amount", _valid({"amount": -100})),
    "amount fractional": ("amount", _valid({"amount": 1.5})),
    "amount boolean": ("amount", _valid({"amount": True})),
    "amount too large": ("amount", _valid({"amount": 10**12})),
    "amount huge": ("amount", _valid({"amount": 10**40})),
    "currency lower case": ("currency", _valid({"currency": "brl"})),
    "currency unsupported": ("currency", _valid({"currency": "XXX"})),
    "currency number": ("currency", _valid({"currency": 986})),
    "wallet not a uuid": ("from_wallet", _valid({"from_wallet": "wallet-1"})),
    "wallet a number": ("to_wallet", _valid({"to_wallet": 12345})),
    "wallet null": ("to_wallet", _valid({"to_wallet": None})),
    "description too long": ("description", _valid({"description": "x" * 256})),
    "description a card number": ("description", _valid({"description": "4242424242424242"})),
    "unknown field": ("fee", _valid({"fee": 1})),
    "missing amount": (
        "amount",
        lambda s, t: {k: v for k, v in transfer_body(s, t).items() if k != "amount"},
    ),
}


@pytest.mark.parametrize("case", BAD_BODIES.values(), ids=BAD_BODIES.keys())
@pytest.mark.django_db
def test_invalid_bodies_are_400_in_the_error_shape(
    api: APIClient, wallet_of: Wallets, case: tuple[str, Any]
) -> None:
    field, build = case
    source, target = wallet_of(funds=1000), wallet_of()

    response = post_transfer(api, build(source, target))

    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert set(error) == {"type", "code", "message", "fields"}
    assert error["type"] == "invalid_request_error"
    assert field in error["fields"]
    assert not Transfer.objects.exists()


@pytest.mark.parametrize(
    ("content", "content_type", "status"),
    [
        ("[1, 2]", "application/json", 400),
        ("{not json", "application/json", 400),
        ("amount=1", "application/x-www-form-urlencoded", 415),
    ],
)
@pytest.mark.django_db
def test_bodies_that_are_not_a_json_object_are_refused(
    api: APIClient, content: str, content_type: str, status: int
) -> None:
    response = api.post(
        "/api/v1/transfers", content, content_type=content_type, HTTP_IDEMPOTENCY_KEY="k"
    )

    assert response.status_code == status
    assert "error" in response.json()


@pytest.mark.django_db
def test_transfers_need_a_wallet_app_token(wallet_of: Wallets) -> None:
    source, target = wallet_of(funds=1000), wallet_of()

    response = post_transfer(APIClient(), transfer_body(source, target))

    assert response.status_code == 401
    assert not Transfer.objects.exists()


def _deadlock() -> OperationalError:
    error = OperationalError("deadlock detected")
    error.__cause__ = psycopg.errors.DeadlockDetected("deadlock detected")
    return error


@pytest.mark.django_db
def test_a_deadlock_is_retried_and_never_reaches_the_client(
    api: APIClient, wallet_of: Wallets, monkeypatch: pytest.MonkeyPatch
) -> None:
    source, target = wallet_of(funds=1000), wallet_of()
    real_lock = services.accounts_lock
    failures = [_deadlock()]

    def deadlocking_once(*args: Any, **kwargs: Any) -> Any:
        if failures:
            raise failures.pop()
        return real_lock(*args, **kwargs)

    monkeypatch.setattr(services, "accounts_lock", deadlocking_once)

    response = post_transfer(api, transfer_body(source, target, 300))

    assert response.status_code == 201
    assert (balance(source), balance(target)) == (700, 300)


@pytest.mark.django_db
def test_a_deadlock_that_persists_is_a_409_to_retry(
    api: APIClient, wallet_of: Wallets, monkeypatch: pytest.MonkeyPatch
) -> None:
    source, target = wallet_of(funds=1000), wallet_of()
    real_lock = services.accounts_lock

    def always_deadlocking(*args: Any, **kwargs: Any) -> Any:
        raise _deadlock()

    monkeypatch.setattr(services, "accounts_lock", always_deadlocking)
    response = post_transfer(api, transfer_body(source, target, 300), key="k")
    monkeypatch.setattr(services, "accounts_lock", real_lock)

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "ledger_busy"
    _nothing_moved(source, target, balances=[1000, 0])
    assert post_transfer(api, transfer_body(source, target, 300), key="k").status_code == 201
