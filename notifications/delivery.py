"""Sending deliveries: retries with backoff, in order per subject, the endpoint disable rule.

Retries. After the n-th failed try the next one waits PAYWAVE_WEBHOOK_RETRY_SCHEDULE[n-1]
seconds (10 s, 30 s, 2 min, 10 min, 30 min, 1 h, then the last value, 2 h, again and
again), never past the end of the retry window (PAYWAVE_WEBHOOK_RETRY_HOURS, 24 h after
the event): the last try is at the window's end, and when it fails the delivery is
`failed`. Waits up to COUNTDOWN_MAX_SECONDS are Celery countdowns; longer ones are only
`next_attempt_at`, which beat's delivery sweep publishes when it comes (a long countdown
would sit unacknowledged in a worker past RabbitMQ's consumer timeout).

Jobs. A delivery has at most one queued job, the one carrying its `job_token`; a
duplicate or late job does nothing. A job claims its try by moving `next_attempt_at`
forward by a lease before it sends, so two jobs never send the same try. Delivery is
at least once: a worker lost after the POST and before recording it sends it again,
which is why payloads carry a stable event id for wallet apps to dedupe on.

In order per subject. A delivery is not sent while an earlier delivery (smaller event
id) to the same endpoint about the same subject is still pending, or while an earlier
event about that subject is not fanned out yet. It waits instead (no try is logged)
and is started as soon as the one before it is delivered or given up. A given-up
delivery no longer holds the ones after it back.

Disabling. When a delivery is given up and the endpoint has not answered 2xx to
anything since that delivery's retry window began (so every try to it failed for 24 h),
the endpoint is disabled, with an operator alert. Its pending deliveries wait; staff
re-enable it in the admin, which restarts their retry windows.
"""

import functools
import logging
import uuid
from datetime import datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any, TypedDict, cast

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Exists, Field, OuterRef, Q, QuerySet
from django.utils import timezone

from paywave.jobs import overdue_republish
from paywave.observability.alerts import AlertKind, operator_alert
from paywave.observability.log_context import log_context
from paywave.observability.metrics import record_webhook_delivery
from paywave.queries import ReadShape, compiled_read, insert_parts

from .dispatch import delivery_publish
from .models import Delivery, DeliveryAttempt, DeliveryStatus, Event, WebhookEndpoint
from .sending import SendResult, event_body, webhook_post
from .services import ENDPOINT_DELETED, webhook_endpoint_disable

if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations

logger = logging.getLogger(__name__)

PENDING = DeliveryStatus.PENDING
COUNTDOWN_MAX_SECONDS = 120
# A try is bounded by its timeouts (connect + write + read, a few times over); past this
# lease its worker is presumed lost and the sweep lets another job take the try.
CLAIM_LEASE = timedelta(minutes=2)
# A countdown may fire a little before `next_attempt_at` (clocks of two machines).
EARLY_TOLERANCE = timedelta(seconds=2)
# A queued job this late is presumed lost (broker restart, purge) and published again.
LOST_JOB_GRACE = timedelta(seconds=60)


class Outcome:
    DELIVERED = "delivered"
    RETRY = "retry"
    FAILED = "failed"  # given up
    WAITING = "waiting"  # an earlier delivery about the same subject goes first
    PARKED = "parked"  # the endpoint is disabled or deleted
    STALE = "stale"  # not this job's turn: a duplicate, late or superseded job


def retry_window() -> timedelta:
    return timedelta(hours=settings.PAYWAVE_WEBHOOK_RETRY_HOURS)


def retry_delay(failed_tries: int) -> float:
    """Seconds before the next try, after `failed_tries` (>= 1) tries failed."""
    schedule = settings.PAYWAVE_WEBHOOK_RETRY_SCHEDULE
    return float(schedule[min(failed_tries, len(schedule)) - 1])


