"""The ledger's invariants, checked from scratch (`manage.py check_ledger`, daily beat task)."""

from django.db.models import Count, F, OuterRef, Q, Subquery, Sum, Window
from django.db.models.functions import Coalesce

from .models import Account, Entry, Journal

# Enough to act on; the count says how many there were.
MAX_REPORTED_PER_CHECK = 50


def ledger_problems() -> list[str]:
    """Every broken invariant, one line each; empty when the ledger is sound."""
    problems: list[str] = []
    for check in (
        _unbalanced_journals,
        _short_journals,
        _balances_unlike_entries,
        _running_balances_wrong,
        _negative_balances,
        _currencies_not_summing_to_zero,
    ):
        problems.extend(check())
    return problems


def _limited(lines: list[str], total: int, what: str) -> list[str]:
    if total > len(lines):
        lines.append(f"... {total - len(lines)} more {what}")
    return lines


def _unbalanced_journals() -> list[str]:
    rows = (
        Entry.objects.values("journal_id", "account__currency")
        .annotate(total=Sum("amount"))
        .exclude(total=0)
        .order_by("journal_id")
    )
    total = rows.count()
    return _limited(
        [
            f"journal {row['journal_id']}: {row['account__currency']} entries sum to "
            f"{row['total']}, not 0"
            for row in rows[:MAX_REPORTED_PER_CHECK]
        ],
        total,
        "unbalanced journals",
    )


def _short_journals() -> list[str]:
    rows = Journal.objects.annotate(lines=Count("entries")).filter(lines__lt=2).order_by("id")
    total = rows.count()
    return _limited(
        [
            f"journal {journal.pk}: {journal.lines} entries, a movement needs at least 2"
            for journal in rows[:MAX_REPORTED_PER_CHECK]
        ],
        total,
        "short journals",
    )


def _balances_unlike_entries() -> list[str]:
    last_entry = Entry.objects.filter(account=OuterRef("pk")).order_by("-sequence")
    rows = (
        Account.objects.annotate(
            entries_total=Coalesce(Sum("entries__amount"), 0),
            entries_count=Count("entries"),
            last_balance_after=Subquery(last_entry.values("balance_after")[:1]),
            last_sequence=Subquery(last_entry.values("sequence")[:1]),
        )
        .filter(
            ~Q(entries_total=F("balance"))
            | ~Q(entries_count=F("sequence"))
            | ~Q(last_sequence=F("sequence"))
            | ~Q(last_balance_after=F("balance"))
            | (Q(last_balance_after__isnull=True) & ~Q(balance=0))
        )
        .order_by("pk")
    )
    total = rows.count()
    return _limited(
        [
            f"account {account} ({account.pk}): balance {account.balance}, entries sum to "
            f"{account.entries_total}, last entry's balance_after {account.last_balance_after}, "
            f"{account.entries_count} entries for sequence {account.sequence}"
            for account in rows[:MAX_REPORTED_PER_CHECK]
        ],
        total,
        "accounts whose balance disagrees with their entries",
    )


def _running_balances_wrong() -> list[str]:
    rows = (
        Entry.objects.annotate(
            running=Window(Sum("amount"), partition_by=[F("account_id")], order_by="sequence")
        )
        .filter(~Q(running=F("balance_after")))
        .order_by("account_id", "sequence")
    )
    lines = [
        f"entry {entry.pk} (account {entry.account_id} #{entry.sequence}): balance_after "
        f"{entry.balance_after}, but the entries up to it sum to {entry.running}"
        for entry in rows[: MAX_REPORTED_PER_CHECK + 1]
    ]
    if len(lines) > MAX_REPORTED_PER_CHECK:
        lines[MAX_REPORTED_PER_CHECK:] = ["... more entries with a wrong balance_after"]
    return lines


def _negative_balances() -> list[str]:
    rows = Account.objects.filter(allow_negative=False, balance__lt=0).order_by("pk")
    total = rows.count()
    return _limited(
        [
            f"account {account} ({account.pk}): balance {account.balance} is negative"
            for account in rows[:MAX_REPORTED_PER_CHECK]
        ],
        total,
        "negative balances",
    )


def _currencies_not_summing_to_zero() -> list[str]:
    rows = (
        Account.objects.values("currency")
        .annotate(total=Sum("balance"))
        .exclude(total=0)
        .order_by("currency")
    )
    return [f"{row['currency']}: account balances sum to {row['total']}, not 0" for row in rows]
