"""Staff views of wallets and the ledger: read-only, but for freezing and unfreezing wallets.

Money moves only through wallets.services; nothing here can add, change or
delete an entry, a journal, an account or a transfer.
"""

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest

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


class AccountEntryInline(ReadOnlyInline):
    model = Entry
    fk_name = "account"
    formset = RecentEntriesFormSet
    fields = ("sequence", "created_at", "amount", "balance_after", "journal")
    readonly_fields = fields
    verbose_name_plural = f"entries (the newest {RecentEntriesFormSet.shown})"


class JournalEntryInline(ReadOnlyInline):
    model = Entry
    fk_name = "journal"
    fields = ("account", "amount", "balance_after", "sequence", "created_at")
    readonly_fields = fields


@admin.register(Wallet)
class WalletAdmin(ReadOnlyAdmin):
    list_display = ("id", "client", "currency", "balance", "status", "created_at")
    list_filter = ("status", "currency", "client")
    search_fields = ("=id",)
    fields = ("id", "client", "currency", "balance", "status", "sequence", "created_at")
    readonly_fields = fields
    inlines = (AccountEntryInline,)
    actions = ("freeze", "unfreeze")

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

    list_display = ("__str__", "kind", "code", "currency", "balance", "allow_negative")
    list_filter = ("kind", "currency", "allow_negative")
    search_fields = ("=id", "code")
    inlines = (AccountEntryInline,)


@admin.register(Journal)
class JournalAdmin(ReadOnlyAdmin):
    list_display = ("id", "kind", "payment", "refund_id", "transfer", "created_at")
    list_filter = ("kind", "created_at")
    search_fields = ("=id", "=payment__id", "=refund_id", "=transfer__id")
    inlines = (JournalEntryInline,)


@admin.register(Entry)
class EntryAdmin(ReadOnlyAdmin):
    list_display = ("id", "account", "sequence", "amount", "balance_after", "journal", "created_at")
    list_filter = ("account__kind", "account__currency", "created_at")
    search_fields = ("=id", "=account__id", "=journal__id")
    list_select_related = ("account", "journal")


@admin.register(Transfer)
class TransferAdmin(ReadOnlyAdmin):
    list_display = ("id", "client", "from_wallet", "to_wallet", "amount", "currency", "created_at")
    list_filter = ("currency", "created_at")
    search_fields = ("=id", "=from_wallet__id", "=to_wallet__id")
