"""The ledger's one way to move money: lock the accounts, then post a balanced journal.

Lock order: every writer locks the account rows it moves in one statement,
sorted by id (`accounts_lock`), after any payment row it holds. Two movements
touching the same accounts therefore wait for each other instead of
deadlocking; `retry_on_deadlock` is the belt to those braces.
"""

import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from typing import TypeVar
from uuid import UUID

from django.db import OperationalError, transaction
from django.utils import timezone

from paywave.api.errors import Conflict

from .models import NEGATIVE_ACCOUNT_KINDS, Account, Entry, Journal, Transfer

logger = logging.getLogger(__name__)

T = TypeVar("T")

# PostgreSQL's deadlock_detected and serialization_failure: safe to run the transaction again.
RETRYABLE_SQLSTATES = frozenset({"40P01", "40001"})


class InsufficientFunds(Conflict):
    code = "insufficient_funds"


class LedgerBusy(Conflict):
    code = "ledger_busy"


def system_account(*, kind: str, code: str, currency: str) -> Account:
    """The system account for (kind, code, currency), created on first use."""
    account, _ = Account.objects.get_or_create(
        kind=kind,
        code=code,
        currency=currency,
        defaults={"allow_negative": kind in NEGATIVE_ACCOUNT_KINDS},
    )
    return account


def accounts_lock(ids: Iterable[UUID], **filters: object) -> dict[UUID, Account]:
    """Lock the accounts (those of `ids` matching `filters`) in id order; call inside atomic."""
    rows = (
        Account.objects.select_for_update(no_key=True)
        .filter(pk__in=set(ids), **filters)
        .order_by("pk")
    )
    return {account.pk: account for account in rows}


def journal_post(
    *,
    kind: str,
    moves: Sequence[tuple[Account, int]],
    payment_id: UUID | None = None,
    refund_id: UUID | None = None,
    transfer: Transfer | None = None,
    dispute_id: UUID | None = None,
) -> list[Entry]:
    """Apply `moves` (locked account, signed amount) as one journal; returns its entries.

    Raises InsufficientFunds, writing nothing, if an account that may not go
    negative would. The caller's transaction must hold the accounts' locks.
    """
    totals: dict[str, int] = defaultdict(int)
    for account, amount in moves:
        if amount == 0:
            raise ValueError("a ledger entry moves a non-zero amount")
        totals[account.currency] += amount
    if len(moves) < 2 or any(totals.values()):
        raise ValueError(f"unbalanced journal: {dict(totals)}")
    if len({account.pk for account, _ in moves}) != len(moves):
        raise ValueError("one entry per account and journal")

    balances = [account.balance + amount for account, amount in moves]
    for (account, _), balance in zip(moves, balances, strict=True):
        if balance < 0 and not account.allow_negative:
            raise InsufficientFunds(
                "The wallet's balance is lower than the amount.",
                fields={"amount": f"The balance is {account.balance}."},
            )

    now = timezone.now()  # taken under the locks: entries of an account are in time order
    journal = Journal.objects.create(
        kind=kind,
        payment_id=payment_id,
        refund_id=refund_id,
        transfer=transfer,
        dispute_id=dispute_id,
        created_at=now,
    )
    entries = []
    for (account, amount), balance in zip(moves, balances, strict=True):
        account.balance = balance
        account.sequence += 1
        account.updated_at = now
        entries.append(
            Entry(
                journal=journal,
                account=account,
                amount=amount,
                balance_after=balance,
                sequence=account.sequence,
                created_at=now,
            )
        )
    Account.objects.bulk_update(
        [account for account, _ in moves], ["balance", "sequence", "updated_at"]
    )
    Entry.objects.bulk_create(entries)
    return entries


def _retryable(exc: OperationalError) -> bool:
    return getattr(exc.__cause__, "sqlstate", None) in RETRYABLE_SQLSTATES


def retry_on_deadlock(operation: Callable[[], T], *, attempts: int = 3) -> T:
    """Run `operation` in a transaction (a savepoint when nested), again on a deadlock.

    A deadlock that persists is a 409 `ledger_busy` for the client to retry, never a 500.
    """
    for attempt in range(1, attempts + 1):
        try:
            with transaction.atomic():
                return operation()
        except OperationalError as exc:
            if not _retryable(exc):
                raise
            if attempt == attempts:
                raise LedgerBusy(
                    "The wallets are busy with other movements; retry the request shortly."
                ) from exc
            logger.warning("ledger transaction retried after %s (attempt %d)", exc, attempt)
    raise AssertionError("unreachable")
