"""Writes on wallets: each is one transaction and, when money moves, one balanced journal."""

import logging
from uuid import UUID

from django.db import IntegrityError, transaction

from notifications.services import event_record
from payments.models import Payment
from paywave.api.errors import ApplicationError, Conflict
from paywave.observability.alerts import AlertKind, operator_alert

from .disputes import owed_account_of, owed_settle
from .ledger import InsufficientFunds, accounts_lock, journal_post, retry_on_deadlock
from .ledger import system_account as _system_account
from .models import AccountKind, Journal, JournalKind, Transfer, Wallet, WalletStatus
from .selectors import wallet_not_found
from .serializers import entry_document, transfer_document, wallet_document

audit_logger = logging.getLogger("wallets.audit")

# Where a payment's money waits when its gateway is not recorded (should not happen).
UNKNOWN_GATEWAY = "unknown"


def wallet_create(*, client_id: str, currency: str) -> Wallet:
    return Wallet.objects.create(
        kind=AccountKind.WALLET, client_id=client_id, currency=currency, allow_negative=False
    )


def wallet_set_status(*, wallet_id: UUID, status: str, actor: str) -> Wallet:
    """Freeze or unfreeze a wallet (staff); every change is an audit log line."""
    if status not in WalletStatus.values:
        raise ValueError(f"not a wallet status: {status}")
    with transaction.atomic():
        wallet = Wallet.objects.select_for_update(no_key=True).get(pk=wallet_id)
        previous = wallet.status
        if previous != status:
            wallet.status = status
            wallet.save(update_fields=["status", "updated_at"])
            audit_logger.info(
                "wallet %s %s -> %s by %s",
                wallet.pk,
                previous,
                status,
                actor,
                extra={
                    "wallet_id": str(wallet.pk),
                    "from_status": previous,
                    "to_status": status,
                    "actor": actor,
                },
            )
    return wallet


def wallet_credit_for_payment(payment: Payment) -> Journal | None:
    """Credit a succeeded payment's amount to its wallet, once however often it is called.

    The money comes from the clearing account of the payment's gateway and
    currency. Called when a payment becomes succeeded (wallets.subscribers),
    inside the transition's transaction (the payment row is locked); a wallet
    that cannot take the credit (gone, another app's, another currency: never
    for payments validated at creation) is an operator alert, not an error, so
    the payment still succeeds.
    """
    wallet_id = payment.wallet_id
    if wallet_id is None:
        return None
    clearing = _system_account(
        kind=AccountKind.CLEARING,
        code=payment.gateway or UNKNOWN_GATEWAY,
        currency=payment.currency,
    )

    def credit() -> Journal | None:
        accounts = accounts_lock([wallet_id, clearing.pk])
        existing = _payment_credit_of(payment)
        if existing is not None:
            return existing
        wallet = accounts.get(wallet_id)
        if (
            wallet is None
            or wallet.kind != AccountKind.WALLET
            or str(wallet.client_id) != str(payment.client_id)
            or wallet.currency != payment.currency
        ):
            operator_alert(
                AlertKind.LEDGER_INCONSISTENT,
                "A succeeded payment's wallet cannot be credited.",
                payment_id=str(payment.pk),
                wallet_id=str(payment.wallet_id),
            )
            return None
        _, wallet_entry = journal_post(
            kind=JournalKind.PAYMENT_CREDIT,
            moves=[(accounts[clearing.pk], -payment.amount), (wallet, payment.amount)],
            payment_id=payment.pk,
        )
        event_record(
            type="wallet.credited",
            client_id=wallet.client_id,
            subject_id=wallet.pk,
            data={"wallet": wallet_document(wallet), "entry": entry_document(wallet_entry)},
        )
        return wallet_entry.journal

    try:
        return retry_on_deadlock(credit)
    except IntegrityError:
        # Only a concurrent credit of the same payment gets here (the payment lock prevents it).
        existing = _payment_credit_of(payment)
        if existing is None:
            raise
        return existing


def _payment_credit_of(payment: Payment) -> Journal | None:
    return Journal.objects.filter(kind=JournalKind.PAYMENT_CREDIT, payment_id=payment.pk).first()


def wallet_debit_for_refund(*, payment: Payment, refund_id: UUID, amount: int) -> Journal | None:
    """Take a refund's amount back out of the wallet the payment credited, once per refund.

    Call before any money goes back to the payer, inside the transaction that
    records the refund: raises Conflict `insufficient_funds` (and writes
    nothing) when the wallet no longer holds the amount, so the refund is
    refused. Returns None when the payment credited no wallet. A frozen
    wallet is debited all the same: the refund returns the payer's own money.
    """
    if amount <= 0:
        raise ValueError("a refund debit is a positive amount")
    credit = _payment_credit_of(payment)
    if credit is None:
        return None
    wallet_id = credit.entries.get(account__kind=AccountKind.WALLET).account_id
    refunds = _system_account(kind=AccountKind.REFUNDS, code="", currency=payment.currency)

    def debit() -> Journal:
        accounts = accounts_lock([wallet_id, refunds.pk])
        existing = Journal.objects.filter(
            kind=JournalKind.REFUND_DEBIT, refund_id=refund_id
        ).first()
        if existing is not None:
            if existing.payment_id != payment.pk:
                raise Conflict("This refund id debited another payment.", code="refund_id_reused")
            return existing
        wallet = accounts[wallet_id]
        if wallet.balance < amount:
            raise InsufficientFunds(
                "The wallet no longer holds the amount to refund.",
                fields={"amount": f"The wallet's balance is {wallet.balance}."},
            )
        entries = journal_post(
            kind=JournalKind.REFUND_DEBIT,
            moves=[(wallet, -amount), (accounts[refunds.pk], amount)],
            payment_id=payment.pk,
            refund_id=refund_id,
        )
        return entries[0].journal

    return retry_on_deadlock(debit)


