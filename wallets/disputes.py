"""The ledger side of disputes (docs/wallets.md, "Disputes").

When a payer disputes a payment that credited a wallet, the disputed amount leaves the
wallet's spendable balance for the wallet's `disputes` account (held). What the wallet
no longer holds is not taken from its balance, which never goes below zero: it is owed,
in the wallet's `receivable` account, and an operator alert names the wallet. A dispute
won cancels what it left owed (as far as still owed) and gives the rest back to the
wallet; a dispute lost sends the held amount back to the clearing account of the gateway
that took it back. Money that comes back to a wallet that owes (a dispute won, a failed
refund's debit reversed) pays the debt first (`owed_settle`). Each dispute movement
happens once per dispute (a unique journal per kind and dispute), inside the dispute's
transaction, after its payment's lock.
"""

from collections.abc import Callable, Mapping
from uuid import UUID

from django.db import IntegrityError

from payments.models import Payment
from paywave.observability.alerts import AlertKind, operator_alert
from paywave.values.money_text import money_display

from .ledger import accounts_lock, journal_post, retry_on_deadlock, system_account
from .models import Account, AccountKind, Entry, Journal, JournalKind


def dispute_hold(*, payment: Payment, dispute_id: UUID, amount: int) -> Journal | None:
    """Hold a dispute's amount out of the wallet the payment credited; None if it credited
    none. What the wallet lacks is owed in its receivable account (an operator alert)."""
    credit = Journal.objects.filter(kind=JournalKind.PAYMENT_CREDIT, payment_id=payment.pk).first()
    if credit is None:
        return None
    wallet_id = credit.entries.get(account__kind=AccountKind.WALLET).account_id
    held = system_account(kind=AccountKind.DISPUTES, code=str(wallet_id), currency=payment.currency)
    owed = system_account(
        kind=AccountKind.RECEIVABLE, code=str(wallet_id), currency=payment.currency
    )

    def hold() -> Journal:
        accounts = accounts_lock([wallet_id, held.pk, owed.pk])
        existing = _journal_of(JournalKind.DISPUTE_HOLD, dispute_id)
        if existing is not None:
            return existing
        wallet = accounts[wallet_id]
        taken = min(max(wallet.balance, 0), amount)
        moves = [(accounts[held.pk], amount)]
        if taken:
            moves.append((wallet, -taken))
        if short := amount - taken:
            moves.append((accounts[owed.pk], -short))
        entries = journal_post(
            kind=JournalKind.DISPUTE_HOLD, moves=moves, payment_id=payment.pk, dispute_id=dispute_id
        )
        if short:
            _owed_alert(payment, wallet_id, short, "held for a dispute")
        return entries[0].journal

    return _once(hold, JournalKind.DISPUTE_HOLD, dispute_id)


def dispute_release(*, dispute_id: UUID) -> Journal | None:
    """A dispute won: the held amount leaves the disputes account; what this dispute left
    owed, as far as it is still owed, is cancelled, and the rest goes back to the wallet
    (which then pays what other disputes left owed). None if nothing was held."""
    hold = _journal_of(JournalKind.DISPUTE_HOLD, dispute_id)
    if hold is None:
        return None
    held_entry = _entry_of(hold, AccountKind.DISPUTES)
    wallet_id = UUID(held_entry.account.code)
    short = _short_of(hold)
    owed = owed_account_of(wallet_id, held_entry.account.currency)
    owed_id = owed.pk if owed else None

    def release() -> Journal:
        locked = [held_entry.account_id, wallet_id]
        accounts = accounts_lock([*locked, owed_id] if owed_id else locked)
        if (closed := _closing_of(dispute_id)) is not None:
            return closed
        # Money that came back to the wallet since may have paid the debt already.
        cancelled = min(short, -accounts[owed_id].balance) if owed_id else 0
        moves = [(accounts[held_entry.account_id], -held_entry.amount)]
        if returned := held_entry.amount - cancelled:
            moves.append((accounts[wallet_id], returned))
        if cancelled and owed_id:
            moves.append((accounts[owed_id], cancelled))
        entries = journal_post(
            kind=JournalKind.DISPUTE_RELEASE,
            moves=moves,
            payment_id=hold.payment_id,
            dispute_id=dispute_id,
        )
        owed_settle(accounts, wallet_id=wallet_id, owed_id=owed_id, payment_id=hold.payment_id)
        return entries[0].journal

    return _once(release, JournalKind.DISPUTE_RELEASE, dispute_id)


