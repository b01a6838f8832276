"""Events, their deliveries and their tries are deleted PAYWAVE_EVENT_RETENTION_DAYS after
the event, and nothing younger is."""

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from config.celery_app import app as celery_app
from notifications.models import Delivery, DeliveryAttempt, DeliveryStatus, Event
from notifications.retention import events_purge_expired
from notifications.tasks import purge_expired_events
from tests.factories import ApiClientFactory, WebhookEndpointFactory

pytestmark = pytest.mark.django_db


def event_aged(age: timedelta, client: Any, endpoint: Any, *, status: str, tries: int) -> Event:
    """An event `age` old, delivered to `endpoint` with `tries` tries."""
    event = Event.objects.create(
        type="payment.succeeded", client=client, subject_id=client.pk, data={"id": "x"}
    )
    created_at = timezone.now() - age
    Event.objects.filter(pk=event.pk).update(created_at=created_at)
    delivery = Delivery.objects.create(
        event=event,
        endpoint=endpoint,
        subject_id=event.subject_id,
        status=status,
        window_started_at=created_at,
    )
    for number in range(1, tries + 1):
        DeliveryAttempt.objects.create(
            delivery=delivery, number=number, succeeded=number == tries, latency_ms=5
        )
    return event


def test_events_past_the_retention_go_with_their_deliveries_and_tries_nothing_else() -> None:
    client = ApiClientFactory()
    endpoint = WebhookEndpointFactory(client=client)
    day = timedelta(days=1)
    old = [
        event_aged(90 * day + timedelta(minutes=1), client, endpoint, status="delivered", tries=3),
        event_aged(400 * day, client, endpoint, status="failed", tries=2),
        event_aged(91 * day, client, endpoint, status=DeliveryStatus.PENDING, tries=1),
    ]
    young = [
        event_aged(90 * day - timedelta(minutes=1), client, endpoint, status="delivered", tries=2),
        event_aged(timedelta(0), client, endpoint, status=DeliveryStatus.PENDING, tries=0),
    ]

    assert events_purge_expired(batch_size=2) == len(old)  # several batches

    assert set(Event.objects.values_list("pk", flat=True)) == {event.pk for event in young}
    assert set(Delivery.objects.values_list("event_id", flat=True)) == {e.pk for e in young}
    assert DeliveryAttempt.objects.count() == 2
    assert events_purge_expired() == 0


def test_the_retention_is_a_setting(settings: Any) -> None:
    client = ApiClientFactory()
    endpoint = WebhookEndpointFactory(client=client)
    kept = event_aged(timedelta(days=9), client, endpoint, status="delivered", tries=1)
    event_aged(timedelta(days=11), client, endpoint, status="delivered", tries=1)
    settings.PAYWAVE_EVENT_RETENTION_DAYS = 10

    assert purge_expired_events() == 1

    assert list(Event.objects.values_list("pk", flat=True)) == [kept.pk]


def test_beat_runs_every_purge_hourly(settings: Any) -> None:
    celery_app.loader.import_default_modules()  # the tasks modules, as a worker loads them
    schedule = {
        entry["task"]: entry["schedule"] for entry in settings.CELERY_BEAT_SCHEDULE.values()
    }
    for task in (
        "notifications.purge_expired_events",
        "gateways.purge_rejected_callbacks",
        "paywave.purge_expired_idempotency_keys",
    ):
        assert schedule[task] == timedelta(hours=1)
        assert task in celery_app.tasks
