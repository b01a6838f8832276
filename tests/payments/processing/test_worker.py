"""Real Celery workers over RabbitMQ: end to end, and a worker killed mid-charge.

Each worker is a `celery worker` process on the `payments` queue, reading the
test database, the Redis cache and the simulators the test uses.
"""

import itertools
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone
from kombu import Exchange, Queue

from config.celery_app import app as celery_app
from gateways.models import Gateway
from payments.models import AttemptOutcome, Payment, PaymentAttempt
from payments.models import PaymentStatus as S
from payments.sweeps import payments_sweep_outbox
from tests.helpers import card_body, pix_body, post_payment
from tests.processes import database_url

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]

REPO_ROOT = Path(__file__).resolve().parents[3]
PAYMENTS_QUEUE = Queue("payments", Exchange("payments", type="direct"), routing_key="payments")


class Worker:
    def __init__(self, env: dict[str, str]) -> None:
        self.name = f"test-{uuid.uuid4().hex[:8]}@%h"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config.celery_app", "worker",
             "--queues", "payments", "--pool", "threads", "--concurrency", "4",
             "--hostname", self.name, "--without-gossip", "--without-mingle",
             "--loglevel", "WARNING"],
            cwd=REPO_ROOT, env=env, start_new_session=True,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip

    def kill(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def start_worker(gateways: Any, simulator: Any) -> Iterator[Callable[[], Worker]]:
    with celery_app.connection_for_write() as conn:  # no other test's jobs
        bound = PAYMENTS_QUEUE(conn.default_channel)
        bound.declare()
        bound.purge()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": database_url(),
        "PAYWAVE_SANDBOX": "true",
        "PAYWAVE_SIMULATOR_URL": simulator.base_url,
        "PAYWAVE_RETRY_BASE_SECONDS": "0.05",
    }
    workers: list[Worker] = []

    def start() -> Worker:
        workers.append(Worker(env))
        return workers[-1]

    yield start
    for worker in workers:
        worker.stop()


def wait_for(predicate: Callable[[], Any], timeout: float = 60.0, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what or predicate}")


def status_of(payment_id: str) -> str:
    return Payment.objects.values_list("status", flat=True).get(pk=payment_id)


def test_payments_are_charged_by_a_worker(api: Any, start_worker: Any, sim: Any) -> None:
    start_worker()
    pix = post_payment(api, pix_body(), key="w-pix").json()["id"]
    card = post_payment(api, card_body(), key="w-card").json()["id"]

    wait_for(lambda: status_of(pix) == S.AWAITING_PAYMENT, what="the PIX charge")
    wait_for(lambda: status_of(card) == S.SUCCEEDED, what="the card charge")

    assert len(sim.charges(pix)) == 1
    assert len(sim.charges(card)) == 1
    document = api.get(f"/api/v1/payments/{pix}").json()  # the cache followed the worker
    assert document["status"] == "awaiting_payment"
    assert document["pix"]["qr_code"].startswith("000201")


def test_retries_and_fallback_through_the_broker(api: Any, start_worker: Any, sim: Any) -> None:
    sim.faults("mercadopago", down=True, down_mode="503")
    start_worker()

    payment_id = post_payment(api, pix_body(), key="w-fallback").json()["id"]

    wait_for(lambda: status_of(payment_id) == S.AWAITING_PAYMENT, what="fallback")
    attempts = PaymentAttempt.objects.filter(payment_id=payment_id).order_by("id")
    assert [(a.gateway, a.outcome) for a in attempts] == [
        ("mercadopago", AttemptOutcome.RETRYABLE),
        ("mercadopago", AttemptOutcome.RETRYABLE),
        ("mercadopago", AttemptOutcome.RETRYABLE),
        ("gerencianet", AttemptOutcome.SUCCEEDED),
    ]
    gaps = [(b.created_at - a.created_at).total_seconds() for a, b in itertools.pairwise(attempts)]
    assert gaps[0] >= 0.04
    assert gaps[1] >= 0.08


def test_a_worker_killed_mid_charge_leaves_exactly_one_charge(
    api: Any, start_worker: Any, sim: Any
) -> None:
    Gateway.objects.filter(code="mercadopago").update(timeout_ms=4000)
    sim.faults("mercadopago", latency_ms=2500)  # the charge takes a while to answer
    doomed = start_worker()

    payment_id = post_payment(api, pix_body(), key="w-kill").json()["id"]
    wait_for(
        lambda: PaymentAttempt.objects.filter(
            payment_id=payment_id, outcome=AttemptOutcome.IN_FLIGHT
        ).exists(),
        what="the call to be under way",
    )
    doomed.kill()
    sim.reset_faults()
    start_worker()  # the unacknowledged job goes back to the queue and comes here

    wait_for(lambda: status_of(payment_id) == S.AWAITING_PAYMENT, timeout=60, what="recovery")

    attempts = PaymentAttempt.objects.filter(payment_id=payment_id).order_by("id")
    assert [(a.number, a.outcome) for a in attempts] == [
        (1, AttemptOutcome.AMBIGUOUS),
        (2, AttemptOutcome.SUCCEEDED),
    ]
    assert attempts[0].error_class == "WorkerLost"
    assert len({a.idempotency_key for a in attempts}) == 1
    assert len(sim.charges(payment_id)) == 1


def rabbitmq(command: str) -> None:
    rabbitmqctl = shutil.which("rabbitmqctl")
    assert rabbitmqctl, "rabbitmqctl is needed to stop and start the real broker"
    subprocess.run([rabbitmqctl, "-q", command], check=True, timeout=120, capture_output=True)


def broker_answers() -> bool:
    try:
        with celery_app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
        return True
    except Exception:
        return False


@pytest.fixture
def broker_outage() -> Iterator[Callable[[], None]]:
    """Stop the real RabbitMQ's application; hand back what starts it again (always, at the end)."""
    rabbitmq("stop_app")
    started = False

    def back() -> None:
        nonlocal started
        if not started:
            rabbitmq("start_app")
            started = True
        wait_for(broker_answers, timeout=60, what="RabbitMQ to answer again")

    try:
        yield back
    finally:
        back()


def test_payments_accepted_while_rabbitmq_is_stopped_are_charged_once_after_it_is_back(
    api: Any, start_worker: Any, sim: Any, broker_outage: Callable[[], None]
) -> None:
    start_worker()  # consuming before the outage: it must reconnect by itself

    responses = [post_payment(api, pix_body(), key=f"w-outage-{n}") for n in range(3)]

    assert [r.status_code for r in responses] == [202] * 3  # accepted: stored before the answer
    ids = [r.json()["id"] for r in responses]
    assert {status_of(payment_id) for payment_id in ids} == {S.PENDING}
    broker_outage()  # RabbitMQ is back; the jobs of those three were never published
    time.sleep(1)
    assert {status_of(payment_id) for payment_id in ids} == {S.PENDING}
    Payment.objects.filter(pk__in=ids).update(next_attempt_at=timezone.now() - timedelta(hours=1))

    assert payments_sweep_outbox() == 3  # what beat runs every 30 s

    wait_for(
        lambda: {status_of(payment_id) for payment_id in ids} == {S.AWAITING_PAYMENT},
        what="the swept payments",
    )
    assert [len(sim.charges(payment_id)) for payment_id in ids] == [1, 1, 1]
    assert payments_sweep_outbox() == 0
