"""Reads on webhook endpoints and events, always scoped to the wallet app that owns them."""

from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone

from paywave.api.errors import NotFound

from .models import Event, WebhookEndpoint


def event_list(
    *,
    client_id: Any,
    type: str | None = None,
    created_after: datetime | None = None,
    created_before: datetime | None = None,
) -> QuerySet[Event]:
    """The wallet app's events of the last PAYWAVE_EVENTS_LIST_DAYS, newest first."""
    oldest = timezone.now() - timedelta(days=settings.PAYWAVE_EVENTS_LIST_DAYS)
    if created_after is None or created_after < oldest:
        created_after = oldest
    events = Event.objects.filter(client_id=client_id, created_at__gt=created_after)
    if type:
        events = events.filter(type=type)
    if created_before is not None:
        events = events.filter(created_at__lt=created_before)
    return events.defer("fanned_out_at")


def _not_found() -> NotFound:
    # Another wallet app's endpoint is as invisible as one that does not exist.
    return NotFound("No such webhook endpoint.", code="webhook_endpoint_not_found")


def webhook_endpoint_list(*, client_id: Any) -> QuerySet[WebhookEndpoint]:
    return WebhookEndpoint.objects.filter(client_id=client_id, deleted_at__isnull=True).defer(
        "secret"
    )


def webhook_endpoint_get(*, client_id: Any, endpoint_id: UUID) -> WebhookEndpoint:
    endpoint = webhook_endpoint_list(client_id=client_id).filter(pk=endpoint_id).first()
    if endpoint is None:
        raise _not_found()
    return endpoint


def webhook_endpoint_secret(*, client_id: Any, endpoint_id: Any) -> str:
    """The signing secret, for replaying the creation answer (Idempotency-Key) only."""
    secret = (
        WebhookEndpoint.objects.filter(pk=endpoint_id, client_id=client_id)
        .values_list("secret", flat=True)
        .first()
    )
    if secret is None:
        raise _not_found()
    return secret
