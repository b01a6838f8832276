"""Who an event goes to is cached per wallet app, and every change to an endpoint is seen."""

import uuid
from datetime import timedelta
from typing import Any

import pytest
from django.db import transaction
from django.utils import timezone

from notifications.models import Delivery, Event, WebhookEndpoint
from notifications.services import (
    event_record,
    webhook_endpoint_create,
    webhook_endpoint_delete,
    webhook_endpoint_disable,
    webhook_endpoint_enable,
)
from paywave.cache.json_state import json_state
from tests.factories import ApiClientFactory

pytestmark = pytest.mark.django_db


def recorded_to(client: Any, type: str = "payment.succeeded") -> set[uuid.UUID]:
    """The endpoints the event recorded now got a delivery for."""
    with transaction.atomic():
        event = event_record(type=type, client_id=client.pk, subject_id=uuid.uuid4(), data={})
    return set(Delivery.objects.filter(event=event).values_list("endpoint_id", flat=True))


def created(client: Any, events: list[str]) -> WebhookEndpoint:
    endpoint = webhook_endpoint_create(
        client_id=client.pk, url="https://hooks.example.com/paywave", events=events
    )
    # Made a moment ago: events recorded now are after it.
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
        created_at=timezone.now() - timedelta(seconds=1)
    )
    return endpoint


def test_every_change_to_an_endpoint_is_seen_by_the_next_event(settings: Any) -> None:
    settings.PAYWAVE_WEBHOOK_ALLOW_PRIVATE = True
    app = ApiClientFactory()
    assert recorded_to(app) == set()  # cached: no endpoint

    first = created(app, ["*"])
    assert recorded_to(app) == {first.pk}
    only_failures = created(app, ["payment.failed"])
    assert recorded_to(app) == {first.pk}
    assert recorded_to(app, "payment.failed") == {first.pk, only_failures.pk}

    webhook_endpoint_disable(endpoint_id=first.pk, reason="test", actor="staff")
    assert recorded_to(app) == set()
    webhook_endpoint_enable(endpoint_id=first.pk, actor="staff")
    assert recorded_to(app) == {first.pk}
    webhook_endpoint_delete(client_id=app.pk, endpoint_id=first.pk)
    assert recorded_to(app) == set()


def test_an_endpoint_saved_as_a_model_is_seen_too() -> None:
    app = ApiClientFactory()
    assert recorded_to(app) == set()
    endpoint = WebhookEndpoint.objects.create(
        client=app, url="https://hooks.example.com/a", events=["*"], secret="whsec_test"
    )
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
        created_at=timezone.now() - timedelta(seconds=1)
    )  # an update() is not a change of subscription: the create was
    assert recorded_to(app) == {endpoint.pk}
    Delivery.objects.all().delete()  # deliveries protect their endpoint
    endpoint.delete()
    assert recorded_to(app) == set()


def test_an_event_whose_subscriptions_are_cached_costs_its_own_rows_only(
    django_assert_max_num_queries: Any,
) -> None:
    app = ApiClientFactory()
    endpoint = WebhookEndpoint.objects.create(
        client=app, url="https://hooks.example.com/a", events=["*"], secret="whsec_test"
    )
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
        created_at=timezone.now() - timedelta(seconds=1)
    )
    recorded_to(app)  # reads the endpoints once

    with django_assert_max_num_queries(2 + 2), transaction.atomic():  # a savepoint pair
        event = event_record(
            type="payment.succeeded", client_id=app.pk, subject_id=uuid.uuid4(), data={}
        )
    assert Delivery.objects.get(event=event).endpoint_id == endpoint.pk
    assert Event.objects.count() == 2


def test_an_entry_stored_before_the_change_committed_is_not_taken_as_current(
    django_capture_on_commit_callbacks: Any,
) -> None:
    """Another process read the rows before the change committed and cached them: the
    commit makes its entry out of date."""
    from notifications.subscriptions import client_subscriptions

    app = ApiClientFactory()
    assert recorded_to(app) == set()
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        endpoint = WebhookEndpoint.objects.create(
            client=app, url="https://hooks.example.com/a", events=["*"], secret="whsec_test"
        )
        WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
            created_at=timezone.now() - timedelta(seconds=1)
        )
        stale = client_subscriptions(app.pk)  # as the other process's read: rows cached
        json_state().set(
            f"paywave:webhook-endpoints:{app.pk}",
            {"generation": current_generation(), "rows": []},  # ... without the endpoint
            300,
        )
        assert stale  # (this transaction sees its own endpoint)

    assert recorded_to(app) == {endpoint.pk}


def current_generation() -> Any:
    from notifications.subscriptions import GENERATION_KEY

    return json_state().get_many([GENERATION_KEY])[GENERATION_KEY]
