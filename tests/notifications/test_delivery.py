"""Fan-out, delivery with retries, order per subject, the disable rule, the sweeps.

Jobs run in process (`jobs`, see conftest.py) against a local HTTP receiver; the
database is committed for real (transactional tests), so on-commit publishing
happens as in production. Nothing here needs RabbitMQ or Redis, so these run on
the embedded defaults too; test_worker.py is the run through the real broker.
"""

import logging
import uuid
from datetime import timedelta
from typing import Any

import pytest
from django.core import mail
from django.db import IntegrityError, transaction
from django.utils import timezone
from prometheus_client import REGISTRY

from notifications.delivery import Outcome, deliveries_sweep, delivery_attempt, retry_delay
from notifications.fan_out import event_fan_out, events_sweep_fan_out
from notifications.models import Delivery, DeliveryAttempt, DeliveryStatus, Event, WebhookEndpoint
from notifications.services import webhook_endpoint_delete, webhook_endpoint_enable
from paywave.observability.alerts import AlertKind
from tests.factories import ApiClientFactory, WebhookEndpointFactory
from tests.notifications.conftest import Broker, Jobs, Receiver, record_event

pytestmark = pytest.mark.django_db(transaction=True)

D = DeliveryStatus


def old_endpoint(**fields: Any) -> WebhookEndpoint:
    """An endpoint created a day ago, so it subscribes to events dated back in a test."""
    endpoint = WebhookEndpointFactory(**fields)
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
        created_at=timezone.now() - timedelta(days=1)
    )
    return endpoint


def tries(delivery: Delivery) -> list[tuple[int, int | None, bool]]:
    return [
        (a.number, a.status_code, a.succeeded)
        for a in DeliveryAttempt.objects.filter(delivery=delivery).order_by("number")
    ]


def delivery_count(outcome: str, endpoint: object = None) -> float:
    """Tries counted with this outcome, to this endpoint or to any."""
    return sum(
        sample.value
        for metric in REGISTRY.collect()
        if metric.name == "paywave_webhook_deliveries"
        for sample in metric.samples
        if sample.name == "paywave_webhook_deliveries_total"
        and sample.labels["outcome"] == outcome
        and (endpoint is None or sample.labels["endpoint"] == str(endpoint))
    )


def test_a_delivery_failing_twice_then_succeeding_is_acknowledged_once(
    receiver: Receiver, jobs: Jobs
) -> None:
    receiver.script(500, 503)  # then 200
    endpoint = WebhookEndpointFactory(url=receiver.url())
    event = record_event(endpoint.client)

    jobs.drive()

    delivery = Delivery.objects.get(event=event, endpoint=endpoint)
    assert delivery.status == D.DELIVERED
    assert delivery.attempt_count == 3
    assert tries(delivery) == [(1, 500, False), (2, 503, False), (3, 200, True)]
    # Retried after 10 s and 30 s (countdowns, recorded rather than waited for).
    assert jobs.deliveries() == [
        (None, Outcome.RETRY),
        (10.0, Outcome.RETRY),
        (30.0, Outcome.DELIVERED),
    ]
    assert receiver.event_ids() == [event.public_id] * 3
    assert len({request.body for request in receiver.requests}) == 1  # the same document
    attempts = list(DeliveryAttempt.objects.filter(delivery=delivery).order_by("number"))
    assert attempts[0].error == "HTTP 500"
    assert attempts[0].response_excerpt == "receiver says no"
    assert attempts[2].response_excerpt == '{"received": true}'
    assert all(attempt.latency_ms >= 0 for attempt in attempts)
    assert WebhookEndpoint.objects.get(pk=endpoint.pk).last_success_at is not None
    # The metric operators alert on, per endpoint (PayWaveWebhookEndpointFailing).
    assert delivery_count(Outcome.RETRY, endpoint.pk) == 2
    assert delivery_count(Outcome.DELIVERED, endpoint.pk) == 1