def wallet_reverse_refund_debit(*, refund_id: UUID) -> Journal | None:
    """Give a failed refund's debit back to the wallet, once; None if nothing was debited."""
    debit = (
        Journal.objects.filter(kind=JournalKind.REFUND_DEBIT, refund_id=refund_id)
        .prefetch_related("entries__account")
        .first()
    )
    if debit is None:
        return None
    lines = [(entry.account_id, entry.amount) for entry in debit.entries.all()]
    # The wallet's line is the debit's negative one; a dispute may have left it owing.
    wallet_id = next(account_id for account_id, amount in lines if amount < 0)
    owed = owed_account_of(wallet_id, debit.entries.all()[0].account.currency)
    owed_id = owed.pk if owed else None

    def reverse() -> Journal:
        locked = [account_id for account_id, _ in lines]
        accounts = accounts_lock([*locked, owed_id] if owed_id else locked)
        existing = Journal.objects.filter(
            kind=JournalKind.REFUND_DEBIT_REVERSAL, refund_id=refund_id
        ).first()
        if existing is not None:
            return existing
        entries = journal_post(
            kind=JournalKind.REFUND_DEBIT_REVERSAL,
            moves=[(accounts[account_id], -amount) for account_id, amount in lines],
            payment_id=debit.payment_id,
            refund_id=refund_id,
        )
        # What a dispute left owed is paid first from the money that came back.
        owed_settle(accounts, wallet_id=wallet_id, owed_id=owed_id, payment_id=debit.payment_id)
        return entries[0].journal

    return retry_on_deadlock(reverse)


def transfer_create(
    *,
    client_id: str,
    from_wallet_id: UUID,
    to_wallet_id: UUID,
    amount: int,
    currency: str,
    description: str = "",
) -> Transfer:
    """Move money between two wallets of one wallet app, atomically.

    Errors, checked in this order: the same wallet twice (400), a wallet that
    is not the app's own (404, as if it did not exist: transfers across
    wallet apps are refused), a currency other than both wallets' (400
    `currency_mismatch`), a frozen wallet on either side (409 `wallet_frozen`),
    a balance below the amount (409 `insufficient_funds`).
    """
    if from_wallet_id == to_wallet_id:
        raise ApplicationError(
            "A transfer needs two different wallets.",
            code="same_wallet",
            fields={"to_wallet": "Must be another wallet than from_wallet."},
        )
    if amount <= 0:
        raise ApplicationError("The amount must be positive.", fields={"amount": "Must be > 0."})

    def transfer() -> Transfer:
        wallets = accounts_lock(
            [from_wallet_id, to_wallet_id], kind=AccountKind.WALLET, client_id=client_id
        )
        source, target = wallets.get(from_wallet_id), wallets.get(to_wallet_id)
        if source is None:
            raise wallet_not_found("from_wallet")
        if target is None:
            raise wallet_not_found("to_wallet")
        mismatched = {
            side: f"This wallet holds {wallet.currency}."
            for side, wallet in (("from_wallet", source), ("to_wallet", target))
            if wallet.currency != currency
        }
        if mismatched:
            raise ApplicationError(
                f"Both wallets must hold {currency}.",
                code="currency_mismatch",
                fields={"currency": "Must be the wallets' currency.", **mismatched},
            )
        frozen = {
            side: "This wallet is frozen."
            for side, wallet in (("from_wallet", source), ("to_wallet", target))
            if wallet.status == WalletStatus.FROZEN
        }
        if frozen:
            raise Conflict(
                "A frozen wallet cannot move money.", code="wallet_frozen", fields=frozen
            )
        if source.balance < amount:
            raise InsufficientFunds(
                "The source wallet's balance is lower than the amount.",
                fields={"amount": f"The balance of from_wallet is {source.balance}."},
            )
        created = Transfer.objects.create(
            client_id=client_id,
            from_wallet_id=source.pk,
            to_wallet_id=target.pk,
            amount=amount,
            currency=currency,
            description=description,
        )
        journal_post(
            kind=JournalKind.TRANSFER,
            moves=[(source, -amount), (target, amount)],
            transfer=created,
        )
        event_record(
            type="transfer.completed",
            client_id=client_id,
            subject_id=created.pk,
            data=transfer_document(created),
        )
        return created

    return retry_on_deadlock(transfer)