def dispute_loss(*, payment: Payment, dispute_id: UUID) -> Journal | None:
    """A dispute lost: the held amount goes back to the clearing account the payment's credit
    came from (the gateway took the money back); what the wallet owes stays owed."""
    hold = _journal_of(JournalKind.DISPUTE_HOLD, dispute_id)
    if hold is None:
        return None
    held_entry = _entry_of(hold, AccountKind.DISPUTES)
    credit = Journal.objects.get(kind=JournalKind.PAYMENT_CREDIT, payment_id=payment.pk)
    clearing_id = _entry_of(credit, AccountKind.CLEARING).account_id
    short = _short_of(hold)

    def lose() -> Journal:
        accounts = accounts_lock([held_entry.account_id, clearing_id])
        if (closed := _closing_of(dispute_id)) is not None:
            return closed
        entries = journal_post(
            kind=JournalKind.DISPUTE_LOSS,
            moves=[
                (accounts[held_entry.account_id], -held_entry.amount),
                (accounts[clearing_id], held_entry.amount),
            ],
            payment_id=hold.payment_id,
            dispute_id=dispute_id,
        )
        if short:
            wallet_id = held_entry.account.code
            _owed_alert(payment, wallet_id, short, "lost in a dispute")
        return entries[0].journal

    return _once(lose, JournalKind.DISPUTE_LOSS, dispute_id)


def owed_account_of(wallet_id: object, currency: str) -> Account | None:
    """The wallet's receivable account, if a dispute ever made one."""
    return Account.objects.filter(
        kind=AccountKind.RECEIVABLE, code=str(wallet_id), currency=currency
    ).first()


def owed_settle(
    accounts: Mapping[UUID, Account],
    *,
    wallet_id: UUID,
    owed_id: UUID | None,
    payment_id: UUID | None,
) -> Journal | None:
    """Pay what the wallet owes out of what it holds now, as far as it goes.

    For money that comes back to a wallet (a failed refund's debit, a dispute won): inside
    that movement's transaction, with the wallet and its receivable locked in `accounts`
    (the same objects the movement posted through, so their balances are current).
    """
    if owed_id is None:
        return None
    wallet, owed = accounts[wallet_id], accounts[owed_id]
    amount = min(max(wallet.balance, 0), -owed.balance)
    if amount <= 0:
        return None
    entries = journal_post(
        kind=JournalKind.RECEIVABLE_SETTLEMENT,
        moves=[(wallet, -amount), (owed, amount)],
        payment_id=payment_id,
    )
    return entries[0].journal


def _short_of(hold: Journal) -> int:
    """What a hold left owed: more than its wallet held then."""
    return -sum(
        entry.amount
        for entry in hold.entries.select_related("account")
        if entry.account.kind == AccountKind.RECEIVABLE
    )


def _journal_of(kind: str, dispute_id: UUID) -> Journal | None:
    return Journal.objects.filter(kind=kind, dispute_id=dispute_id).first()


def _closing_of(dispute_id: UUID) -> Journal | None:
    """A dispute's release or loss: one of them, once."""
    return Journal.objects.filter(
        kind__in=[JournalKind.DISPUTE_RELEASE, JournalKind.DISPUTE_LOSS], dispute_id=dispute_id
    ).first()


def _entry_of(journal: Journal, kind: str) -> Entry:
    return journal.entries.select_related("account").get(account__kind=kind)


def _once(movement: Callable[[], Journal], kind: str, dispute_id: UUID) -> Journal:
    try:
        return retry_on_deadlock(movement)
    except IntegrityError:
        # Only a concurrent movement of the same dispute gets here (its payment's lock
        # prevents it): the journal the other one wrote.
        existing = _journal_of(kind, dispute_id)
        if existing is None:
            raise
        return existing


def _owed_alert(payment: Payment, wallet_id: object, short: int, what: str) -> None:
    operator_alert(
        AlertKind.DISPUTE_RECEIVABLE,
        f"wallet {wallet_id} owes {money_display(short, payment.currency)}: payment "
        f"{payment.pk}'s disputed amount was {what}, more than the wallet held; its "
        "receivable account carries the debt",
        payment_id=str(payment.pk),
        wallet_id=str(wallet_id),
        amount_owed=short,
    )
