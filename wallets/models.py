"""Wallets and the double-entry ledger.

Every movement of money is one `Journal` of `Entry` rows that sum to zero, each
entry against an `Account`: a wallet app's wallet, or a system account (the
clearing account of a gateway and currency, the refunds account of a currency).
An account's `balance` is the sum of its entries and its last entry's
`balance_after`; entries and journals are append-only (a PostgreSQL trigger
refuses UPDATE and DELETE, see migration 0002). Only `wallets.services` writes here.
"""

import uuid
from typing import ClassVar

from django.db import models
from django.db.models import F, Q
from django.utils import timezone

from paywave.models import ApiClient
from paywave.values.money_text import money_display


class AccountKind(models.TextChoices):
    WALLET = "wallet"
    CLEARING = "clearing"  # money a gateway collected for us: goes negative as wallets are paid
    REFUNDS = "refunds"  # money taken from wallets for refunds on its way back to payers
    # Per wallet (`code` = the wallet's id): money a payer disputes, out of the wallet's
    # spendable balance until the dispute closes.
    DISPUTES = "disputes"
    # Per wallet (`code` = the wallet's id): what a wallet owes when a dispute took more
    # than it held. Only ever negative or zero.
    RECEIVABLE = "receivable"


# System accounts that may go below zero: what they hold is owed to PayWave.
NEGATIVE_ACCOUNT_KINDS = frozenset({AccountKind.CLEARING, AccountKind.RECEIVABLE})


class WalletStatus(models.TextChoices):
    ACTIVE = "active"
    FROZEN = "frozen"


class Account(models.Model):
    """A balance in one currency. Wallets are accounts of kind `wallet` (see `Wallet`)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    kind = models.CharField(max_length=16, choices=AccountKind.choices)
    # The wallet's owner; system accounts have none.
    client = models.ForeignKey(
        ApiClient, on_delete=models.PROTECT, null=True, blank=True, related_name="wallets"
    )
    # What a system account is for, e.g. the gateway code of a clearing account.
    code = models.CharField(max_length=40, blank=True, default="")
    currency = models.CharField(max_length=3)
    status = models.CharField(
        max_length=16, choices=WalletStatus.choices, default=WalletStatus.ACTIVE
    )
    balance = models.BigIntegerField(default=0, help_text="Minor units of `currency`.")
    allow_negative = models.BooleanField(default=False)
    # How many entries the account has: the last entry's `sequence`.
    sequence = models.PositiveBigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("-created_at", "-id")
        indexes = [
            models.Index(
                fields=["client", "-created_at", "-id"],
                condition=Q(kind="wallet"),
                name="account_wallet_recent_idx",
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(allow_negative=True) | Q(balance__gte=0),
                name="account_balance_not_negative",
            ),
            models.CheckConstraint(
                condition=(
                    Q(kind="wallet", client__isnull=False, allow_negative=False, code="")
                    | (~Q(kind="wallet") & Q(client__isnull=True))
                ),
                name="account_wallet_owned_never_negative",
            ),
            models.CheckConstraint(
                condition=Q(kind__in=AccountKind.values), name="account_kind_valid"
            ),
            models.CheckConstraint(
                condition=Q(status__in=WalletStatus.values), name="account_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(currency__regex=r"^[A-Z]{3}$"), name="account_currency_iso"
            ),
            models.UniqueConstraint(
                fields=["kind", "code", "currency"],
                condition=~Q(kind="wallet"),
                name="account_system_unique",
            ),
        ]

    def __str__(self) -> str:
        if self.kind == AccountKind.WALLET:
            return f"wallet {self.id} ({self.currency})"
        return f"{self.kind}:{self.code or '-'}:{self.currency}"


class WalletManager(models.Manager["Wallet"]):
    def get_queryset(self) -> models.QuerySet["Wallet"]:
        return super().get_queryset().filter(kind=AccountKind.WALLET)


class Wallet(Account):
    """A wallet app's wallet: an account of kind `wallet`, owned, never negative."""

    objects: ClassVar[WalletManager] = WalletManager()

    class Meta:
        proxy = True
        ordering = ("-created_at", "-id")

    @property
    def is_frozen(self) -> bool:
        return self.status == WalletStatus.FROZEN


class JournalKind(models.TextChoices):
    PAYMENT_CREDIT = "payment_credit"
    REFUND_DEBIT = "refund_debit"
    REFUND_DEBIT_REVERSAL = "refund_debit_reversal"
    TRANSFER = "transfer"
    DISPUTE_HOLD = "dispute_hold"  # a dispute opened: its amount leaves the spendable balance
    DISPUTE_RELEASE = "dispute_release"  # won: the amount goes back (first to what is owed)
    DISPUTE_LOSS = "dispute_loss"  # lost: the gateway took the amount back
    # What a wallet owed (its receivable) paid from money that came back to it.
    RECEIVABLE_SETTLEMENT = "receivable_settlement"


DISPUTE_JOURNAL_KINDS = (
    JournalKind.DISPUTE_HOLD,
    JournalKind.DISPUTE_RELEASE,
    JournalKind.DISPUTE_LOSS,
)