def test_each_try_logs_one_line_with_what_the_receiver_answered(
    receiver: Receiver, jobs: Jobs, caplog: pytest.LogCaptureFixture
) -> None:
    receiver.script(503)  # then 200
    endpoint = WebhookEndpointFactory(url=receiver.url())
    record_event(endpoint.client)

    with caplog.at_level(logging.INFO):
        jobs.drive()

    delivery = Delivery.objects.get(endpoint=endpoint)
    lines = [r for r in caplog.records if r.name == "notifications.delivery"]
    assert [r.getMessage() for r in lines] == [
        f"delivery {delivery.pk} tried: retry",
        f"delivery {delivery.pk} tried: delivered",
    ]
    failed, delivered = lines
    assert (failed.outcome, failed.status_code, failed.error) == ("retry", 503, "HTTP 503")
    assert (delivered.outcome, delivered.status_code) == ("delivered", 200)
    assert not hasattr(delivered, "error")
    assert all(r.latency_ms >= 0 for r in lines)  # type: ignore[attr-defined]
    # httpx's own line for each request is written only at DEBUG: the try's line says it.
    assert not [r for r in caplog.records if r.name == "httpx"]


def test_the_payload_and_headers(receiver: Receiver, jobs: Jobs) -> None:
    endpoint = WebhookEndpointFactory(url=receiver.url("/paywave"))
    event = record_event(endpoint.client, "payment.failed", amount=1050)

    jobs.drive()

    (request,) = receiver.requests
    assert request.path == "/paywave"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["User-Agent"].startswith("PayWave-Webhooks/")
    assert request.headers["PayWave-Signature"].startswith("t=")
    payload = request.json()
    assert payload == {
        "id": event.public_id,
        "type": "payment.failed",
        "created_at": event.created_at.isoformat().replace("+00:00", "Z"),
        "data": event.data,
    }
    assert payload["data"]["amount"] == 1050


def test_long_waits_are_next_attempt_at_swept_by_beat_not_countdowns(
    receiver: Receiver, jobs: Jobs
) -> None:
    receiver.default = 500
    endpoint = WebhookEndpointFactory(url=receiver.url())
    record_event(endpoint.client)

    jobs.drive()  # the first try and the three short retries (10 s, 30 s, 2 min)

    assert [countdown for countdown, _ in jobs.deliveries()] == [None, 10.0, 30.0, 120.0]
    delivery = Delivery.objects.get()
    assert delivery.attempt_count == 4
    assert delivery.job_token is None  # no job waits 10 min in the broker
    wait = (delivery.next_attempt_at - delivery.last_attempt_at).total_seconds()
    assert 599 <= wait <= 601
    assert deliveries_sweep() == 0  # not due yet
    assert not jobs.queue

    Delivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())
    assert deliveries_sweep() == 1
    assert deliveries_sweep() == 0  # its job is queued: not published twice
    receiver.default = 204
    jobs.drive()

    delivery.refresh_from_db()
    assert delivery.status == D.DELIVERED
    assert [status for _, status, _ in tries(delivery)] == [500, 500, 500, 500, 204]


def test_the_retry_schedule() -> None:
    assert [retry_delay(n) for n in range(1, 10)] == [
        10, 30, 120, 600, 1800, 3600, 7200, 7200, 7200,
    ]  # fmt: skip


def test_the_last_try_is_at_the_end_of_the_window_and_then_it_is_given_up(
    receiver: Receiver, jobs: Jobs
) -> None:
    receiver.default = 500
    endpoint = WebhookEndpointFactory(url=receiver.url())
    record_event(endpoint.client)  # fanned out with the event: its delivery job is queued
    delivery = Delivery.objects.get()
    # Six tries failed already; the window (24 h from the event) closes in 30 minutes.
    window_start = timezone.now() - timedelta(hours=23, minutes=30)
    Delivery.objects.filter(pk=delivery.pk).update(window_started_at=window_start, attempt_count=6)
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(last_success_at=window_start)

    assert jobs.run_next().outcome == Outcome.RETRY  # the 7th try; the next would be 2 h away

    delivery.refresh_from_db()
    assert delivery.next_attempt_at == window_start + timedelta(hours=24)
    assert delivery.job_token is None  # 30 minutes: beat's sweep, not a countdown
    Delivery.objects.filter(pk=delivery.pk).update(
        window_started_at=window_start - timedelta(hours=1), next_attempt_at=timezone.now()
    )
    deliveries_sweep()
    assert jobs.run_next().outcome == Outcome.FAILED

    delivery.refresh_from_db()
    assert delivery.status == D.FAILED
    assert delivery.last_error == "HTTP 500"
    assert delivery.next_attempt_at is None
    assert WebhookEndpoint.objects.get(pk=endpoint.pk).enabled  # it succeeded in the window