def delivery_attempt(delivery_id: int, token: Any) -> str:
    """Send the delivery once, if `token` is its job's and its turn has come; the Outcome.

    One line says how it went: "delivery N tried: <outcome>", with the receiver's
    `status_code`, the `latency_ms` of its answer and the `error` when it was sent (what
    httpx's own line said, which is written only at DEBUG)."""
    if token is None:  # every job is published with its token: one without owns nothing
        return Outcome.STALE
    now = timezone.now()
    delivery = _delivery_read(delivery_id, token)
    if delivery is None:
        return _told(delivery_id, Outcome.STALE)
    # Whose delivery, and about which payment, on every line of the try: a poller's try
    # has no request or job to carry them from.
    event = delivery.event
    subject = {"payment_id": str(event.subject_id)} if event.type.startswith("payment.") else {}
    with log_context(client=str(event.client_id), **subject):
        return _told(delivery_id, *_try(delivery, token, now))


def _told(delivery_id: int, outcome: str, sent: SendResult | None = None) -> str:
    fields: dict[str, Any] = {"outcome": outcome}
    if sent is not None:
        fields.update(status_code=sent.status_code, latency_ms=sent.latency_ms)
        if sent.error:
            fields["error"] = sent.error
    logger.info("delivery %s tried: %s", delivery_id, outcome, extra=fields)
    return outcome


def _try(
    delivery: "WithAnnotations[Delivery, _ReadAnnotations]", token: Any, now: datetime
) -> tuple[str, SendResult | None]:
    """The try's Outcome, and what the receiver answered if it was sent."""
    delivery_id = delivery.pk
    # Built only on the rare paths that write it: building it is about as much CPU as a
    # statement, a few percent of a try that is delivered.
    mine = partial(Delivery.objects.filter, pk=delivery_id, status=PENDING, job_token=token)
    endpoint = delivery.endpoint
    if endpoint.deleted_at is not None:  # made after the delete (a cached subscription)
        mine().update(
            status=DeliveryStatus.FAILED,
            job_token=None,
            next_attempt_at=None,
            last_error=ENDPOINT_DELETED,
        )
        return Outcome.FAILED, None
    if not endpoint.enabled:
        mine().update(job_token=None)  # enabling it again hands it to the sweep
        return Outcome.PARKED, None
    wait_until = _earlier_undelivered(delivery, now) if delivery.after_another else None
    if wait_until is not None:
        mine().update(job_token=None, next_attempt_at=wait_until)
        return Outcome.WAITING, None
    if not _claim(delivery_id, token, now):
        return Outcome.STALE, None
    number = delivery.attempt_count + 1  # the claim matched the token: nobody else counted
    result = webhook_post(url=endpoint.url, secret=endpoint.secret, body=event_body(delivery.event))
    outcome = _record(delivery, token, number, result)
    record_webhook_delivery(endpoint.pk, outcome)
    return outcome, result


def _earlier_pending(endpoint_id: Any, subject_id: Any, event_id: Any) -> QuerySet[Delivery]:
    """Deliveries to the endpoint about the subject, of earlier events, still pending."""
    return Delivery.objects.filter(
        endpoint_id=endpoint_id, subject_id=subject_id, event_id__lt=event_id, status=PENDING
    )


def _earlier_not_fanned_out(subject_id: Any, event_id: Any) -> QuerySet[Event]:
    """Earlier events about the subject whose deliveries do not exist yet."""
    return Event.objects.filter(subject_id=subject_id, id__lt=event_id, fanned_out_at__isnull=True)


# Read with the delivery, so the usual case (nothing about its subject goes first) costs
# no statement of its own.
_AFTER_ANOTHER = Exists(
    _earlier_pending(OuterRef("endpoint_id"), OuterRef("subject_id"), OuterRef("event_id"))
) | Exists(_earlier_not_fanned_out(OuterRef("subject_id"), OuterRef("event_id")))


# Built once: resolving the two subqueries is most of what building this read costs.
_DELIVERY_READ = Delivery.objects.select_related("event", "endpoint").annotate(
    after_another=_AFTER_ANOTHER
)
# Stand-ins for a try's two values in the read compiled once (paywave.queries).
_PK_MARK = -7_340_033
_TOKEN_MARK = uuid.UUID("5f1c0c52-9d1e-4c6b-8a57-3e0d2f6b7a11")
# As .first() reads it: the model's ordering, no order_by("pk") added.
assert _DELIVERY_READ.ordered
_DELIVERY_BY_TOKEN = ReadShape(
    _DELIVERY_READ.filter(pk=_PK_MARK, status=PENDING, job_token=_TOKEN_MARK)[:1],
    pk=_PK_MARK,
    job_token=_TOKEN_MARK,
)


