"""Staff views of wallets and the ledger: read-only, but for freezing and unfreezing wallets.

Money moves only through wallets.services; nothing here can add, change or
delete an entry, a journal, an account or a transfer.
"""

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest

from paywave.admin_helpers import money_field

from . import services
from .models import Account, Entry, Journal, Transfer, Wallet, WalletStatus


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


class RecentEntriesFormSet(BaseInlineFormSet):
    """Only the newest entries: an account may have millions (the Entries list has them all)."""

    shown = 100

    def get_queryset(self) -> QuerySet[Entry]:
        if not hasattr(self, "_recent"):
            self._recent = super().get_queryset().order_by("-sequence")[: self.shown]
        return self._recent


class EntryMoney:
    """An entry's amount and the balance after it, in its account's currency."""

    amount_money = money_field("amount", "account.currency", description="amount")
    balance_after_money = money_field(
        "balance_after", "account.currency", description="balance after"
    )


class EntryInline(EntryMoney, ReadOnlyInline):
    model = Entry

    def get_queryset(self, request: HttpRequest) -> QuerySet[Entry]:
        return super().get_queryset(request).select_related("account")


class AccountEntryInline(EntryInline):
    fk_name = "account"
    formset = RecentEntriesFormSet
    fields = ("sequence", "created_at", "amount_money", "balance_after_money", "journal")
    readonly_fields = fields
    verbose_name_plural = f"entries (the newest {RecentEntriesFormSet.shown})"


class JournalEntryInline(EntryInline):
    fk_name = "journal"
    fields = ("account", "amount_money", "balance_after_money", "sequence", "created_at")
    readonly_fields = fields


@admin.register(Wallet)
class WalletAdmin(ReadOnlyAdmin):
    list_display = ("id", "client", "balance_money", "status", "created_at")
    list_filter = ("status", "currency", "client")
    search_fields = ("=id",)
    fields = ("id", "client", "balance_money", "status", "sequence", "created_at")
    readonly_fields = fields
    inlines = (AccountEntryInline,)
    actions = ("freeze", "unfreeze")
    balance_money = money_field("balance")

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        # Viewing only; the status changes through the actions below.
        return obj is None and admin.ModelAdmin.has_change_permission(self, request)

    @admin.action(
        description="Freeze the selected wallets (no transfers in or out)", permissions=["change"]
    )
    def freeze(self, request: HttpRequest, queryset: QuerySet[Wallet]) -> None:
        self._set_status(request, queryset, WalletStatus.FROZEN)

    @admin.action(description="Unfreeze the selected wallets", permissions=["change"])
    def unfreeze(self, request: HttpRequest, queryset: QuerySet[Wallet]) -> None:
        self._set_status(request, queryset, WalletStatus.ACTIVE)

    def _set_status(self, request: HttpRequest, queryset: QuerySet[Wallet], status: str) -> None:
        changed = 0
        for wallet_id, previous in queryset.values_list("pk", "status"):
            if previous == status:
                continue
            wallet = services.wallet_set_status(
                wallet_id=wallet_id, status=status, actor=f"staff:{request.user.get_username()}"
            )
            self.log_change(request, wallet, f"Status {previous} -> {status}.")
            changed += 1
        self.message_user(request, f"{changed} wallet(s) now {status}.", messages.SUCCESS)


@admin.register(Account)
class AccountAdmin(ReadOnlyAdmin):
    """All ledger accounts: wallets and system accounts (clearing, refunds)."""

    list_display = ("__str__", "kind", "code", "balance_money", "allow_negative")
    list_filter = ("kind", "currency", "allow_negative")
    search_fields = ("=id", "code")
    fields = ("id", "kind", "client", "code", "balance_money", "allow_negative", "status",
              "sequence", "created_at", "updated_at")  # fmt: skip
    readonly_fields = fields
    inlines = (AccountEntryInline,)
    balance_money = money_field("balance")


@admin.register(Journal)
class JournalAdmin(ReadOnlyAdmin):
    list_display = ("id", "kind", "payment", "refund_id", "transfer", "created_at")
    list_filter = ("kind", "created_at")
    search_fields = ("=id", "=payment__id", "=refund_id", "=transfer__id")
    inlines = (JournalEntryInline,)


@admin.register(Entry)
class EntryAdmin(EntryMoney, ReadOnlyAdmin):
    list_display = ("id", "account", "sequence", "amount_money", "balance_after_money", "journal",
                    "created_at")  # fmt: skip
    list_filter = ("account__kind", "account__currency", "created_at")
    search_fields = ("=id", "=account__id", "=journal__id")
    list_select_related = ("account", "journal")
    fields = ("id", "journal", "account", "sequence", "amount_money", "balance_after_money",
              "created_at")  # fmt: skip
    readonly_fields = fields


@admin.register(Transfer)
class TransferAdmin(ReadOnlyAdmin):
    list_display = ("id", "client", "from_wallet", "to_wallet", "amount_money", "created_at")
    list_filter = ("currency", "created_at")
    search_fields = ("=id", "=from_wallet__id", "=to_wallet__id")
    fields = ("id", "client", "from_wallet", "to_wallet", "amount_money", "description", "status",
              "created_at")  # fmt: skip
    readonly_fields = fields
    amount_money = money_field("amount")