def test_deliveries_about_one_subject_go_in_order(receiver: Receiver, jobs: Jobs) -> None:
    receiver.script(500)  # the first try of the first event fails
    endpoint = WebhookEndpointFactory(url=receiver.url())
    payment_id, other_payment_id = uuid.uuid4(), uuid.uuid4()
    processing = record_event(endpoint.client, "payment.processing", subject_id=payment_id)
    succeeded = record_event(endpoint.client, "payment.succeeded", subject_id=payment_id)
    other = record_event(endpoint.client, "payment.succeeded", subject_id=other_payment_id)

    while jobs.queue and jobs.queue[0].countdown is None:  # everything but the retry
        jobs.run_next()

    # The second event about the payment waits for the first; another payment's does not.
    assert receiver.event_ids() == [processing.public_id, other.public_id]
    waiting = Delivery.objects.get(event=succeeded)
    assert waiting.status == D.PENDING
    assert waiting.attempt_count == 0  # waiting is not a try
    assert [ran.outcome for ran in jobs.ran if ran.job.name == "notifications.deliver"] == [
        Outcome.RETRY,
        Outcome.WAITING,
        Outcome.DELIVERED,
    ]

    jobs.drive()  # the retry succeeds, and starts the one that waited at once

    assert receiver.event_ids() == [
        processing.public_id,
        other.public_id,
        processing.public_id,
        succeeded.public_id,
    ]
    assert Delivery.objects.filter(status=D.DELIVERED).count() == 3


def test_a_given_up_delivery_no_longer_holds_the_next_one_back(
    receiver: Receiver, jobs: Jobs
) -> None:
    receiver.script(500)
    endpoint = WebhookEndpointFactory(url=receiver.url())
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(last_success_at=timezone.now())
    payment_id = uuid.uuid4()
    first = record_event(endpoint.client, "payment.processing", subject_id=payment_id)
    second = record_event(endpoint.client, "payment.failed", subject_id=payment_id)
    Delivery.objects.filter(event=first).update(
        window_started_at=timezone.now() - timedelta(hours=25)
    )

    jobs.drive()

    assert Delivery.objects.get(event=first).status == D.FAILED
    assert Delivery.objects.get(event=second).status == D.DELIVERED
    assert receiver.event_ids() == [first.public_id, second.public_id]


def test_an_endpoint_failing_for_24_hours_is_disabled_with_an_alert(
    receiver: Receiver, jobs: Jobs, settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    settings.PAYWAVE_ALERT_EMAILS = ["ops@paywave.example"]
    receiver.default = 500
    endpoint = WebhookEndpointFactory(url=receiver.url())
    payment_id = uuid.uuid4()
    first = record_event(endpoint.client, "payment.processing", subject_id=payment_id)
    later = record_event(endpoint.client, "payment.failed")
    Delivery.objects.filter(event=first).update(
        window_started_at=timezone.now() - timedelta(hours=24, seconds=1)
    )

    with caplog.at_level(logging.ERROR, logger="paywave.alerts"):
        assert jobs.run_next().outcome == Outcome.FAILED

    endpoint.refresh_from_db()
    assert not endpoint.enabled
    assert "every delivery failed for 24 h" in endpoint.disabled_reason
    (alert,) = [r for r in caplog.records if getattr(r, "alert", None)]
    assert alert.alert == AlertKind.WEBHOOK_ENDPOINT_DISABLED
    assert alert.endpoint_id == str(endpoint.id)
    # Nothing more is sent to it: the other delivery waits, the sweep leaves it alone.
    assert jobs.drive()[-1].outcome is None  # the alert mail
    assert [outcome for _, outcome in jobs.deliveries()] == [Outcome.FAILED, Outcome.PARKED]
    (message,) = mail.outbox
    assert message.to == ["ops@paywave.example"]
    assert str(endpoint.id) in message.subject + message.body
    Delivery.objects.filter(event=later).update(next_attempt_at=timezone.now())
    assert deliveries_sweep() == 0
    requests_so_far = len(receiver.requests)

    # Staff re-enable it: the waiting delivery resumes with a fresh window.
    receiver.default = 200
    assert webhook_endpoint_enable(endpoint_id=endpoint.pk, actor="staff:ana")
    assert deliveries_sweep() == 1
    jobs.drive()
    assert len(receiver.requests) == requests_so_far + 1
    assert Delivery.objects.get(event=later).status == D.DELIVERED


def test_an_endpoint_that_answered_2xx_meanwhile_is_not_disabled(
    receiver: Receiver, jobs: Jobs
) -> None:
    receiver.default = 500
    endpoint = WebhookEndpointFactory(url=receiver.url())
    record_event(endpoint.client)
    jobs.run_next()
    started = timezone.now() - timedelta(hours=25)
    Delivery.objects.update(window_started_at=started)
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
        last_success_at=started + timedelta(1 / 24)
    )

    assert jobs.run_next().outcome == Outcome.FAILED
    assert WebhookEndpoint.objects.get(pk=endpoint.pk).enabled