class _ReadAnnotations(TypedDict):
    after_another: bool


def _delivery_read(
    delivery_id: int, token: Any
) -> "WithAnnotations[Delivery, _ReadAnnotations] | None":
    """`_DELIVERY_READ.filter(pk=delivery_id, status=PENDING, job_token=token).first()`
    for a token (never None), compiled once per connection: compiling it on every try was
    about two fifths of the try's CPU in process (docs/SCALING.md, "CPU")."""
    return cast(
        "WithAnnotations[Delivery, _ReadAnnotations] | None",
        compiled_read(_DELIVERY_BY_TOKEN).run(pk=delivery_id, job_token=token),
    )


def _earlier_undelivered(delivery: Delivery, now: datetime) -> datetime | None:
    """When to look again if something about the same subject must go first, else None."""
    earlier = (
        _earlier_pending(delivery.endpoint_id, delivery.subject_id, delivery.event_id)
        .order_by("event_id")
        .values_list("id", "next_attempt_at")
        .first()
    )
    if earlier is None and not (
        _earlier_not_fanned_out(delivery.subject_id, delivery.event_id).exists()
    ):
        return None
    # The one before it starts this one when it is done; looking again at its next try
    # (or after a sweep period) only covers a start that got lost.
    soon = now + timedelta(seconds=settings.PAYWAVE_WEBHOOK_SWEEP_SECONDS)
    return max(earlier[1] or soon, soon) if earlier else soon


def _claim(delivery_id: int, token: Any, now: datetime) -> bool:
    """Take the try if it is due: move `next_attempt_at` past the lease, count it."""
    params = [
        _column_value("next_attempt_at", now + CLAIM_LEASE),
        _column_value("last_attempt_at", now),
        delivery_id,
        _column_value("job_token", token),
        _column_value("next_attempt_at", now + EARLY_TOLERANCE),
    ]
    with connection.cursor() as cursor:  # the ORM's UPDATE, without building it every try
        cursor.execute(_CLAIM, params)
        return cursor.rowcount == 1


_CLAIM = f"""
    UPDATE {Delivery._meta.db_table}
    SET next_attempt_at = %s, attempt_count = attempt_count + 1, last_attempt_at = %s
    WHERE id = %s AND status = '{PENDING.value}' AND job_token = %s AND next_attempt_at <= %s
"""  # noqa: S608 (names from the model, values as parameters)


def _record(delivery: Delivery, token: Any, number: int, result: SendResult) -> str:
    """Log the try, then move the delivery on. Not one transaction: a worker lost between
    the two leaves the try logged and the delivery pending, and it is sent again. (On
    PostgreSQL a delivered try is one statement: `_record_delivered`.)"""
    now = timezone.now()
    if result.ok and connection.vendor == "postgresql":
        return _record_delivered(delivery, token, number, result, now)
    mine = Delivery.objects.filter(pk=delivery.pk, status=PENDING, job_token=token)
    DeliveryAttempt.objects.create(
        delivery_id=delivery.pk,
        number=number,
        succeeded=result.ok,
        status_code=result.status_code,
        latency_ms=result.latency_ms,
        response_excerpt=result.response_excerpt,
        error=result.error,
    )
    if result.ok:
        _note_on_endpoint(delivery.endpoint, "last_success_at", now)
        if mine.update(
            status=DeliveryStatus.DELIVERED,
            delivered_at=now,
            next_attempt_at=None,
            job_token=None,
            last_error="",
        ):
            _start_next(delivery, now)
        return Outcome.DELIVERED
    _note_on_endpoint(delivery.endpoint, "last_failure_at", now)
    window_end = delivery.window_started_at + retry_window()
    if now >= window_end:
        with transaction.atomic():
            if not mine.update(
                status=DeliveryStatus.FAILED,
                next_attempt_at=None,
                job_token=None,
                last_error=result.error,
            ):
                return Outcome.STALE
            if not _disable_if_failing_throughout(delivery):
                _start_next(delivery, now)
        return Outcome.FAILED
    next_at = min(now + timedelta(seconds=retry_delay(number)), window_end)
    wait = (next_at - now).total_seconds()
    next_token = uuid.uuid4() if wait <= COUNTDOWN_MAX_SECONDS else None
    if not mine.update(next_attempt_at=next_at, job_token=next_token, last_error=result.error):
        return Outcome.STALE  # staff redelivered it or the endpoint went meanwhile
    if next_token is not None:
        delivery_publish(delivery.pk, next_token, wait)
    return Outcome.RETRY


