"""journal_post: the one way money moves in the ledger, checked before anything is written."""

from collections.abc import Callable
from typing import Any

import pytest
from django.db import OperationalError, connection, transaction

from tests.factories import PaymentFactory, WalletFactory
from wallets.ledger import (
    InsufficientFunds,
    LedgerBusy,
    accounts_lock,
    journal_post,
    retry_on_deadlock,
    system_account,
)
from wallets.models import Account, AccountKind, Entry, Journal, JournalKind

pytestmark = pytest.mark.django_db


@pytest.fixture
def accounts(db: Any) -> tuple[Any, Any, Any]:
    """A wallet holding 1000, an empty one, and a gateway's clearing account (BRL)."""
    rich, empty = WalletFactory(funds=1000), WalletFactory()
    clearing = system_account(kind=AccountKind.CLEARING, code="mercadopago", currency="BRL")
    return rich, empty, clearing


def post(moves: list[tuple[Any, int]]) -> list[Entry]:
    """Post `moves` as a payment's credit journal (a kind whose reference is simple to make)."""
    with transaction.atomic():
        locked = accounts_lock([account.pk for account, _ in moves])
        return journal_post(
            kind=JournalKind.PAYMENT_CREDIT,
            moves=[(locked[account.pk], amount) for account, amount in moves],
            payment_id=PaymentFactory().pk,
        )


def test_a_journal_moves_the_balances_and_records_each_entry(accounts: Any) -> None:
    rich, empty, _ = accounts
    journals_before = Journal.objects.count()

    entries = post([(rich, -300), (empty, 300)])
    post([(rich, -200), (empty, 200)])

    rich.refresh_from_db()
    empty.refresh_from_db()
    assert (rich.balance, empty.balance) == (500, 500)
    assert [(e.amount, e.balance_after) for e in entries] == [(-300, 700), (300, 300)]
    stored = Entry.objects.filter(account=empty).order_by("sequence")
    assert [(e.amount, e.balance_after, e.sequence) for e in stored] == [
        (300, 300, 1),
        (200, 500, 2),
    ]
    assert rich.sequence == 3  # its credit, then two debits
    assert Journal.objects.count() == journals_before + 2


@pytest.mark.parametrize(
    ("moves", "message"),
    [
        ([(0, -100), (1, 100), (2, 0)], "a ledger entry moves a non-zero amount"),
        ([(0, -100), (1, 99)], "unbalanced journal: {'BRL': -1}"),
        ([(0, 100)], "unbalanced journal: {'BRL': 100}"),
        ([(0, -100), (0, 100)], "one entry per account and journal"),
    ],
    ids=["a zero entry", "unbalanced", "a single entry", "one account twice"],
)
def test_a_malformed_journal_is_refused_and_writes_nothing(
    accounts: Any, moves: list[tuple[int, int]], message: str
) -> None:
    before = (Journal.objects.count(), Entry.objects.count())

    with pytest.raises(ValueError, match=f"^{message}$".replace("{", r"\{").replace("}", r"\}")):
        post([(accounts[index], amount) for index, amount in moves])

    assert (Journal.objects.count(), Entry.objects.count()) == before


def test_a_wallet_never_goes_below_zero_a_clearing_account_does(accounts: Any) -> None:
    rich, empty, clearing = accounts

    with pytest.raises(InsufficientFunds) as refused:
        post([(empty, -1), (rich, 1)])

    assert str(refused.value) == "The wallet's balance is lower than the amount."
    assert refused.value.fields == {"amount": "The balance is 0."}
    empty.refresh_from_db()
    assert (empty.balance, empty.sequence) == (0, 0)

    post([(clearing, -50), (empty, 50)])
    clearing.refresh_from_db()
    assert clearing.balance == -1050  # the first credit's 1000, and these 50


def test_a_movement_is_one_instant_its_journal_its_entries_its_accounts(accounts: Any) -> None:
    """A statement dates an entry by its journal, and the ledger orders entries by it."""
    rich, empty, _ = accounts

    entries = post([(rich, -300), (empty, 300)])

    journal = Journal.objects.get(pk=entries[0].journal_id)
    stored = Entry.objects.filter(journal=journal)
    changed = Account.objects.filter(pk__in=[rich.pk, empty.pk])
    assert {entry.created_at for entry in stored} == {journal.created_at}
    assert {account.updated_at for account in changed} == {journal.created_at}


def test_only_the_accounts_asked_for_are_locked(accounts: Any) -> None:
    rich, _, clearing = accounts

    with transaction.atomic():
        locked = accounts_lock([rich.pk, rich.pk, clearing.pk], kind=AccountKind.WALLET)

    assert list(locked) == [rich.pk]


# Deadlocks: PostgreSQL's own errors, raised by the database in the operation (`services`:
# only PostgreSQL raises them; SQLite would fail the statement for another reason).


@pytest.mark.services
def test_a_deadlock_is_retried_until_the_movement_goes_through() -> None:
    attempts: list[int] = []

    def operation() -> str:
        attempts.append(len(attempts) + 1)
        if len(attempts) < 3:
            _database_error("40P01")  # deadlock_detected
        return "moved"

    assert retry_on_deadlock(operation) == "moved"
    assert attempts == [1, 2, 3]


@pytest.mark.services
@pytest.mark.parametrize("sqlstate", ["40P01", "40001"], ids=["deadlock", "serialization"])
def test_a_deadlock_that_persists_is_ledger_busy_after_three_attempts(sqlstate: str) -> None:
    attempts: list[int] = []

    def operation() -> None:
        attempts.append(len(attempts) + 1)
        _database_error(sqlstate)

    with pytest.raises(LedgerBusy) as raised:
        retry_on_deadlock(operation)

    assert attempts == [1, 2, 3]
    assert (raised.value.status_code, raised.value.code) == (409, "ledger_busy")
    assert raised.value.message == (
        "The wallets are busy with other movements; retry the request shortly."
    )


@pytest.mark.parametrize(
    "error",
    [
        pytest.param(
            lambda: _database_error("57014"), id="query canceled", marks=pytest.mark.services
        ),
        pytest.param(
            lambda: _raise(OperationalError("connection lost")), id="no database error behind it"
        ),
    ],
)
def test_another_operational_error_is_raised_at_once(error: Callable[[], None]) -> None:
    attempts: list[int] = []

    def operation() -> None:
        attempts.append(len(attempts) + 1)
        error()

    with pytest.raises(OperationalError):
        retry_on_deadlock(operation)

    assert attempts == [1]


def _database_error(sqlstate: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"DO $$ BEGIN RAISE EXCEPTION 'raised' USING ERRCODE = '{sqlstate}'; END $$")


def _raise(error: Exception) -> None:
    raise error