def test_fan_out_only_to_subscribed_enabled_endpoints_of_the_app(
    receiver: Receiver, jobs: Jobs
) -> None:
    app = ApiClientFactory()
    url = receiver.url()
    exact = WebhookEndpointFactory(client=app, url=url, events=["payment.succeeded"])
    everything = WebhookEndpointFactory(client=app, url=url, events=["*"])
    WebhookEndpointFactory(client=app, url=url, events=["payment.failed", "refund.succeeded"])
    WebhookEndpointFactory(client=app, url=url, enabled=False)
    deleted = WebhookEndpointFactory(client=app, url=url)
    webhook_endpoint_delete(client_id=app.pk, endpoint_id=deleted.pk)
    WebhookEndpointFactory(url=url)  # another wallet app's

    event = record_event(app, "payment.succeeded")
    WebhookEndpointFactory(client=app, url=url)  # created after the event
    jobs.drive()

    delivered_to = set(Delivery.objects.filter(event=event).values_list("endpoint", flat=True))
    assert delivered_to == {exact.pk, everything.pk}
    assert len(receiver.requests) == 2
    assert event_fan_out(event.id) == []  # a duplicate fan-out job does nothing
    assert Delivery.objects.count() == 2
    with pytest.raises(IntegrityError), transaction.atomic():
        Delivery.objects.create(
            event=event,
            endpoint=exact,
            subject_id=event.subject_id,
            window_started_at=event.created_at,
        )


def test_a_duplicate_or_late_job_sends_nothing(receiver: Receiver, jobs: Jobs) -> None:
    endpoint = WebhookEndpointFactory(url=receiver.url())
    record_event(endpoint.client)
    (job,) = jobs.queue

    assert jobs.run_next().outcome == Outcome.DELIVERED
    assert delivery_attempt(*job.args) == Outcome.STALE
    assert delivery_attempt(job.args[0], str(uuid.uuid4())) == Outcome.STALE
    assert len(receiver.requests) == 1


def test_a_job_without_a_token_is_stale_and_sends_nothing(receiver: Receiver, jobs: Jobs) -> None:
    """Every job is published with its delivery's token; a delivery without one (waiting,
    parked) is the sweep's to publish, never a token-less job's to send."""
    endpoint = WebhookEndpointFactory(url=receiver.url())
    record_event(endpoint.client)
    Delivery.objects.update(job_token=None)
    delivery = Delivery.objects.get()

    assert delivery_attempt(delivery.pk, None) == Outcome.STALE
    assert receiver.requests == []
    assert Delivery.objects.get().attempt_count == 0


def test_a_retry_job_that_comes_early_waits_for_its_time(receiver: Receiver, jobs: Jobs) -> None:
    receiver.script(500)
    endpoint = WebhookEndpointFactory(url=receiver.url())
    record_event(endpoint.client)
    assert jobs.run_next().outcome == Outcome.RETRY
    (retry,) = jobs.queue  # due in 10 s

    assert delivery_attempt(*retry.args) == Outcome.STALE  # run now, 10 s early
    assert len(receiver.requests) == 1
    assert Delivery.objects.get().attempt_count == 1


