"""A real Celery worker on the `notifications` queue over RabbitMQ, end to end.

A payment's transitions record events in the test process; their fan-out jobs go
through RabbitMQ to a `celery worker` process, which POSTs the deliveries to a
receiver in this process, retrying through the broker.
"""

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from types import ModuleType
from typing import Any

import pytest
from django.utils import timezone
from kombu import Exchange, Queue
from rest_framework.test import APIClient

from config.celery_app import app as celery_app
from notifications.delivery import LOST_JOB_GRACE, deliveries_sweep
from notifications.models import Delivery, DeliveryAttempt, DeliveryStatus
from payments.models import PaymentStatus as S
from payments.transitions import payment_transition
from tests.factories import PaymentFactory, WebhookEndpointFactory
from tests.notifications.conftest import REPO_ROOT, Receiver
from tests.processes import database_url, wait_for

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]

NOTIFICATIONS_QUEUE = Queue(
    "notifications", Exchange("notifications", type="direct"), routing_key="notifications"
)


@pytest.fixture(params=[False, True], ids=["jobs", "pollers"])
def pollers(request: pytest.FixtureRequest, settings: Any) -> bool:
    """New deliveries as jobs, or sent by the worker's delivery poller (notifications/poller.py)."""
    settings.PAYWAVE_WEBHOOK_POLLER = request.param
    return bool(request.param)


@pytest.fixture
def worker(pollers: bool) -> Iterator[subprocess.Popen[bytes]]:
    with running_worker(pollers) as process:
        yield process


@contextmanager
def running_worker(pollers: bool) -> Iterator[subprocess.Popen[bytes]]:
    with celery_app.connection_for_write() as conn:  # no other test's jobs
        bound = NOTIFICATIONS_QUEUE(conn.default_channel)
        bound.declare()
        bound.purge()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": database_url(),
        "PAYWAVE_WEBHOOK_ALLOW_PRIVATE": "true",
        "PAYWAVE_WEBHOOK_RETRY_SCHEDULE": "1",  # retry after 1 s instead of 10 s
        "PAYWAVE_WEBHOOK_POLLER": str(pollers).lower(),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config.celery_app", "worker",
         "--queues", "notifications", "--pool", "threads", "--concurrency", "4",
         "--hostname", f"test-notifications-{uuid.uuid4().hex[:8]}@%h",
         "--without-gossip", "--without-mingle", "--loglevel", "WARNING"],
        cwd=REPO_ROOT, env=env, start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    yield process
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def test_a_payments_events_reach_the_wallet_app_signed_in_order_through_the_broker(
    api: APIClient,
    wallet_app: Any,
    worker: Any,
    receiver: Receiver,
    example: ModuleType,
) -> None:
    created = api.post(
        "/api/v1/webhook-endpoints",
        {"url": receiver.url(), "events": ["payment.processing", "payment.succeeded"]},
        format="json",
        HTTP_IDEMPOTENCY_KEY="hook",
    ).json()
    receiver.script(500)  # the first try fails: retried through the broker
    payment = PaymentFactory(client=wallet_app)

    for source, target in ((S.PENDING, S.PROCESSING), (S.PROCESSING, S.SUCCEEDED)):
        payment_transition(
            payment_id=payment.id, from_statuses=[source], to_status=target,
            reason="test", actor="test",
        )  # fmt: skip

    wait_for(lambda: len(receiver.requests) >= 3, what="three POSTs")
    wait_for(
        lambda: Delivery.objects.filter(status=DeliveryStatus.DELIVERED).count() == 2,
        what="both deliveries acknowledged",
    )
    types = [request.json()["type"] for request in receiver.requests]
    assert types == ["payment.processing", "payment.processing", "payment.succeeded"]
    for request in receiver.requests:
        assert example.verify(created["secret"], request.headers["PayWave-Signature"], request.body)
    assert receiver.requests[2].json()["data"]["status"] == "succeeded"
    assert DeliveryAttempt.objects.count() == 3
    assert worker.poll() is None


def test_a_delivery_whose_worker_is_killed_mid_try_is_sent_again_by_the_sweep(
    wallet_app: Any, receiver: Receiver, settings: Any
) -> None:
    settings.PAYWAVE_WEBHOOK_POLLER = True
    WebhookEndpointFactory(client=wallet_app, url=receiver.url(), events=["payment.processing"])
    receiver.delay = 30  # the first POST hangs: the worker dies waiting for the answer
    payment = PaymentFactory(client=wallet_app)

    with running_worker(pollers=True) as first:
        payment_transition(
            payment_id=payment.id, from_statuses=[S.PENDING], to_status=S.PROCESSING,
            reason="test", actor="test",
        )  # fmt: skip
        wait_for(lambda: receiver.requests, what="the poller's try POSTing")
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(timeout=10)

    delivery = Delivery.objects.get()
    assert delivery.status == DeliveryStatus.PENDING
    assert delivery.attempt_count == 1
    assert delivery.job_token is not None  # claimed by the lost poller: not the poller's again
    receiver.delay = 0
    # As if the try's lease and the grace had passed.
    Delivery.objects.filter(pk=delivery.pk).update(
        next_attempt_at=timezone.now() - LOST_JOB_GRACE - timedelta(seconds=1)
    )
    with running_worker(pollers=True):
        assert deliveries_sweep() == 1  # its job, through RabbitMQ
        wait_for(
            lambda: Delivery.objects.filter(status=DeliveryStatus.DELIVERED).exists(),
            what="the delivery sent again",
        )

    assert len(receiver.requests) == 2  # at least once: the wallet app dedupes on the id
    assert receiver.requests[0].json()["id"] == receiver.requests[1].json()["id"]
