from django.contrib import admin

from .models import Payment, PaymentAttempt, PaymentEvent


class PaymentEventInline(admin.TabularInline):
    model = PaymentEvent
    fields = ("created_at", "from_status", "to_status", "reason", "actor")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False


class PaymentAttemptInline(admin.TabularInline):
    model = PaymentAttempt
    fields = ("created_at", "gateway", "number", "outcome", "error_class", "latency_ms")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Payment)
class PaymentAdmin(admin.ModelAdmin):
    """Read-only until staff actions go through the payment services."""

    list_display = ("id", "client", "status", "method", "amount", "currency", "created_at")
    list_filter = ("status", "method", "gateway", "created_at")
    search_fields = ("=id", "=pix_txid")
    inlines = (PaymentEventInline, PaymentAttemptInline)
    exclude = ("payer_email_hash", "payer_tax_id_hash", "card_token", "payer_tax_id")

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
