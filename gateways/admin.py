from django.contrib import admin

from gateways.models import Gateway


@admin.register(Gateway)
class GatewayAdmin(admin.ModelAdmin):
    list_display = ("code", "display_name", "adapter", "enabled", "priority", "timeout_ms")
    list_editable = ("enabled", "priority")
    list_filter = ("adapter", "enabled")
    readonly_fields = ("created_at", "updated_at")