def _record_delivered(
    delivery: Delivery, token: Any, number: int, result: SendResult, now: datetime
) -> str:
    """A delivered try in one statement: log it, mark the delivery delivered, start the
    next one about its subject (what `_record` and `_start_next` do in three)."""
    attempt = DeliveryAttempt(
        delivery_id=delivery.pk,
        number=number,
        succeeded=True,
        status_code=result.status_code,
        latency_ms=result.latency_ms,
        response_excerpt=result.response_excerpt,
        error=result.error,
        created_at=now,
    )
    columns, placeholders, values = insert_parts(attempt, exclude={"id"})
    next_token = uuid.uuid4()
    params = [
        *values,
        _column_value("delivered_at", now),
        delivery.pk,
        _column_value("job_token", token),
        _column_value("job_token", next_token),
        _column_value("next_attempt_at", now),
        delivery.endpoint_id,
        _column_value("subject_id", delivery.subject_id),
        delivery.pk,
    ]
    sql = _record_delivered_sql(tuple(columns), tuple(placeholders))
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    _note_on_endpoint(delivery.endpoint, "last_success_at", now)
    if row is not None and row[0] is not None:
        transaction.on_commit(partial(delivery_publish, row[0], next_token), robust=True)
    return Outcome.DELIVERED


# The next delivery about a subject to the same endpoint: `_START_HEAD` and the start in
# `_record_delivered_sql`. Parameters: the endpoint, the subject, a delivery to pass over.
_NEXT_ABOUT_SUBJECT = f"""
    SELECT id FROM {Delivery._meta.db_table}
    WHERE endpoint_id = %s AND subject_id = %s AND status = '{PENDING.value}' AND id <> %s
    ORDER BY event_id LIMIT 1
"""  # noqa: S608 (names from the model, values as parameters)


@functools.cache
def _record_delivered_sql(columns: tuple[str, ...], placeholders: tuple[str, ...]) -> str:
    """`_record_delivered`'s statement for the attempt's columns (fixed for the process).

    Its start reads the table as it was before the statement, where this delivery is
    still pending: hence passing over it (`_START_HEAD`, run after it moved, need not)."""
    return f"""
    WITH logged AS (
        INSERT INTO {DeliveryAttempt._meta.db_table} ({", ".join(columns)})
        VALUES ({", ".join(placeholders)})
        RETURNING id
    ), delivered AS (
        UPDATE {Delivery._meta.db_table}
        SET status = '{DeliveryStatus.DELIVERED.value}', delivered_at = %s,
            next_attempt_at = NULL, job_token = NULL, last_error = ''
        WHERE id = %s AND status = '{PENDING.value}' AND job_token = %s
        RETURNING id
    ), started AS (
        UPDATE {Delivery._meta.db_table} SET job_token = %s, next_attempt_at = %s
        WHERE id = ({_NEXT_ABOUT_SUBJECT}) AND status = '{PENDING.value}' AND attempt_count = 0
            AND EXISTS (SELECT 1 FROM delivered)
        RETURNING id
    )
    SELECT (SELECT id FROM started) FROM logged
    """  # noqa: S608 (names from the models, values as parameters)


# The endpoint's last success / failure are kept to this precision: the disable rule
# compares them with a 24 h window, and writing the endpoint's row on every delivery
# would make all deliveries to one wallet app queue on its row lock.
_ENDPOINT_NOTE_PRECISION = timedelta(seconds=60)


def _note_on_endpoint(endpoint: WebhookEndpoint, field: str, now: datetime) -> None:
    noted = getattr(endpoint, field)
    if noted is not None and noted >= now - _ENDPOINT_NOTE_PRECISION:
        return  # as read with the delivery: recent enough
    WebhookEndpoint.objects.filter(
        Q(**{f"{field}__isnull": True}) | Q(**{f"{field}__lt": now - _ENDPOINT_NOTE_PRECISION}),
        pk=endpoint.pk,
    ).update(**{field: now})


