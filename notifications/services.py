"""Recording events, and wallet apps' webhook endpoints; delivering is delivery.py's job."""

import logging
from typing import Any
from uuid import UUID

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from paywave.api.errors import ApplicationError, Conflict, NotFound
from paywave.models import ApiClient

from .addresses import webhook_url_problem
from .fan_out import event_insert_fanned_out, subscribed_endpoints
from .models import ALL_EVENTS, EVENT_TYPES, Delivery, DeliveryStatus, Event, WebhookEndpoint
from .signing import webhook_secret_generate
from .subscriptions import endpoints_changed

logger = logging.getLogger(__name__)

MAX_ENDPOINTS_PER_CLIENT = 16
MAX_URL_LENGTH = 2048
ENDPOINT_DELETED = "The endpoint was deleted."  # a delivery's last error


def event_record(*, type: str, client_id: Any, subject_id: UUID, data: dict[str, Any]) -> Event:
    """Call inside the transaction that makes the event true, so both commit or neither.

    The event is fanned out in the same transaction: one Delivery per enabled endpoint
    of the wallet app that subscribes to its type, each delivery's job published after
    the commit (a publish the broker refuses is found by the deliveries sweep). An
    event nobody subscribes to costs one insert and no job (who subscribes is cached:
    notifications/subscriptions.py).
    """
    now = timezone.now()
    event = Event(
        type=type,
        client_id=client_id,
        subject_id=subject_id,
        data=data,
        created_at=now,
        fanned_out_at=now,
    )
    event_insert_fanned_out(event, subscribed_endpoints(event))
    return event


def _normalized_events(events: list[str]) -> list[str]:
    unknown = [name for name in events if name != ALL_EVENTS and name not in EVENT_TYPES]
    if unknown:
        raise ApplicationError(
            f"Unknown event type: {unknown[0]}.",
            fields={"events": f"Each event is one of {', '.join(EVENT_TYPES)}, or {ALL_EVENTS}."},
        )
    if not events:
        raise ApplicationError(
            "Subscribe to at least one event.", fields={"events": "At least one is required."}
        )
    if ALL_EVENTS in events:
        return [ALL_EVENTS]
    return [name for name in EVENT_TYPES if name in events]  # deduplicated, documented order


def webhook_endpoint_create(*, client_id: Any, url: str, events: list[str]) -> WebhookEndpoint:
    """A new endpoint with a fresh secret (readable once, on the returned object)."""
    problem = (
        "At most 2048 characters."
        if len(url) > MAX_URL_LENGTH
        else webhook_url_problem(url, allow_private=settings.PAYWAVE_WEBHOOK_ALLOW_PRIVATE)
    )
    if problem:
        raise ApplicationError(
            f"This URL cannot receive webhooks: {problem}", fields={"url": problem}
        )
    subscribed = _normalized_events(events)
    with transaction.atomic():
        # Serializes one wallet app's creations, so the limit holds under concurrency. NO KEY:
        # rows that reference the wallet app (its payments, its Idempotency-Keys) check it
        # with a KEY SHARE lock as they commit, and must not wait for this one (nor, waiting
        # for a key this transaction also waits on, deadlock with it).
        ApiClient.objects.select_for_update(no_key=True).filter(pk=client_id).first()
        count = WebhookEndpoint.objects.filter(client_id=client_id, deleted_at__isnull=True).count()
        if count >= MAX_ENDPOINTS_PER_CLIENT:
            raise Conflict(
                f"A wallet app may have at most {MAX_ENDPOINTS_PER_CLIENT} webhook endpoints; "
                "delete one first.",
                code="webhook_endpoint_limit",
            )
        endpoint = WebhookEndpoint.objects.create(  # post_save: endpoints_changed
            client_id=client_id, url=url, events=subscribed, secret=webhook_secret_generate()
        )
    # Once it commits: a request that lost its Idempotency-Key to another is rolled back.
    transaction.on_commit(
        lambda: logger.info(
            "webhook endpoint created",
            extra={"endpoint_id": str(endpoint.id), "client_id": str(client_id)},
        ),
        robust=True,
    )
    return endpoint


def webhook_endpoint_delete(*, client_id: Any, endpoint_id: UUID) -> None:
    """Soft delete: nothing more is sent to it; its pending deliveries fail."""
    now = timezone.now()
    with transaction.atomic():
        deleted = WebhookEndpoint.objects.filter(
            pk=endpoint_id, client_id=client_id, deleted_at__isnull=True
        ).update(deleted_at=now, enabled=False, updated_at=now)
        if not deleted:
            raise NotFound("No such webhook endpoint.", code="webhook_endpoint_not_found")
        endpoints_changed()
        Delivery.objects.filter(endpoint_id=endpoint_id, status=DeliveryStatus.PENDING).update(
            status=DeliveryStatus.FAILED,
            job_token=None,
            next_attempt_at=None,
            last_error=ENDPOINT_DELETED,
        )
    logger.info(
        "webhook endpoint deleted",
        extra={"endpoint_id": str(endpoint_id), "client_id": str(client_id)},
    )


def webhook_endpoint_disable(*, endpoint_id: UUID, reason: str, actor: str) -> bool:
    """Stop sending to the endpoint; its pending deliveries wait. False if it was not enabled."""
    now = timezone.now()
    disabled = WebhookEndpoint.objects.filter(
        pk=endpoint_id, enabled=True, deleted_at__isnull=True
    ).update(enabled=False, disabled_at=now, disabled_reason=reason[:255], updated_at=now)
    if disabled:
        endpoints_changed()
        logger.warning(
            "webhook endpoint disabled by %s: %s",
            actor,
            reason,
            extra={"endpoint_id": str(endpoint_id), "actor": actor},
        )
    return bool(disabled)


def webhook_endpoint_enable(*, endpoint_id: UUID, actor: str) -> bool:
    """Send to the endpoint again: its pending deliveries resume with a fresh retry window."""
    now = timezone.now()
    with transaction.atomic():
        enabled = WebhookEndpoint.objects.filter(
            pk=endpoint_id, enabled=False, deleted_at__isnull=True
        ).update(enabled=True, disabled_at=None, disabled_reason="", updated_at=now)
        if enabled:
            endpoints_changed()
            # No job is queued for them now; beat's delivery sweep publishes them, in order.
            Delivery.objects.filter(endpoint_id=endpoint_id, status=DeliveryStatus.PENDING).update(
                window_started_at=now, next_attempt_at=now, job_token=None
            )
    if enabled:
        logger.warning(
            "webhook endpoint enabled by %s",
            actor,
            extra={"endpoint_id": str(endpoint_id), "actor": actor},
        )
    return bool(enabled)
