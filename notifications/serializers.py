"""The webhook endpoint as wallet apps see it (API.md, "Webhooks to wallet apps")."""

from datetime import UTC
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from paywave.api.pagination import PageQuerySerializer, QueryDateTimeField
from paywave.api.serializer_fields import StrictSerializer

from .models import ALL_EVENTS, EVENT_TYPES, WebhookEndpoint
from .services import MAX_URL_LENGTH

EVENT_CHOICES = [*EVENT_TYPES, ALL_EVENTS]


@extend_schema_field({"type": "string", "format": "uri", "pattern": "^[Hh][Tt][Tt][Pp][Ss]?://"})
class StrictURLField(serializers.URLField):
    """An http(s) URL written as a JSON string; where it may point is the service's rule."""

    default_error_messages = {"invalid": "Enter a valid http:// or https:// URL."}

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class WebhookEndpointCreateInputSerializer(StrictSerializer):
    url = StrictURLField(
        max_length=MAX_URL_LENGTH,
        help_text="Where deliveries are POSTed: https and a public address in production.",
    )
    events = serializers.ListField(
        child=serializers.ChoiceField(choices=EVENT_CHOICES),
        min_length=1,
        max_length=len(EVENT_CHOICES),
        help_text='Event types to receive, or ["*"] for all of them.',
    )


class WebhookEndpointOutputSerializer(serializers.Serializer):
    """For the OpenAPI schema; `webhook_endpoint_document` builds it."""

    id = serializers.UUIDField()
    url = serializers.CharField()
    events = serializers.ListField(child=serializers.ChoiceField(choices=EVENT_CHOICES))
    status = serializers.ChoiceField(
        choices=["enabled", "disabled"],
        help_text="disabled: PayWave stopped sending after every delivery failed for 24 h.",
    )
    created_at = serializers.DateTimeField()


class WebhookEndpointCreatedOutputSerializer(WebhookEndpointOutputSerializer):
    secret = serializers.CharField(
        help_text="The signing secret (whsec_...), shown only in this answer: store it."
    )


class WebhookEndpointPageOutputSerializer(serializers.Serializer):
    results = WebhookEndpointOutputSerializer(many=True)
    next = serializers.URLField(allow_null=True, help_text="The next page, or null.")
    has_more = serializers.BooleanField(help_text="Whether a next page exists.")


class EventOutputSerializer(serializers.Serializer):
    """An event as deliveries carry it (webhooks.md): the same id, type, time and data."""

    id = serializers.CharField(help_text="evt_...: the id deliveries carry; dedupe on it.")
    type = serializers.ChoiceField(choices=EVENT_TYPES)
    created_at = serializers.DateTimeField()
    # A declared field: DRF's metaclass takes it off the class, its stubs don't know.
    data = serializers.DictField(  # type: ignore[assignment]
        help_text="The subject (payment, refund, ...) as it became."
    )


class EventPageOutputSerializer(serializers.Serializer):
    results = EventOutputSerializer(many=True)
    next = serializers.URLField(allow_null=True, help_text="The next page, or null.")
    has_more = serializers.BooleanField(help_text="Whether a next page exists.")


class EventListFilterSerializer(PageQuerySerializer):
    type = serializers.ChoiceField(choices=EVENT_TYPES, required=False)
    created_after = QueryDateTimeField(
        required=False,
        help_text="Only events after this time (RFC 3339); the list reaches back 30 days.",
    )
    created_before = QueryDateTimeField(
        required=False,
        help_text="Only events before this time (RFC 3339); must be later than "
        "`created_after` when both are given (else 400).",
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        after, before = attrs.get("created_after"), attrs.get("created_before")
        if after and before and after >= before:
            raise serializers.ValidationError({"created_before": "Must be after created_after."})
        return attrs


def webhook_endpoint_document(endpoint: WebhookEndpoint) -> dict[str, Any]:
    return {
        "id": str(endpoint.id),
        "url": endpoint.url,
        "events": list(endpoint.events),
        "status": "enabled" if endpoint.enabled else "disabled",
        "created_at": endpoint.created_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
    }