def _start_next(delivery: Delivery, now: datetime) -> None:
    """Start the next pending delivery about the same subject, if it was waiting on this one
    (never tried: one in its own backoff keeps its own time)."""
    token = uuid.uuid4()
    values = {
        "job_token": token,
        "next_attempt_at": now,
        "endpoint": delivery.endpoint_id,
        "subject_id": delivery.subject_id,
    }
    params = [_column_value(name, value) for name, value in values.items()]
    params.append(delivery.pk)  # moved on already: passing over it changes nothing
    with connection.cursor() as cursor:  # one statement: the ORM's UPDATE returns no ids
        cursor.execute(_START_HEAD, params)
        started = cursor.fetchone()
    if started is not None:
        transaction.on_commit(partial(delivery_publish, started[0], token), robust=True)


def _column_value(field_name: str, value: Any) -> Any:
    """`value` as the database stores it in the field's column (a UUID is text in SQLite)."""
    field = Delivery._meta.get_field(field_name)
    assert isinstance(field, Field)
    return field.get_db_prep_value(value, connection)


_START_HEAD = f"""
    UPDATE {Delivery._meta.db_table} SET job_token = %s, next_attempt_at = %s
    WHERE id = ({_NEXT_ABOUT_SUBJECT}) AND status = '{PENDING.value}' AND attempt_count = 0
    RETURNING id
"""  # noqa: S608 (names from the model, values as parameters)


def _disable_if_failing_throughout(delivery: Delivery) -> bool:
    endpoint = WebhookEndpoint.objects.only("id", "url", "client_id", "last_success_at").get(
        pk=delivery.endpoint_id
    )
    if endpoint.last_success_at is not None and endpoint.last_success_at >= (
        delivery.window_started_at
    ):
        return False
    hours = settings.PAYWAVE_WEBHOOK_RETRY_HOURS
    reason = f"every delivery failed for {hours:g} h (delivery {delivery.pk} given up)"
    if not webhook_endpoint_disable(endpoint_id=endpoint.id, reason=reason, actor="paywave"):
        return False
    operator_alert(
        AlertKind.WEBHOOK_ENDPOINT_DISABLED,
        f"webhook endpoint {endpoint.id} ({endpoint.url}) disabled: {reason}",
        dedupe_key=str(endpoint.id),
        endpoint_id=str(endpoint.id),
        client_id=str(endpoint.client_id),
        delivery_id=delivery.pk,
    )
    return True


def deliveries_sweep() -> int:
    """Publish the jobs of deliveries whose try is due and has no job, or lost it; how many.

    A due delivery without a token gets one (a try past COUNTDOWN_MAX_SECONDS waits in the
    database, not in a countdown); one whose job is LOST_JOB_GRACE late keeps its token.
    """
    now = timezone.now()
    overdue = Delivery.objects.filter(
        Q(job_token__isnull=True) | Q(next_attempt_at__lte=now - LOST_JOB_GRACE),
        status=PENDING,
        endpoint__enabled=True,
        endpoint__deleted_at__isnull=True,
        next_attempt_at__lte=now,
    )
    published = overdue_republish(overdue, claim_by="job_token", publish=delivery_publish)
    if published:
        logger.info("delivery sweep published %d due deliveries", published)
    return published


def delivery_redeliver(*, delivery_id: int, actor: str) -> bool:
    """Send it again (whatever its status) with a fresh retry window; False if it cannot be."""
    now = timezone.now()
    token = uuid.uuid4()
    with transaction.atomic():
        updated = Delivery.objects.filter(pk=delivery_id, endpoint__deleted_at__isnull=True).update(
            status=PENDING,
            window_started_at=now,
            next_attempt_at=now,
            job_token=token,
            delivered_at=None,
        )
        if updated:
            transaction.on_commit(partial(delivery_publish, delivery_id, token), robust=True)
    if updated:
        logger.warning(
            "delivery %s scheduled again by %s",
            delivery_id,
            actor,
            extra={"delivery_id": delivery_id, "actor": actor},
        )
    return bool(updated)
