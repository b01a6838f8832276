"""GET /api/v1/events: a wallet app catches up on what deliveries told (or failed to tell)."""

import re
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from notifications.models import Event
from notifications.sending import event_payload
from notifications.services import event_record
from tests.factories import PaymentFactory

pytestmark = pytest.mark.django_db

EVENT_ID = re.compile(r"evt_[A-Za-z0-9_-]{24}")


def record(client: Any, type: str = "payment.succeeded", age: timedelta | None = None) -> Event:
    payment = PaymentFactory(client=client)
    event_record(
        type=type, client_id=client.pk, subject_id=payment.pk, data={"id": str(payment.pk)}
    )
    event = Event.objects.filter(subject_id=payment.pk).get()
    if age is not None:
        Event.objects.filter(pk=event.pk).update(created_at=timezone.now() - age)
        event.refresh_from_db()
    return event


def test_events_are_listed_newest_first_as_deliveries_carry_them(api: Any, wallet_app: Any) -> None:
    older = record(wallet_app, "payment.processing", age=timedelta(minutes=5))
    newer = record(wallet_app, "payment.succeeded")

    page = api.get("/api/v1/events").json()

    assert [e["id"] for e in page["results"]] == [newer.public_id, older.public_id]
    assert page["results"][0] == event_payload(newer)
    assert (page["next"], page["has_more"]) == (None, False)


def test_event_ids_are_random_and_say_nothing_of_volume(wallet_app: Any) -> None:
    ids = [record(wallet_app).public_id for _ in range(3)]

    assert all(EVENT_ID.fullmatch(i) for i in ids)
    assert len(set(ids)) == 3
    # An id made of the primary key would be padded to the 24 characters; a random one
    # ends with the bare key often (1 in 64 for a one-digit key), with six of its digits
    # once in 64**6.
    assert not any(
        i.endswith(f"{e.pk:06d}") for i, e in zip(ids, Event.objects.order_by("id"), strict=True)
    )


def test_filters_by_type_and_time_and_pages_with_a_cursor(api: Any, wallet_app: Any) -> None:
    events = [record(wallet_app, age=timedelta(minutes=m)) for m in (4, 3, 2, 1)]
    record(wallet_app, "refund.succeeded")
    after = (timezone.now() - timedelta(minutes=3, seconds=30)).isoformat()
    before = (timezone.now() - timedelta(seconds=30)).isoformat()

    first = api.get(
        "/api/v1/events",
        {"type": "payment.succeeded", "created_after": after, "created_before": before, "limit": 2},
    ).json()
    second = api.get(first["next"]).json()

    seen = [e["id"] for page in (first, second) for e in page["results"]]
    assert seen == [e.public_id for e in reversed(events[1:])]
    assert (first["has_more"], second["has_more"]) == (True, False)


def test_only_the_last_30_days_and_only_its_own(api: Any, wallet_app: Any, other_api: Any) -> None:
    record(wallet_app, age=timedelta(days=31))
    kept = record(wallet_app, age=timedelta(days=29))

    assert [e["id"] for e in api.get("/api/v1/events").json()["results"]] == [kept.public_id]
    assert other_api.get("/api/v1/events").json()["results"] == []


@pytest.mark.parametrize(
    "query",
    [
        {"type": "payment.nothing"},
        {"created_after": "yesterday"},
        {"created_after": "2026-12-02T00:00:00Z", "created_before": "2026-12-01T00:00:00Z"},
        {"cursor": "not-a-cursor"},
    ],
)
def test_bad_filters_are_a_400(api: Any, query: dict[str, str]) -> None:
    answer = api.get("/api/v1/events", query)

    assert answer.status_code == 400
    assert answer.json()["error"]["fields"]
