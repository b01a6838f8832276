"""Events hold the payment as the API showed it, payer included: encrypted at rest, and
delivered to wallet apps exactly as before."""

import pytest
from django.db import connection

from payments.models import PaymentStatus
from payments.serializers import payment_document
from payments.transitions import payment_transition
from tests.factories import PaymentFactory, WebhookEndpointFactory
from tests.notifications.conftest import Jobs, Receiver

pytestmark = pytest.mark.django_db(transaction=True)


def test_events_keep_no_payer_data_in_clear_and_deliveries_carry_it(
    receiver: Receiver, jobs: Jobs
) -> None:
    payment = PaymentFactory(payer_email="ana@example.com", description="Top-up")
    WebhookEndpointFactory(client=payment.client, url=receiver.url())

    canceled = payment_transition(
        payment_id=payment.id,
        from_statuses=[PaymentStatus.PENDING],
        to_status=PaymentStatus.CANCELED,
        reason="test",
        actor="client",
    )
    jobs.drive()

    with connection.cursor() as cursor:
        cursor.execute("SELECT CAST(data AS TEXT) FROM notifications_event")
        [(stored,)] = cursor.fetchall()
    for personal in ("Ana Souza", "ana@example.com", "Top-up"):
        assert personal not in stored
    [request] = receiver.requests
    delivered = request.json()
    assert delivered["type"] == "payment.canceled"
    assert delivered["data"] == payment_document(canceled)
    assert delivered["data"]["payer"]["name"] == "Ana Souza"
    assert delivered["data"]["payer"]["email"] == "ana@example.com"