def test_deliveries_stored_while_the_broker_was_down_are_swept_in_order(
    receiver: Receiver, jobs: Jobs, broker: Broker
) -> None:
    endpoint = old_endpoint(url=receiver.url())
    payment_id = uuid.uuid4()
    broker.down()
    lost = record_event(endpoint.client, "payment.processing", subject_id=payment_id)
    broker.up()
    later = record_event(endpoint.client, "payment.succeeded", subject_id=payment_id)

    # Fanned out in the event's transaction all the same: only the job is missing.
    assert Event.objects.get(pk=lost.pk).fanned_out_at is not None
    assert Delivery.objects.filter(event=lost).exists()
    jobs.drive()
    # The later event about the same payment waits for the one whose job was lost.
    assert [outcome for _, outcome in jobs.deliveries()] == [Outcome.WAITING]
    assert receiver.requests == []

    assert deliveries_sweep() == 0  # not late enough to be presumed lost
    Delivery.objects.filter(event=lost).update(
        next_attempt_at=timezone.now() - timedelta(minutes=2)
    )
    assert deliveries_sweep() == 1
    jobs.drive()  # the lost one is delivered and starts the later one

    assert receiver.event_ids() == [lost.public_id, later.public_id]
    assert events_sweep_fan_out() == 0  # nothing was left to fan out


def test_a_delivery_whose_job_could_not_be_published_is_swept_later(
    receiver: Receiver, jobs: Jobs, broker: Broker
) -> None:
    endpoint = old_endpoint(url=receiver.url())
    broker.down()
    record_event(endpoint.client)  # the delivery is stored; publishing its job failed
    overdue_at = timezone.now() - timedelta(minutes=2)
    Delivery.objects.update(next_attempt_at=overdue_at)

    assert deliveries_sweep() == 0  # still down
    assert Delivery.objects.get().next_attempt_at == overdue_at  # put back: still overdue

    broker.up()
    assert deliveries_sweep() == 1
    jobs.drive()
    assert Delivery.objects.get().status == D.DELIVERED
    assert len(receiver.requests) == 1


def test_an_event_stored_without_its_fan_out_is_fanned_out_by_the_sweep(
    receiver: Receiver, jobs: Jobs
) -> None:
    endpoint = old_endpoint(url=receiver.url())
    stored = Event.objects.create(  # as rows written before fan-out moved into the event's
        type="payment.succeeded",  # transaction are
        client=endpoint.client,
        subject_id=uuid.uuid4(),
        data={"status": "succeeded"},
    )

    assert events_sweep_fan_out() == 0  # within the grace period
    Event.objects.filter(pk=stored.pk).update(created_at=timezone.now() - timedelta(minutes=1))
    assert events_sweep_fan_out() == 1
    jobs.drive()

    assert receiver.event_ids() == [stored.public_id]
    assert Event.objects.get(pk=stored.pk).fanned_out_at is not None
    assert event_fan_out(stored.id) == []  # a second fan-out does nothing
    assert events_sweep_fan_out() == 0


def test_a_lost_job_is_published_again_with_the_same_token(receiver: Receiver, jobs: Jobs) -> None:
    endpoint = WebhookEndpointFactory(url=receiver.url())
    record_event(endpoint.client)
    (job,) = jobs.queue
    jobs.queue.clear()  # lost with a broker restart

    assert deliveries_sweep() == 0  # not late enough to be presumed lost
    Delivery.objects.update(next_attempt_at=timezone.now() - timedelta(minutes=2))
    assert deliveries_sweep() == 1

    assert jobs.queue[0].args == job.args
    jobs.drive()
    assert len(receiver.requests) == 1


def test_a_deleted_endpoints_pending_deliveries_fail(receiver: Receiver, jobs: Jobs) -> None:
    endpoint = WebhookEndpointFactory(url=receiver.url())
    record_event(endpoint.client)

    webhook_endpoint_delete(client_id=endpoint.client_id, endpoint_id=endpoint.pk)
    jobs.drive()

    delivery = Delivery.objects.get()
    assert delivery.status == D.FAILED
    assert delivery.last_error == "The endpoint was deleted."
    assert receiver.requests == []


