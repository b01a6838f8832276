"""Reads on webhook endpoints, always scoped to the wallet app that owns them."""

from typing import Any
from uuid import UUID

from django.db.models import QuerySet

from paywave.errors import NotFound

from .models import WebhookEndpoint


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
