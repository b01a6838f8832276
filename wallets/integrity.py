"""The ledger's invariants, checked from scratch (`manage.py check_ledger`, daily beat task)."""

from django.db.models import Count, Exists, F, OuterRef, Q, Subquery, Sum, Window
from django.db.models.functions import Coalesce

from gateways.base import DisputeStatus
from payments.models import OPEN_DISPUTE_STATUSES, Dispute

from .models import DISPUTE_JOURNAL_KINDS, Account, AccountKind, Entry, Journal, JournalKind

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
        _positive_receivables,
        _held_unlike_open_disputes,
        _disputes_unlike_their_journals,
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


def _positive_receivables() -> list[str]:
    """A receivable holds what a wallet owes: never more than nothing."""
    rows = Account.objects.filter(kind=AccountKind.RECEIVABLE, balance__gt=0).order_by("pk")
    return [
        f"account {account} ({account.pk}): balance {account.balance}, a receivable is never "
        "positive"
        for account in rows[:MAX_REPORTED_PER_CHECK]
    ]


def _closed_dispute_ids() -> set[object]:
    return set(
        Journal.objects.filter(
            kind__in=[JournalKind.DISPUTE_RELEASE, JournalKind.DISPUTE_LOSS]
        ).values_list("dispute_id", flat=True)
    )


def _held_unlike_open_disputes() -> list[str]:
    """Each wallet's held-for-disputes balance is what its holds took and nothing closed yet."""
    closed = _closed_dispute_ids()
    expected: dict[object, int] = {}
    for account_id, dispute_id, amount in Entry.objects.filter(
        journal__kind=JournalKind.DISPUTE_HOLD, account__kind=AccountKind.DISPUTES
    ).values_list("account_id", "journal__dispute_id", "amount"):
        if dispute_id not in closed:
            expected[account_id] = expected.get(account_id, 0) + amount
    lines = []
    for account in Account.objects.filter(kind=AccountKind.DISPUTES).order_by("pk"):
        if account.balance != expected.get(account.pk, 0):
            lines.append(
                f"account {account} ({account.pk}): balance {account.balance}, but its open "
                f"disputes hold {expected.get(account.pk, 0)}"
            )
    return lines[:MAX_REPORTED_PER_CHECK]


def _disputes_unlike_their_journals() -> list[str]:
    """Every dispute's money where its status says: held while open, released when won,
    sent back when lost (for a payment that credited a wallet)."""
    kinds: dict[object, set[str]] = {}
    for dispute_id, kind in Journal.objects.filter(kind__in=DISPUTE_JOURNAL_KINDS).values_list(
        "dispute_id", "kind"
    ):
        kinds.setdefault(dispute_id, set()).add(kind)
    # Only a payment that credited a wallet moves money when disputed: asked of the
    # database per dispute, never by loading every payment credit.
    credited = Journal.objects.filter(
        kind=JournalKind.PAYMENT_CREDIT, payment_id=OuterRef("payment_id")
    )
    lines = []
    disputes = Dispute.objects.filter(Exists(credited)).order_by("opened_at", "pk")
    for dispute_id, status, reference in disputes.values_list("id", "status", "reference"):
        found = kinds.pop(dispute_id, set())
        if problem := _journals_problem(status, found):
            lines.append(f"dispute {reference} ({dispute_id}, {status}): {problem}")
    lines.extend(f"dispute {dispute_id}: journals {sorted(found)} but no such dispute"
                 for dispute_id, found in kinds.items())  # fmt: skip
    return lines[:MAX_REPORTED_PER_CHECK]


def _journals_problem(status: str, found: set[str]) -> str:
    hold, release, loss = (
        JournalKind.DISPUTE_HOLD in found,
        JournalKind.DISPUTE_RELEASE in found,
        JournalKind.DISPUTE_LOSS in found,
    )
    if release and loss:
        return "both released and lost"
    if (release or loss) and not hold:
        return "closed in the ledger without a hold"
    if status in OPEN_DISPUTE_STATUSES and not (hold and not release and not loss):
        return "open, but its amount is not held"
    if status == DisputeStatus.LOST and not (hold and loss):
        return "lost, but its amount was not sent back"
    if status == DisputeStatus.WON and (loss or (hold and not release)):
        return "won, but its amount was not released"
    return ""
