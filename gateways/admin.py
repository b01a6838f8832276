"""Gateways for staff: routing configuration (editable, live), health and circuit (read)."""

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from .circuit import circuit_close, circuit_status
from .health import gateway_health_get
from .models import Gateway, GatewayCallback


@admin.register(Gateway)
class GatewayAdmin(admin.ModelAdmin):
    list_display = (
        "code",
        "display_name",
        "adapter",
        "enabled",
        "priority",
        "methods",
        "currencies",
        "health",
        "circuit",
        "timeout_ms",
    )
    list_editable = ("enabled", "priority")
    list_filter = ("adapter", "enabled")
    readonly_fields = ("health", "circuit", "created_at", "updated_at")
    actions = ("close_circuit",)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        # A row's code names its callbacks URL and its attempts' history: fixed once created.
        fixed = ("code", "adapter") if obj is not None else ()
        return fixed + tuple(self.readonly_fields)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Payments, refunds and callbacks name their gateway by code long after the call:
        # a row is disabled (enabled=False), never deleted.
        return False

    @admin.display(description="health")
    def health(self, gateway: Gateway) -> str:
        health = gateway_health_get(gateway.code)
        if health is None:
            return "not probed yet"
        return f"{health['status']} ({health['latency_ms']} ms at {health['checked_at']})"

    @admin.display(description="circuit")
    def circuit(self, gateway: Gateway) -> str:
        status = circuit_status(gateway.code)
        return f"{status.state.value} ({status.failures} consecutive failures)"

    @admin.action(
        description="Close the circuit (the gateway is known to be back)", permissions=["change"]
    )
    def close_circuit(self, request: HttpRequest, queryset: QuerySet[Gateway]) -> None:
        for gateway in queryset:
            circuit_close(gateway.code, why=f"closed by staff:{request.user.get_username()}")
            self.log_change(request, gateway, "circuit closed by staff")
        self.message_user(request, f"Closed {queryset.count()} circuit(s).", messages.SUCCESS)


@admin.register(GatewayCallback)
class GatewayCallbackAdmin(admin.ModelAdmin):
    """Every callback as received: the audit trail of what gateways told us."""

    list_display = ("id", "gateway", "event_id", "kind", "status", "payment_id", "received_at")
    list_filter = ("gateway", "status", "kind")
    search_fields = ("=event_id", "=reference", "=payment_id")
    date_hierarchy = "received_at"
    readonly_fields = [field.name for field in GatewayCallback._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
