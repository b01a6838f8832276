"""/metrics: how long an endpoint has taken nothing, from the database (the alert's input)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from notifications.metrics import failing_endpoints_read
from notifications.models import Delivery
from notifications.services import (
    webhook_endpoint_delete,
    webhook_endpoint_disable,
    webhook_endpoint_enable,
)
from tests.factories import WebhookEndpointFactory
from tests.notifications.conftest import Jobs, Receiver, record_event
from tests.ops.test_metrics import value

pytestmark = pytest.mark.django_db(transaction=True)


def fail_once(receiver: Receiver, jobs: Jobs, endpoint: object, minutes_ago: float) -> None:
    """An event whose first try failed, recorded `minutes_ago`."""
    event = record_event(endpoint.client)  # type: ignore[attr-defined]
    jobs.run_next()
    jobs.queue.clear()  # its retry waits
    Delivery.objects.filter(event=event).update(
        created_at=timezone.now() - timedelta(minutes=minutes_ago)
    )


def test_an_endpoint_failing_since_its_oldest_pending_try(receiver: Receiver, jobs: Jobs) -> None:
    receiver.script(503, 503, 503)
    down = WebhookEndpointFactory(url=receiver.url())
    fail_once(receiver, jobs, down, minutes_ago=20)
    fail_once(receiver, jobs, down, minutes_ago=3)
    fine = WebhookEndpointFactory(url=receiver.url())
    record_event(fine.client)
    jobs.drive()  # answered 200: delivered
    waiting = WebhookEndpointFactory(url=receiver.url())
    record_event(waiting.client)  # not tried yet: not failing
    jobs.queue.clear()

    failing = failing_endpoints_read()

    assert set(failing) == {str(down.pk)}
    assert 20 * 60 <= failing[str(down.pk)] < 21 * 60


def test_an_endpoint_that_answers_again_leaves_the_metric(receiver: Receiver, jobs: Jobs) -> None:
    receiver.script(503)  # then 200
    endpoint = WebhookEndpointFactory(url=receiver.url())
    record_event(endpoint.client)
    jobs.run_next()
    assert str(endpoint.pk) in failing_endpoints_read()

    jobs.drive()  # its retry is delivered

    assert str(endpoint.pk) not in failing_endpoints_read()


def test_a_disabled_endpoint_is_an_operator_choice_not_a_failure(
    receiver: Receiver, jobs: Jobs
) -> None:
    receiver.script(503)
    endpoint = WebhookEndpointFactory(url=receiver.url())
    fail_once(receiver, jobs, endpoint, minutes_ago=30)
    webhook_endpoint_disable(endpoint_id=endpoint.pk, reason="maintenance", actor="staff:test")

    assert failing_endpoints_read() == {}
    webhook_endpoint_enable(endpoint_id=endpoint.pk, actor="staff:test")
    assert str(endpoint.pk) in failing_endpoints_read()


def test_api_metrics_serve_it(client: object, receiver: Receiver, jobs: Jobs) -> None:
    receiver.script(503)
    endpoint = WebhookEndpointFactory(url=receiver.url())
    fail_once(receiver, jobs, endpoint, minutes_ago=16)

    text = client.get("/metrics").content.decode()  # type: ignore[attr-defined]

    seconds = value(text, "paywave_webhook_endpoint_failing_seconds", endpoint=str(endpoint.pk))
    assert seconds is not None
    assert 16 * 60 <= seconds < 17 * 60


def test_a_deleted_endpoint_is_not_failing(receiver: Receiver, jobs: Jobs) -> None:
    receiver.script(503)
    endpoint = WebhookEndpointFactory(url=receiver.url())
    fail_once(receiver, jobs, endpoint, minutes_ago=30)
    assert str(endpoint.pk) in failing_endpoints_read()

    webhook_endpoint_delete(client_id=endpoint.client_id, endpoint_id=endpoint.pk)

    assert failing_endpoints_read() == {}
