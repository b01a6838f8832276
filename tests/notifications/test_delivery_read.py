"""A try's read of its delivery, compiled once and hydrated by hand, is the ORM's read.

`_delivery_read` runs SQL compiled once per connection (paywave.queries) and builds the
Delivery, its event and endpoint the way Django's ModelIterable does. These compare it,
field by field and type by type, with `_DELIVERY_READ.filter(...).first()`, so that a
Django upgrade that changes how the ORM builds objects fails here rather than in a
wallet app.
"""

import uuid
from typing import Any

import pytest
from django.core.exceptions import ValidationError

from notifications.delivery import _DELIVERY_READ, PENDING, _delivery_read
from notifications.models import Delivery, DeliveryStatus, Event, WebhookEndpoint
from tests.factories import WebhookEndpointFactory
from tests.helpers import column_values
from tests.notifications.conftest import Jobs, Receiver, record_event

pytestmark = pytest.mark.django_db


def orm_read(delivery_id: int, token: Any) -> Delivery | None:
    return _DELIVERY_READ.filter(pk=delivery_id, status=PENDING, job_token=token).first()


def assert_same_read(read: Delivery | None, expected: Delivery | None) -> None:
    assert expected is not None
    assert read is not None
    assert column_values(read) == column_values(expected)
    assert (read._state.db, read._state.adding) == (expected._state.db, expected._state.adding)
    assert read.after_another is expected.after_another
    for relation, model in (("event", Event), ("endpoint", WebhookEndpoint)):
        assert Delivery._meta.get_field(relation).is_cached(read)  # joined, not read later
        related, expected_related = getattr(read, relation), getattr(expected, relation)
        assert type(related) is model
        assert column_values(related) == column_values(expected_related)
        assert (related._state.db, related._state.adding) == (
            expected_related._state.db,
            expected_related._state.adding,
        )
    # Decrypted as the ORM decrypts them (from_db_value), not left as stored.
    assert read.endpoint.secret == expected.endpoint.secret
    assert read.endpoint.secret.startswith("whsec_test_secret_")
    assert read.event.data == expected.event.data
    assert read.event.data["status"] == "processing"


@pytest.fixture
def subject() -> uuid.UUID:
    return uuid.uuid4()


def pending(receiver: Receiver, subject: uuid.UUID) -> tuple[Delivery, Delivery]:
    """Two pending deliveries about the same subject: the second reads `after_another`."""
    endpoint = WebhookEndpointFactory(url=receiver.url())
    first, second = (
        Delivery.objects.get(event=record_event(endpoint.client, "payment.processing", subject))
        for _ in range(2)
    )
    return first, second


def test_the_compiled_read_is_the_orms_read(
    receiver: Receiver, jobs: Jobs, subject: uuid.UUID
) -> None:
    first, second = pending(receiver, subject)
    WebhookEndpoint.objects.filter(pk=first.endpoint_id).update(
        last_failure_at=first.created_at, disabled_reason="a reason"
    )

    for delivery, after_another in ((first, False), (second, True)):
        read = _delivery_read(delivery.pk, delivery.job_token)
        assert_same_read(read, orm_read(delivery.pk, delivery.job_token))
        assert read is not None
        assert read.after_another is after_another
        # As the job gets it from the broker: the token as a str.
        assert_same_read(_delivery_read(delivery.pk, str(delivery.job_token)), read)


def test_no_delivery_is_read_for_another_token_or_once_it_is_not_pending(
    receiver: Receiver, jobs: Jobs, subject: uuid.UUID
) -> None:
    first, _ = pending(receiver, subject)

    assert _delivery_read(first.pk, uuid.uuid4()) is None
    assert _delivery_read(first.pk + 1000, first.job_token) is None
    Delivery.objects.filter(pk=first.pk).update(status=DeliveryStatus.DELIVERED)
    assert _delivery_read(first.pk, first.job_token) is None
    assert orm_read(first.pk, first.job_token) is None


def test_a_token_that_is_no_uuid_fails_as_the_orm_fails(
    receiver: Receiver, jobs: Jobs, subject: uuid.UUID
) -> None:
    first, _ = pending(receiver, subject)

    with pytest.raises(ValidationError):
        orm_read(first.pk, "not a token")
    with pytest.raises(ValidationError):
        _delivery_read(first.pk, "not a token")
