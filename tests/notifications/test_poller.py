"""The webhook workers' delivery pollers (notifications/poller.py), on PostgreSQL.

A new delivery is written without a job; a poller claims due deliveries once each and
runs their tries on the pool it is given; one claimed by a poller that was lost goes to
the sweep. test_worker.py runs a poller in a real worker process.
"""

import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from notifications.delivery import LOST_JOB_GRACE, deliveries_sweep
from notifications.models import Delivery, DeliveryStatus, WebhookEndpoint
from notifications.poller import DeliveryPoller, Submit, deliveries_claim_due
from notifications.services import ENDPOINT_DELETED
from tests.factories import WebhookEndpointFactory
from tests.notifications.conftest import Jobs, Receiver, record_event
from tests.paywave.observability.conftest import json_lines  # noqa: F401 (a fixture)
from tests.processes import wait_for

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _pollers_on(settings: Any) -> None:
    settings.PAYWAVE_WEBHOOK_POLLER = True


@pytest.fixture
def pool() -> Iterator[Submit]:
    """Threads standing in for the worker's pool (each closes its connection after a try)."""
    executor = ThreadPoolExecutor(4)

    def submit(target: Any, args: tuple[Any, ...], done: Any) -> None:
        def run() -> None:
            try:
                done(target(*args))
            finally:
                connection.close()

        executor.submit(run)

    yield submit
    executor.shutdown(wait=True)


@contextmanager
def polling(poller: DeliveryPoller) -> Iterator[DeliveryPoller]:
    poller.start()
    try:
        yield poller
    finally:
        poller.stop()


def wait_until_delivered(count: int) -> None:
    wait_for(
        lambda: Delivery.objects.filter(status=DeliveryStatus.DELIVERED).count() == count,
        timeout=30,
        what=f"{count} deliveries sent by the poller",
    )


def test_a_new_delivery_has_no_job_and_is_due(wallet_app: Any, jobs: Jobs) -> None:
    assert connection.vendor == "postgresql"
    WebhookEndpointFactory(client=wallet_app)

    event = record_event(wallet_app)

    delivery = Delivery.objects.get(event=event)
    assert delivery.job_token is None
    assert delivery.next_attempt_at is not None
    assert delivery.next_attempt_at <= timezone.now()
    assert jobs.names() == []  # no job: a poller sends it


def test_a_claim_takes_each_due_delivery_once(wallet_app: Any) -> None:
    first, second = WebhookEndpointFactory.create_batch(2, client=wallet_app)
    disabled = WebhookEndpointFactory(client=wallet_app)
    event = record_event(wallet_app)
    disabled.enabled = False
    disabled.save()
    later = record_event(wallet_app)
    Delivery.objects.filter(event=later).update(
        next_attempt_at=timezone.now() + timedelta(minutes=5)
    )

    claimed = dict(deliveries_claim_due(10))

    due = Delivery.objects.filter(event=event, endpoint__in=[first, second])
    assert set(claimed) == set(due.values_list("pk", flat=True))
    for delivery in due:
        assert delivery.job_token == claimed[delivery.pk]
    assert deliveries_claim_due(10) == []  # each once
    assert not Delivery.objects.filter(event=later).exclude(job_token=None).exists()


def test_a_delivery_to_an_endpoint_deleted_since_is_claimed_and_failed(
    wallet_app: Any, pool: Submit
) -> None:
    endpoint = WebhookEndpointFactory(client=wallet_app)
    record_event(wallet_app)
    # Deleted after the event's fan-out read its subscriptions (another process's cache).
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(enabled=False, deleted_at=timezone.now())
    with polling(DeliveryPoller(1, pool)):
        wait_for(
            lambda: Delivery.objects.filter(status=DeliveryStatus.FAILED).exists(),
            timeout=30,
            what="the delivery failed",
        )

    assert Delivery.objects.get().last_error == ENDPOINT_DELETED


def test_a_claim_takes_no_more_than_it_asks_for(wallet_app: Any) -> None:
    WebhookEndpointFactory.create_batch(3, client=wallet_app)
    for _ in range(2):
        record_event(wallet_app)

    assert [len(deliveries_claim_due(limit)) for limit in (1, 2, 5, 5)] == [1, 2, 3, 0]


