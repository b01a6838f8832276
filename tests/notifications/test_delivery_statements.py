"""Statements per webhook delivery: a count, not a time, so a regression fails CI.

The tests run inside a transaction (pytest-django's `db`), so a transaction the code
opens shows up as a savepoint pair, and counts as the BEGIN and COMMIT it costs.
A delivery's try is 5 statements: read it (with whether anything about its subject
goes first), claim the try, log it, move the delivery on, start the next one about
the same subject. On PostgreSQL a delivered try logs, moves on and starts the next in
one statement: 3. The endpoint's last success or failure is written at most once a
minute (it is read with the delivery).
"""

import uuid
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from notifications.delivery import Outcome, delivery_attempt
from notifications.models import Delivery, DeliveryStatus, WebhookEndpoint
from tests.factories import WebhookEndpointFactory
from tests.notifications.conftest import Jobs, Receiver, record_event

pytestmark = pytest.mark.django_db

DELIVERY_STATEMENTS = 5
DELIVERED_STATEMENTS = 3 if connection.vendor == "postgresql" else DELIVERY_STATEMENTS


def endpoint_noted_just_now(url: str) -> WebhookEndpoint:
    endpoint = WebhookEndpointFactory(url=url)
    a_second_ago = timezone.now() - timedelta(seconds=1)
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
        created_at=timezone.now() - timedelta(days=1),
        last_success_at=a_second_ago,
        last_failure_at=a_second_ago,
    )
    return endpoint


def pending(event: Any) -> Delivery:
    return Delivery.objects.get(event=event)


def test_a_delivered_try_that_starts_the_next_about_its_subject(
    receiver: Receiver, jobs: Jobs, django_assert_max_num_queries: Any
) -> None:
    endpoint = endpoint_noted_just_now(receiver.url())
    subject = uuid.uuid4()
    first = pending(record_event(endpoint.client, "payment.processing", subject_id=subject))
    second = pending(record_event(endpoint.client, "payment.succeeded", subject_id=subject))
    Delivery.objects.filter(pk=second.pk).update(job_token=None)  # its job found it waiting

    with django_assert_max_num_queries(DELIVERED_STATEMENTS):
        assert delivery_attempt(first.pk, first.job_token) == Outcome.DELIVERED

    second.refresh_from_db()
    assert second.job_token is not None  # started
    with django_assert_max_num_queries(DELIVERED_STATEMENTS):
        assert delivery_attempt(second.pk, second.job_token) == Outcome.DELIVERED
    assert Delivery.objects.filter(status=DeliveryStatus.DELIVERED).count() == 2


def test_a_failed_try_that_is_retried(
    receiver: Receiver, jobs: Jobs, django_assert_max_num_queries: Any
) -> None:
    receiver.default = 500
    endpoint = endpoint_noted_just_now(receiver.url())
    delivery = pending(record_event(endpoint.client))

    with django_assert_max_num_queries(DELIVERY_STATEMENTS):
        assert delivery_attempt(delivery.pk, delivery.job_token) == Outcome.RETRY


def test_the_endpoint_is_noted_once_a_minute_not_on_every_delivery(
    receiver: Receiver, jobs: Jobs
) -> None:
    endpoint = WebhookEndpointFactory(url=receiver.url())
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
        created_at=timezone.now() - timedelta(days=1)
    )
    first, second = (pending(record_event(endpoint.client)) for _ in range(2))

    delivery_attempt(first.pk, first.job_token)
    noted = WebhookEndpoint.objects.get(pk=endpoint.pk).last_success_at
    assert noted is not None
    delivery_attempt(second.pk, second.job_token)
    assert WebhookEndpoint.objects.get(pk=endpoint.pk).last_success_at == noted
