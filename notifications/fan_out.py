"""Fan-out: one Delivery per event and subscribed endpoint, then a job per delivery, or,
with the delivery pollers (notifications/poller.py), none: a poller claims it."""

import logging
import uuid
from datetime import timedelta
from functools import partial

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from paywave.jobs import overdue_republish
from paywave.queries import insert_parts, insert_row

from .dispatch import delivery_publish, poller_enabled
from .models import Delivery, Event
from .subscriptions import client_subscriptions

logger = logging.getLogger(__name__)


def subscribed_endpoints(event: Event) -> list[uuid.UUID]:
    """The wallet app's enabled endpoints that subscribe to the event's type and existed
    when it happened (so a late fan-out picks the same ones an immediate one would)."""
    return [
        subscription.endpoint_id
        for subscription in client_subscriptions(event.client_id)
        if subscription.covers(event.type, event.created_at)
    ]


def deliveries_create(event: Event, endpoint_ids: list[uuid.UUID]) -> list[Delivery]:
    """One delivery per endpoint, each job published once the caller's transaction
    commits (or left to the pollers)."""
    if not endpoint_ids:
        return []
    to_pollers = poller_enabled()
    deliveries = Delivery.objects.bulk_create(_new_deliveries(event, endpoint_ids, to_pollers))
    if not to_pollers:
        _publish_on_commit(deliveries)
    return deliveries


def _new_deliveries(
    event: Event, endpoint_ids: list[uuid.UUID], to_pollers: bool
) -> list[Delivery]:
    """The event's deliveries, unsaved, due now: each with its job's token, or, for the
    pollers, without one (a poller's claim gives it one)."""
    now = timezone.now()
    return [
        Delivery(
            event_id=event.id,
            endpoint_id=endpoint_id,
            subject_id=event.subject_id,
            window_started_at=event.created_at,
            next_attempt_at=now,
            job_token=None if to_pollers else uuid.uuid4(),
            created_at=now,
        )
        for endpoint_id in endpoint_ids
    ]


def _publish_on_commit(deliveries: list[Delivery]) -> None:
    for delivery in deliveries:
        transaction.on_commit(
            partial(delivery_publish, delivery.id, delivery.job_token), robust=True
        )


def event_fan_out(event_id: int) -> list[int]:
    """Create a recorded-but-not-fanned-out event's deliveries once (the ids created).

    `event_record` fans out in the event's own transaction; this is for events that
    were stored without that (rows of older releases), found by the events sweep.
    """
    now = timezone.now()
    with transaction.atomic():
        event = (
            Event.objects.select_for_update()
            .filter(pk=event_id, fanned_out_at__isnull=True)
            .only("id", "type", "client_id", "subject_id", "created_at")
            .first()
        )
        if event is None:
            return []
        deliveries = deliveries_create(event, subscribed_endpoints(event))
        Event.objects.filter(pk=event.id).update(fanned_out_at=now)
    return [delivery.id for delivery in deliveries]


def events_sweep_fan_out() -> int:
    """Fan out events whose fan-out never ran (stored without it, or it failed); how many.

    Oldest first, so the events of one subject get their deliveries in order. The
    fan-out is done here, not queued: it is one short transaction, which publishes the
    deliveries' jobs.
    """
    cutoff = timezone.now() - timedelta(seconds=settings.PAYWAVE_WEBHOOK_FAN_OUT_GRACE_SECONDS)
    overdue = Event.objects.filter(fanned_out_at__isnull=True, created_at__lte=cutoff)
    fanned_out = overdue_republish(
        overdue, due_field="created_at", order_by="id", publish=_fan_out_now
    )
    if fanned_out:
        logger.warning("fan-out sweep fanned out %d overdue events", fanned_out)
    return fanned_out


def _fan_out_now(event_id: int) -> bool:
    event_fan_out(event_id)
    return True


def event_insert_fanned_out(event: Event, endpoint_ids: list[uuid.UUID]) -> list[Delivery]:
    """Insert the (unsaved) event and its deliveries, each job published once the caller's
    transaction commits (or left to the pollers).

    On PostgreSQL, with deliveries, one statement writes both (the event's INSERT in a
    WITH, the deliveries' INSERT reading its id): an event is recorded at every payment
    change, so this is on the charging path. Elsewhere, an INSERT each.
    """
    if not endpoint_ids or connection.vendor != "postgresql":
        insert_row(event)
        return deliveries_create(event, endpoint_ids)
    event.created_at = event.created_at or timezone.now()  # subscriptions matched at this time
    to_pollers = poller_enabled()
    deliveries = _new_deliveries(event, endpoint_ids, to_pollers)
    event_columns, event_placeholders, params = insert_parts(event, exclude={"id"})
    delivery_columns: list[str] = []
    rows: list[str] = []
    for delivery in deliveries:
        delivery_columns, placeholders, values = insert_parts(delivery, exclude={"id", "event_id"})
        rows.append(f"({', '.join(placeholders)})")
        params.extend(values)
    quote = connection.ops.quote_name
    # Only the models' table and column names are in the text; every value is a parameter.
    sql = (
        f"WITH event AS (INSERT INTO {quote(Event._meta.db_table)} "  # noqa: S608
        f"({', '.join(event_columns)}) VALUES ({', '.join(event_placeholders)}) RETURNING id) "
        f"INSERT INTO {quote(Delivery._meta.db_table)} (event_id, {', '.join(delivery_columns)}) "
        f"SELECT event.id, rows.* FROM event, (VALUES {', '.join(rows)}) "
        f"AS rows ({', '.join(delivery_columns)}) RETURNING id, event_id, endpoint_id"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        written = cursor.fetchall()
    event.id = written[0][1]
    event._state.adding = False
    ids = {endpoint_id: delivery_id for delivery_id, _, endpoint_id in written}
    for delivery in deliveries:
        delivery.id, delivery.event_id = ids[delivery.endpoint_id], event.id
        delivery._state.adding = False
    if not to_pollers:
        _publish_on_commit(deliveries)
    return deliveries