def test_two_pollers_claiming_at_once_never_take_the_same_delivery(wallet_app: Any) -> None:
    WebhookEndpointFactory.create_batch(6, client=wallet_app)
    for _ in range(5):
        record_event(wallet_app)
    claims: list[list[int]] = [[], []]

    def claim(index: int) -> None:
        try:
            while taken := deliveries_claim_due(3):
                claims[index].extend(delivery_id for delivery_id, _ in taken)
        finally:
            connection.close()

    threads = [threading.Thread(target=claim, args=(index,)) for index in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    every = claims[0] + claims[1]
    assert len(every) == len(set(every)) == 30


def test_the_poller_sends_what_is_due_on_the_pool_and_stops(
    wallet_app: Any, receiver: Receiver, jobs: Jobs, pool: Submit
) -> None:
    WebhookEndpointFactory(client=wallet_app, url=receiver.url())
    with polling(DeliveryPoller(2, pool)):
        events = [record_event(wallet_app) for _ in range(5)]
        wait_until_delivered(5)

    assert sorted(receiver.event_ids()) == sorted(str(event.public_id) for event in events)
    assert jobs.names() == []
    assert "delivery-poller" not in {thread.name for thread in threading.enumerate()}


def test_a_failed_first_try_is_retried_as_a_job(
    wallet_app: Any, receiver: Receiver, jobs: Jobs, pool: Submit
) -> None:
    WebhookEndpointFactory(client=wallet_app, url=receiver.url())
    receiver.script(503)
    with polling(DeliveryPoller(1, pool)):
        record_event(wallet_app)
        wait_for(lambda: jobs.names(), timeout=30, what="the retry's job")

    assert jobs.names() == ["notifications.deliver"]
    jobs.drive()
    assert [outcome for _, outcome in jobs.deliveries()] == ["delivered"]
    assert Delivery.objects.get().attempt_count == 2


def test_a_delivery_whose_poller_was_lost_goes_to_the_sweep(
    wallet_app: Any, receiver: Receiver, jobs: Jobs
) -> None:
    WebhookEndpointFactory(client=wallet_app, url=receiver.url())
    record_event(wallet_app)
    [(delivery_id, token)] = deliveries_claim_due(10)  # and then the worker is gone

    assert deliveries_sweep() == 0  # only late
    Delivery.objects.filter(pk=delivery_id).update(
        next_attempt_at=timezone.now() - LOST_JOB_GRACE - timedelta(seconds=1)
    )
    assert deliveries_sweep() == 1

    jobs.drive()
    assert [outcome for _, outcome in jobs.deliveries()] == ["delivered"]
    assert jobs.ran[0].job.args == (delivery_id, str(token))
    assert len(receiver.requests) == 1


def test_a_pollers_try_logs_whose_delivery_and_which_payment(
    wallet_app: Any,
    receiver: Receiver,
    pool: Submit,
    json_lines: Any,  # noqa: F811 (the fixture imported above)
) -> None:
    WebhookEndpointFactory(client=wallet_app, url=receiver.url())
    payment_id = uuid.uuid4()
    with polling(DeliveryPoller(1, pool)):
        record_event(wallet_app, "payment.succeeded", subject_id=payment_id)
        wait_for(lambda: json_lines.about(outcome="delivered"), timeout=30, what="the try's line")

    [tried] = json_lines.about(outcome="delivered")
    delivery = Delivery.objects.get()
    assert tried["message"] == f"delivery {delivery.pk} tried: delivered"
    assert tried["logger_name"] == "notifications.delivery"
    assert tried["delivery_id"] == str(delivery.pk)
    assert tried["client"] == str(wallet_app.pk)
    assert tried["payment_id"] == str(payment_id)
    # What the receiver answered is on the try's line; httpx's own line is DEBUG only.
    assert tried["status_code"] == 200
    assert isinstance(tried["latency_ms"], int)
    assert "error" not in tried
    assert not [line for line in json_lines.records() if line["logger_name"] == "httpx"]


def test_the_poller_runs_no_more_tries_at_once_than_its_concurrency(
    wallet_app: Any, receiver: Receiver, pool: Submit
) -> None:
    """The pool has 4 threads; a poller of concurrency 2 keeps 2 of them at most."""
    WebhookEndpointFactory(client=wallet_app, url=receiver.url())
    receiver.delay = 0.2  # tries overlap
    running, most = 0, 0
    lock = threading.Lock()

    def counted(target: Any, args: tuple[Any, ...], done: Any) -> None:
        def run(*arguments: Any) -> str:
            nonlocal running, most
            with lock:
                running += 1
                most = max(most, running)
            try:
                return str(target(*arguments))
            finally:
                with lock:
                    running -= 1

        pool(run, args, done)

    for _ in range(6):
        record_event(wallet_app)
    with polling(DeliveryPoller(2, counted)):
        wait_until_delivered(6)

    assert most == 2
