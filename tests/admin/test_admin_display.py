"""What staff read in the admin: times to the second, money in its currency."""

from datetime import UTC, datetime

import pytest
from django.test import Client

from payments.models import Payment
from tests.factories import PaymentFactory, UserFactory

pytestmark = [pytest.mark.services, pytest.mark.django_db]


@pytest.fixture
def staff() -> Client:
    client = Client()
    client.force_login(UserFactory(username="ops-admin", is_staff=True, is_superuser=True))
    return client


def test_times_are_shown_to_the_second_so_a_backoff_wait_is_visible(staff: Client) -> None:
    payment = PaymentFactory()
    Payment.objects.filter(pk=payment.pk).update(
        created_at=datetime(2026, 1, 15, 10, 4, 7, tzinfo=UTC),
        next_attempt_at=datetime(2026, 1, 15, 10, 4, 9, tzinfo=UTC),  # a 2 s backoff
    )

    listing = staff.get("/admin/payments/payment/").content.decode()
    page = staff.get(f"/admin/payments/payment/{payment.pk}/change/").content.decode()

    assert "2026-01-15 10:04:07 UTC" in listing
    assert "2026-01-15 10:04:07 UTC" in page
    assert "2026-01-15 10:04:09 UTC" in page
    assert "a.m." not in listing + page
