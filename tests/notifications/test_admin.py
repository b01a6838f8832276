"""Staff views: endpoints (the secret never shown; enable/disable) and deliveries (redeliver)."""

import logging
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

from notifications.models import Delivery, DeliveryAttempt, DeliveryStatus, Event
from tests.factories import WebhookEndpointFactory
from tests.notifications.conftest import Jobs

pytestmark = pytest.mark.django_db

ENDPOINTS = "/admin/notifications/webhookendpoint/"
DELIVERIES = "/admin/notifications/delivery/"


@pytest.fixture
def staff(admin_client: Client) -> Client:
    return admin_client


@pytest.fixture
def delivered(db: Any) -> Delivery:
    endpoint = WebhookEndpointFactory(url="https://wallet.example.com/hooks")
    event = Event.objects.create(
        type="payment.succeeded",
        client=endpoint.client,
        subject_id="5c1e0000-0000-4000-8000-000000000001",
        data={"id": "5c1e0000-0000-4000-8000-000000000001", "status": "succeeded"},
        fanned_out_at=timezone.now(),
    )
    delivery = Delivery.objects.create(
        event=event,
        endpoint=endpoint,
        subject_id=event.subject_id,
        window_started_at=event.created_at,
        status=DeliveryStatus.DELIVERED,
        attempt_count=2,
        delivered_at=timezone.now(),
    )
    DeliveryAttempt.objects.create(
        delivery=delivery, number=1, succeeded=False, status_code=502, latency_ms=40,
        response_excerpt="bad gateway upstream", error="HTTP 502",
    )  # fmt: skip
    DeliveryAttempt.objects.create(
        delivery=delivery, number=2, succeeded=True, status_code=200, latency_ms=12
    )
    return delivery


def test_endpoints_are_listed_and_shown_without_their_secret(
    staff: Client, delivered: Delivery
) -> None:
    endpoint = delivered.endpoint

    listing = staff.get(ENDPOINTS + "?enabled__exact=1")
    page = staff.get(f"{ENDPOINTS}{endpoint.pk}/change/")

    assert listing.status_code == page.status_code == 200
    assert "wallet.example.com" in listing.content.decode()
    for response in (listing, page):
        assert endpoint.secret not in response.content.decode()
        assert "whsec_" not in response.content.decode()
    assert staff.get(ENDPOINTS + "add/").status_code == 403


def test_staff_disable_and_enable_endpoints(
    staff: Client, delivered: Delivery, caplog: pytest.LogCaptureFixture
) -> None:
    endpoint = delivered.endpoint

    with caplog.at_level(logging.WARNING):
        staff.post(ENDPOINTS, {"action": "disable", "_selected_action": [str(endpoint.pk)]})
    endpoint.refresh_from_db()
    assert not endpoint.enabled
    assert endpoint.disabled_reason == "disabled by staff:admin"
    assert any(getattr(r, "actor", None) == "staff:admin" for r in caplog.records)
    assert (
        staff.get(ENDPOINTS + "?enabled__exact=0").content.decode().count("wallet.example.com") >= 1
    )

    staff.post(ENDPOINTS, {"action": "enable", "_selected_action": [str(endpoint.pk)]})
    endpoint.refresh_from_db()
    assert endpoint.enabled


def test_deliveries_with_their_tries(staff: Client, delivered: Delivery) -> None:
    listing = staff.get(DELIVERIES + "?status__exact=delivered")
    page = staff.get(f"{DELIVERIES}{delivered.pk}/change/")

    assert listing.status_code == page.status_code == 200
    assert "payment.succeeded" in listing.content.decode()
    assert "bad gateway upstream" in page.content.decode()  # the tries, inline
    assert delivered.endpoint.secret not in page.content.decode()
    assert staff.get(f"{DELIVERIES}{delivered.pk}/delete/").status_code == 403


def test_redeliver_schedules_it_again_with_an_audit_line(
    staff: Client,
    delivered: Delivery,
    jobs: Jobs,
    caplog: pytest.LogCaptureFixture,
    django_capture_on_commit_callbacks: Any,
) -> None:
    with caplog.at_level(logging.WARNING), django_capture_on_commit_callbacks(execute=True):
        response = staff.post(
            DELIVERIES, {"action": "redeliver", "_selected_action": [str(delivered.pk)]}
        )

    assert response.status_code == 302
    delivered.refresh_from_db()
    assert delivered.status == DeliveryStatus.PENDING
    assert delivered.delivered_at is None
    assert [job.args for job in jobs.queue] == [(delivered.pk, str(delivered.job_token))]
    (audit,) = [r for r in caplog.records if r.name == "paywave.audit"]
    assert audit.staff_user == "admin"
    assert "staff:admin" in audit.getMessage()


def test_staff_without_the_change_permission_cannot_run_the_actions(
    delivered: Delivery, client: Client
) -> None:
    viewer = get_user_model().objects.create_user("viewer", password="pw", is_staff=True)
    from django.contrib.auth.models import Permission

    viewer.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_webhookendpoint", "view_delivery"])
    )
    client.force_login(viewer)

    assert client.get(ENDPOINTS).status_code == 200
    client.post(ENDPOINTS, {"action": "disable", "_selected_action": [str(delivered.endpoint_id)]})
    client.post(DELIVERIES, {"action": "redeliver", "_selected_action": [str(delivered.pk)]})

    delivered.refresh_from_db()
    assert delivered.endpoint.enabled
    assert delivered.status == DeliveryStatus.DELIVERED
