"""Staff views of webhook endpoints and deliveries; every change goes through the services."""

import json
import logging

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html
from django.utils.safestring import SafeString

from .delivery import delivery_redeliver
from .models import Delivery, DeliveryAttempt, Event, WebhookEndpoint
from .services import webhook_endpoint_disable, webhook_endpoint_enable

logger = logging.getLogger("paywave.audit")


def _staff(request: HttpRequest) -> str:
    return f"staff:{request.user.get_username()}"


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(ReadOnlyAdmin):
    """Endpoints come from wallet apps (the API); staff enable and disable them."""

    list_display = ("url", "client", "enabled", "events", "last_success_at", "created_at")
    list_filter = ("enabled",)
    search_fields = ("=id", "url", "client__name")
    # The secret is never shown (it is not in `fields`).
    fields = (
        "id",
        "client",
        "url",
        "events",
        "enabled",
        "disabled_at",
        "disabled_reason",
        "last_success_at",
        "last_failure_at",
        "deleted_at",
        "created_at",
        "updated_at",
    )
    readonly_fields = fields
    actions = ("enable", "disable")

    def get_queryset(self, request: HttpRequest) -> QuerySet[WebhookEndpoint]:
        return super().get_queryset(request).defer("secret").select_related("client")

    def has_manage_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("notifications.change_webhookendpoint")

    @admin.action(description="Enable (pending deliveries resume)", permissions=["manage"])
    def enable(self, request: HttpRequest, queryset: QuerySet[WebhookEndpoint]) -> None:
        actor = _staff(request)
        done = sum(webhook_endpoint_enable(endpoint_id=e.pk, actor=actor) for e in queryset)
        self.message_user(request, f"{done} endpoint(s) enabled.", messages.SUCCESS)

    @admin.action(description="Disable (nothing is sent until enabled)", permissions=["manage"])
    def disable(self, request: HttpRequest, queryset: QuerySet[WebhookEndpoint]) -> None:
        actor = _staff(request)
        done = sum(
            webhook_endpoint_disable(endpoint_id=e.pk, reason=f"disabled by {actor}", actor=actor)
            for e in queryset
        )
        self.message_user(request, f"{done} endpoint(s) disabled.", messages.SUCCESS)


class DeliveryAttemptInline(admin.TabularInline):
    model = DeliveryAttempt
    fields = ("number", "created_at", "succeeded", "status_code", "latency_ms", "error",
              "response_excerpt")  # fmt: skip
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyAdmin):
    list_display = ("id", "event_type", "endpoint", "status", "attempt_count",
                    "next_attempt_at", "delivered_at", "created_at")  # fmt: skip
    list_filter = ("status",)
    search_fields = ("=id", "=subject_id", "=endpoint__id")
    fields = ("id", "event", "endpoint", "subject_id", "status", "attempt_count",
              "window_started_at", "next_attempt_at", "last_attempt_at", "delivered_at",
              "last_error", "created_at")  # fmt: skip
    readonly_fields = fields
    inlines = (DeliveryAttemptInline,)
    actions = ("redeliver",)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Delivery]:
        return (
            super()
            .get_queryset(request)
            .select_related("event", "endpoint")
            .defer("endpoint__secret", "event__data")
        )

    def has_manage_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("notifications.change_delivery")

    @admin.display(description="event", ordering="event__type")
    def event_type(self, delivery: Delivery) -> str:
        return delivery.event.type

    @admin.action(description="Redeliver (a fresh 24 h of retries)", permissions=["manage"])
    def redeliver(self, request: HttpRequest, queryset: QuerySet[Delivery]) -> None:
        actor = _staff(request)
        ids = list(queryset.values_list("pk", flat=True))
        done = [pk for pk in ids if delivery_redeliver(delivery_id=pk, actor=actor)]
        logger.warning(
            "%s scheduled deliveries %s again",
            actor,
            done,
            extra={"actor": actor, "staff_user": request.user.get_username(), "deliveries": done},
        )
        self.message_user(request, f"{len(done)} delivery(ies) scheduled again.", messages.SUCCESS)


@admin.register(Event)
class EventAdmin(ReadOnlyAdmin):
    list_display = ("id", "type", "client", "subject_id", "created_at", "fanned_out_at")
    list_filter = ("type",)
    search_fields = ("=id", "=subject_id")
    fields = ("id", "type", "client", "subject_id", "document", "created_at", "fanned_out_at")
    readonly_fields = fields

    @admin.display(description="data")
    def document(self, event: Event) -> SafeString:
        return format_html("<pre>{}</pre>", json.dumps(event.data, indent=2, ensure_ascii=False))