class TransferStatus(models.TextChoices):
    COMPLETED = "completed"


class Transfer(models.Model):
    """Money moved from one wallet to another of the same wallet app, in one transaction."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # Indexed first in transfer_client_recent_idx below.
    client = models.ForeignKey(
        ApiClient, on_delete=models.PROTECT, related_name="transfers", db_index=False
    )
    from_wallet = models.ForeignKey(Wallet, on_delete=models.PROTECT, related_name="+")
    to_wallet = models.ForeignKey(Wallet, on_delete=models.PROTECT, related_name="+")
    amount = models.BigIntegerField(help_text="Minor units of `currency`.")
    currency = models.CharField(max_length=3)
    description = models.CharField(max_length=255, blank=True, default="")
    status = models.CharField(
        max_length=16, choices=TransferStatus.choices, default=TransferStatus.COMPLETED
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("-created_at", "-id")
        indexes = [
            models.Index(fields=["client", "-created_at", "-id"], name="transfer_client_recent_idx")
        ]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="transfer_amount_positive"),
            models.CheckConstraint(
                condition=~Q(from_wallet=F("to_wallet")), name="transfer_two_wallets"
            ),
            models.CheckConstraint(
                condition=Q(status__in=TransferStatus.values), name="transfer_status_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"transfer {self.id} {money_display(self.amount, self.currency)}"


class Journal(models.Model):
    """One movement: entries summing to zero, written in one database transaction.

    The unique constraints make each movement happen once: one credit per
    payment, one debit (and one reversal) per refund, one journal per transfer,
    one hold (and one release or loss) per dispute.
    """

    id = models.BigAutoField(primary_key=True)
    kind = models.CharField(max_length=32, choices=JournalKind.choices)
    payment = models.ForeignKey(
        "payments.Payment",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="journals",
    )
    # The refunds feature's Refund id (no foreign key: refunds own their table).
    refund_id = models.UUIDField(null=True, blank=True)
    # The payments' Dispute id, for the dispute movements (no foreign key, as for refunds).
    dispute_id = models.UUIDField(null=True, blank=True)
    transfer = models.OneToOneField(
        Transfer, on_delete=models.PROTECT, null=True, blank=True, related_name="journal"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ("id",)
        constraints = [
            models.CheckConstraint(
                condition=Q(kind__in=JournalKind.values), name="journal_kind_valid"
            ),
            models.CheckConstraint(
                condition=(
                    Q(kind="payment_credit", refund_id__isnull=True, transfer__isnull=True)
                    & Q(payment__isnull=False, dispute_id__isnull=True)
                )
                | (
                    Q(kind__in=["refund_debit", "refund_debit_reversal"], transfer__isnull=True)
                    & Q(payment__isnull=False, refund_id__isnull=False, dispute_id__isnull=True)
                )
                | (
                    Q(kind="transfer", transfer__isnull=False)
                    & Q(payment__isnull=True, refund_id__isnull=True, dispute_id__isnull=True)
                )
                | (
                    Q(kind__in=["dispute_hold", "dispute_release", "dispute_loss"])
                    & Q(payment__isnull=False, dispute_id__isnull=False)
                    & Q(refund_id__isnull=True, transfer__isnull=True)
                )
                | (
                    Q(kind="receivable_settlement", transfer__isnull=True)
                    & Q(refund_id__isnull=True, dispute_id__isnull=True)
                ),
                name="journal_reference_matches_kind",
            ),
            models.UniqueConstraint(
                fields=["kind", "payment"],
                condition=Q(kind="payment_credit"),
                name="journal_one_credit_per_payment",
            ),
            models.UniqueConstraint(
                fields=["kind", "refund_id"],
                condition=Q(refund_id__isnull=False),
                name="journal_once_per_refund",
            ),
            # One hold per dispute, and one release or loss (never both: ledger checks).
            models.UniqueConstraint(
                fields=["kind", "dispute_id"],
                condition=Q(dispute_id__isnull=False),
                name="journal_once_per_dispute",
            ),
        ]

    def __str__(self) -> str:
        return f"journal {self.id} {self.kind}"


class Entry(models.Model):
    """One line of a journal against one account: signed amount and the balance after it."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    journal = models.ForeignKey(Journal, on_delete=models.PROTECT, related_name="entries")
    # Indexed by the unique (account, sequence) below.
    account = models.ForeignKey(
        Account, on_delete=models.PROTECT, related_name="entries", db_index=False
    )
    amount = models.BigIntegerField(help_text="Signed minor units: credit > 0, debit < 0.")
    balance_after = models.BigIntegerField()
    # 1, 2, 3... per account, in the order the balance moved.
    sequence = models.PositiveBigIntegerField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ("account", "sequence")
        verbose_name_plural = "entries"
        constraints = [
            models.CheckConstraint(condition=~Q(amount=0), name="entry_amount_not_zero"),
            models.UniqueConstraint(fields=["account", "sequence"], name="entry_account_sequence"),
        ]

    def __str__(self) -> str:
        amount = money_display(self.amount, self.account.currency)
        return f"entry {self.account_id}#{self.sequence} {amount}"