def test_a_delivery_made_after_its_endpoint_was_deleted_fails_at_its_try(
    receiver: Receiver, jobs: Jobs
) -> None:
    """A subscription read from a cache entry not yet out of date can still name it."""
    endpoint = WebhookEndpointFactory(url=receiver.url())
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
        deleted_at=timezone.now(), enabled=False
    )  # deleted behind the fan-out's back
    event = record_event(endpoint.client)
    Delivery.objects.create(
        event=event,
        endpoint=endpoint,
        subject_id=event.subject_id,
        window_started_at=event.created_at,
        next_attempt_at=timezone.now(),
        job_token=(token := uuid.uuid4()),
    )

    delivery = Delivery.objects.get()
    assert delivery_attempt(delivery.pk, token) == Outcome.FAILED
    delivery.refresh_from_db()
    assert (delivery.status, delivery.last_error) == (D.FAILED, "The endpoint was deleted.")
    assert receiver.requests == []


def test_outside_the_sandbox_a_url_resolving_to_a_private_address_is_not_called(
    receiver: Receiver, jobs: Jobs, settings: Any
) -> None:
    settings.PAYWAVE_WEBHOOK_ALLOW_PRIVATE = False
    port = receiver.base_url.rsplit(":", 1)[1]
    endpoint = WebhookEndpointFactory(url=f"http://localhost:{port}/hooks")
    record_event(endpoint.client)

    assert jobs.run_next().outcome == Outcome.RETRY

    (attempt,) = DeliveryAttempt.objects.all()
    assert attempt.status_code is None
    assert attempt.error.startswith("refused: localhost resolves to")
    assert receiver.requests == []


def test_a_refused_connection_is_a_failed_try(jobs: Jobs) -> None:
    endpoint = WebhookEndpointFactory(url="http://127.0.0.1:9/nobody-listens")
    record_event(endpoint.client)

    assert jobs.run_next().outcome == Outcome.RETRY

    (attempt,) = DeliveryAttempt.objects.all()
    assert attempt.status_code is None
    assert attempt.error.startswith("ConnectError")


def test_a_slow_answer_times_out(receiver: Receiver, jobs: Jobs, settings: Any) -> None:
    settings.PAYWAVE_WEBHOOK_READ_TIMEOUT = 0.3
    receiver.delay = 1.0
    endpoint = WebhookEndpointFactory(url=receiver.url())
    record_event(endpoint.client)

    assert jobs.run_next().outcome == Outcome.RETRY

    (attempt,) = DeliveryAttempt.objects.all()
    assert attempt.status_code is None
    assert attempt.error == "timeout (ReadTimeout)"
    assert 300 <= attempt.latency_ms < 1000


def test_a_try_redelivered_by_staff_while_in_flight_is_logged_and_left_to_the_new_job(
    receiver: Receiver, jobs: Jobs, monkeypatch: pytest.MonkeyPatch
) -> None:
    from notifications import delivery as delivery_module
    from notifications.delivery import delivery_redeliver

    endpoint = WebhookEndpointFactory(url=receiver.url())
    subject = uuid.uuid4()
    first = record_event(endpoint.client, "payment.processing", subject_id=subject)
    record_event(endpoint.client, "payment.succeeded", subject_id=subject)
    first_job, second_job = jobs.queue
    jobs.queue.clear()
    real_post = delivery_module.webhook_post

    def staff_redeliver_during_the_post(**kwargs: Any) -> Any:
        result = real_post(**kwargs)
        assert delivery_redeliver(delivery_id=first_job.args[0], actor="staff@paywave")
        return result

    monkeypatch.setattr(delivery_module, "webhook_post", staff_redeliver_during_the_post)

    assert delivery_attempt(*first_job.args) == Outcome.DELIVERED

    first_delivery = Delivery.objects.get(event=first)
    assert first_delivery.status == D.PENDING  # the staff's new job sends it again
    assert str(first_delivery.job_token) not in ("None", first_job.args[1])
    assert list(first_delivery.attempts.values_list("number", "succeeded")) == [(1, True)]
    second = Delivery.objects.get(pk=second_job.args[0])
    assert str(second.job_token) == second_job.args[1]  # not started by this try: still its own
    assert [job.args[0] for job in jobs.queue] == [first_delivery.pk]
