"""Prometheus metrics: /metrics, the PayWave counters, the scrape-time collectors."""

import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from kombu import Connection, Exchange, Queue
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from config.celery_app import app as celery_app
from gateways.circuit import circuit_record_failure
from paywave.observability import alerts, metrics
from paywave.observability.celery_signals import serve_worker_metrics
from paywave.observability.metrics import QueueDepthCollector, record_attempt, record_transition
from tests.embedded_worker import embedded_worker

REPO_ROOT = Path(__file__).resolve().parents[2]


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(text: str, name: str, **labels: str) -> float | None:
    return samples(text).get((name, frozenset(labels.items())))


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.mark.django_db
def test_metrics_need_no_token_and_expose_paywave_and_django_metrics(client: Any) -> None:
    client.get("/healthz")

    response = client.get("/metrics")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    text = response.content.decode()
    for name in (
        "paywave_payment_transitions_total",
        "paywave_gateway_attempt_seconds",
        "paywave_webhook_deliveries_total",
        "paywave_broker_up",
        "django_http_requests_total_by_method_total",
    ):
        assert f"# TYPE {name.removesuffix('_total')}" in text, name


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("peer", "forwarded_for", "allowed"),
    [
        ("127.0.0.1", None, True),
        ("10.2.3.4", None, True),  # Prometheus in the cluster
        ("172.18.0.9", None, True),  # Prometheus on the compose network
        ("203.0.113.7", None, False),
        ("10.2.3.4", "203.0.113.7", False),  # the public, through the ingress
        ("10.2.3.4", "10.0.0.8, 10.2.3.1", True),
    ],
)
def test_metrics_are_served_to_the_monitoring_network_only(
    client: Any, peer: str, forwarded_for: str | None, allowed: bool
) -> None:
    headers = {"HTTP_X_FORWARDED_FOR": forwarded_for} if forwarded_for else {}

    response = client.get("/metrics", REMOTE_ADDR=peer, **headers)

    assert response.status_code == (200 if allowed else 403)
    if not allowed:
        assert response.json()["error"]["code"] == "permission_denied"


@pytest.mark.django_db
def test_the_allow_list_is_a_setting(client: Any, settings: Any) -> None:
    settings.PAYWAVE_METRICS_ALLOW = ["203.0.113.0/24"]

    assert client.get("/metrics", REMOTE_ADDR="203.0.113.7").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 403


def test_the_record_functions_move_the_counters() -> None:
    gateway = f"gw-{uuid.uuid4().hex[:6]}"

    record_transition("succeeded", "card", gateway, payment_id="p-1", from_status="processing")
    record_attempt(gateway, "retryable", 0.3, error_class="Retryable", attempt=1)
    record_attempt(gateway, "retryable", 0.7)
    endpoint = uuid.uuid4()
    metrics.record_webhook_delivery(endpoint, "delivered")

    transitions = dict(to_status="succeeded", method="card", gateway=gateway)
    assert sample("paywave_payment_transitions_total", **transitions) == 1
    attempts = dict(gateway=gateway, outcome="retryable")
    assert sample("paywave_gateway_attempt_seconds_count", **attempts) == 2
    assert sample("paywave_gateway_attempt_seconds_sum", **attempts) == pytest.approx(1.0)
    assert sample("paywave_gateway_attempt_seconds_bucket", le="0.5", **attempts) == 1
    delivered = dict(endpoint=str(endpoint), outcome="delivered")
    assert sample("paywave_webhook_deliveries_total", **delivered) == 1


@pytest.mark.django_db
def test_circuit_state_is_read_from_the_cache_at_scrape_time(
    client: Any, gateways: Any, settings: Any
) -> None:
    settings.PAYWAVE_CIRCUIT_THRESHOLD = 2
    circuit_record_failure("stripe")
    circuit_record_failure("stripe")

    text = client.get("/metrics").content.decode()

    assert value(text, "paywave_gateway_circuit_state", gateway="stripe", state="open") == 1
    assert value(text, "paywave_gateway_circuit_state", gateway="stripe", state="closed") == 0
    assert value(text, "paywave_gateway_circuit_failures", gateway="stripe") == 2
    assert value(text, "paywave_gateway_circuit_state", gateway="mercadopago", state="closed") == 1


@pytest.mark.django_db
def test_a_disabled_gateway_has_no_circuit_to_watch(
    client: Any, gateways: Any, settings: Any
) -> None:
    """Disabled while its circuit was open: no call will ever close it, no alert may page."""
    settings.PAYWAVE_CIRCUIT_THRESHOLD = 1
    circuit_record_failure("stripe")
    type(gateways["stripe"]).objects.filter(code="stripe").update(enabled=False)

    text = client.get("/metrics").content.decode()

    assert value(text, "paywave_gateway_circuit_state", gateway="stripe", state="open") is None
    assert value(text, "paywave_gateway_circuit_state", gateway="mercadopago", state="closed") == 1


@pytest.fixture
def private_queue() -> Iterator[Queue]:
    name = f"test-depth-{uuid.uuid4().hex[:10]}"
    queue = Queue(name, Exchange(name, type="direct"), routing_key=name, auto_delete=False)
    with celery_app.connection_for_write() as conn:
        queue(conn.default_channel).declare()
    yield queue
    with celery_app.connection_for_write() as conn:
        queue(conn.default_channel).delete()
        conn.default_channel.exchange_delete(name)


def publish_confirmed(queue: Queue, *numbers: int) -> None:
    """Publish and wait for the broker's confirm, so its queue counts what was sent.

    Without the confirm a count asked on another connection may miss messages the
    broker has not yet put in the queue.
    """
    options = {"confirm_publish": True}
    with Connection(celery_app.conf.broker_url, transport_options=options) as conn:
        producer = conn.Producer()
        for number in numbers:
            producer.publish(
                {"n": number},
                exchange=queue.exchange,
                routing_key=queue.routing_key,
                declare=[queue],
                retry=True,  # a connection the broker closed meanwhile is made again
            )


@pytest.mark.services
def test_queue_depth_is_asked_of_the_broker_and_cached(private_queue: Queue) -> None:
    publish_confirmed(private_queue, 0, 1, 2)
    collector = QueueDepthCollector(ttl=60, queues=[private_queue.name, "no-such-queue-here"])
    registry = CollectorRegistry()
    registry.register(collector)

    text = generate_latest(registry).decode()
    publish_confirmed(private_queue, 3)
    cached = generate_latest(registry).decode()

    assert value(text, "paywave_broker_up") == 1
    assert value(text, "paywave_queue_messages", queue=private_queue.name) == 3
    assert value(text, "paywave_queue_consumers", queue=private_queue.name) == 0
    assert value(text, "paywave_queue_messages", queue="no-such-queue-here") is None
    assert value(cached, "paywave_queue_messages", queue=private_queue.name) == 3  # within ttl


@pytest.mark.services
@pytest.mark.django_db  # a starting worker runs Django's system checks, which read the schema
def test_rabbitmq_counts_the_workers_consuming_a_queue(private_queue: Queue) -> None:
    registry = CollectorRegistry()
    registry.register(QueueDepthCollector(ttl=0, queues=[private_queue.name]))

    idle = generate_latest(registry).decode()
    with embedded_worker(celery_app, pool="threads", concurrency=4, queues=[private_queue.name],
                      perform_ping_check=False, shutdown_timeout=20):  # fmt: skip
        consuming = generate_latest(registry).decode()

    assert value(idle, "paywave_queue_consumers", queue=private_queue.name) == 0
    # One worker is one consumer (one channel), whatever its pool's size.
    assert value(consuming, "paywave_queue_consumers", queue=private_queue.name) == 1


def test_the_filesystem_broker_gives_queue_depth_but_no_consumer_count(tmp_path: Path) -> None:
    folders = {name: tmp_path / name for name in ("queue", "processed", "control")}
    for folder in folders.values():
        folder.mkdir()
    options = {
        "data_folder_in": str(folders["queue"]),
        "data_folder_out": str(folders["queue"]),
        "processed_folder": str(folders["processed"]),
        "control_folder": str(folders["control"]),
    }
    queue = Queue("depth", Exchange("depth", type="direct"), routing_key="depth")

    def connect() -> Connection:
        return Connection("filesystem://", transport_options=options)

    registry = CollectorRegistry()
    registry.register(QueueDepthCollector(ttl=0, queues=["depth"], connect=connect))
    with connect() as conn:
        for number in range(2):
            conn.Producer().publish({"n": number}, exchange=queue.exchange,
                                    routing_key="depth", declare=[queue])  # fmt: skip
        with conn.Consumer(queue, callbacks=[lambda body, message: None]):  # a worker's
            text = generate_latest(registry).decode()

    assert value(text, "paywave_broker_up") == 1
    assert value(text, "paywave_queue_messages", queue="depth") == 2
    # The filesystem transport answers 0 consumers whoever consumes: none is reported.
    assert value(text, "paywave_queue_consumers", queue="depth") is None


def test_an_unreachable_broker_never_fails_the_scrape() -> None:
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    url = f"amqp://guest:guest@127.0.0.1:{port}//"
    collector = QueueDepthCollector(ttl=0, connect=lambda: Connection(url, connect_timeout=1))
    registry = CollectorRegistry()
    registry.register(collector)

    started = time.monotonic()
    text = generate_latest(registry).decode()

    assert time.monotonic() - started < 10
    assert value(text, "paywave_broker_up") == 0
    assert "paywave_queue_messages{" not in text


@pytest.mark.django_db
def test_a_worker_serves_its_own_metrics(settings: Any) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    settings.PAYWAVE_WORKER_METRICS_PORT = listener.getsockname()[1]
    settings.PAYWAVE_WORKER_METRICS_ADDR = "127.0.0.1"
    listener.close()
    record_attempt("worker-gw", "succeeded", 0.2)

    server = serve_worker_metrics()
    try:
        url = f"http://127.0.0.1:{settings.PAYWAVE_WORKER_METRICS_PORT}/metrics"
        text = urllib.request.urlopen(url, timeout=5).read().decode()
    finally:
        server.shutdown()
        server.server_close()

    assert value(text, "paywave_gateway_attempt_seconds_count", gateway="worker-gw",
                 outcome="succeeded") == 1  # fmt: skip


@pytest.fixture
def worker_metrics(settings: Any) -> Iterator[str]:
    """A worker's metrics server (serve_worker_metrics) on 127.0.0.1; its URL."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    settings.PAYWAVE_WORKER_METRICS_PORT = listener.getsockname()[1]
    settings.PAYWAVE_WORKER_METRICS_ADDR = "127.0.0.1"
    listener.close()
    server = serve_worker_metrics()
    yield f"http://127.0.0.1:{settings.PAYWAVE_WORKER_METRICS_PORT}/metrics"
    server.shutdown()
    server.server_close()


def status_of(url: str, **headers: str) -> int:
    return httpx.get(url, headers=headers, timeout=5).status_code


@pytest.mark.django_db
def test_a_workers_metrics_answer_the_allow_list_only(worker_metrics: str, settings: Any) -> None:
    assert status_of(worker_metrics) == 200  # 127.0.0.1 is in the default allow-list
    assert status_of(worker_metrics, **{"X-Forwarded-For": "203.0.113.7"}) == 403

    settings.PAYWAVE_METRICS_ALLOW = ["203.0.113.0/24"]  # Prometheus elsewhere: not us

    assert status_of(worker_metrics) == 403


MULTIPROCESS_WORKER = """
import django
django.setup()
from paywave.observability.metrics import record_attempt
record_attempt("stripe", "succeeded", 0.2)
"""
MULTIPROCESS_SCRAPE = """
import sys, django
django.setup()
from django.test import Client
with open(sys.argv[1], "wb") as out:
    out.write(Client().get("/metrics").content)
"""


def test_multiprocess_mode_adds_up_every_process(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prometheus"),
        "CELERY_BROKER_URL": "memory://",
        "LOG_LEVEL": "CRITICAL",
    }
    (tmp_path / "prometheus").mkdir()
    for _ in range(2):  # two gunicorn workers, each counting one attempt
        subprocess.run([sys.executable, "-c", MULTIPROCESS_WORKER], cwd=REPO_ROOT, env=env,
                       check=True, timeout=60)  # fmt: skip

    out = tmp_path / "scrape.txt"
    subprocess.run([sys.executable, "-c", MULTIPROCESS_SCRAPE, str(out)], cwd=REPO_ROOT, env=env,
                   check=True, timeout=60)  # fmt: skip

    text = out.read_text()
    assert value(text, "paywave_gateway_attempt_seconds_count", gateway="stripe",
                 outcome="succeeded") == 2  # fmt: skip
    assert "paywave_broker_up" in text  # the scrape-time collectors are there too


MULTIPROCESS_WORKER_SERVER = """
import sys, urllib.request, django
django.setup()
from paywave.observability.metrics import record_attempt, worker_metrics_serve
record_attempt("stripe", "succeeded", 0.2)
server = worker_metrics_serve("127.0.0.1", 0)
url = f"http://127.0.0.1:{server.server_address[1]}/metrics"
sys.stdout.write(urllib.request.urlopen(url, timeout=5).read().decode())
"""


def test_a_worker_with_a_multiprocess_directory_serves_all_of_it(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prometheus"),
        "CELERY_BROKER_URL": "memory://",
        "LOG_LEVEL": "CRITICAL",
    }
    # Another process of the same worker (a prefork child) counted one attempt ...
    subprocess.run([sys.executable, "-c", MULTIPROCESS_WORKER], cwd=REPO_ROOT, env=env,
                   check=True, timeout=60)  # fmt: skip

    # ... and the one serving the port counts one too: its scrape has both.
    served = subprocess.run(
        [sys.executable, "-c", MULTIPROCESS_WORKER_SERVER],
        cwd=REPO_ROOT,
        env=env,
        check=True,
        timeout=60,
        capture_output=True,
        text=True,
    )

    assert value(served.stdout, "paywave_gateway_attempt_seconds_count", gateway="stripe",
                 outcome="succeeded") == 2  # fmt: skip


def test_every_operator_alert_kind_is_counted_from_zero() -> None:
    for kind in alerts.AlertKind.all():
        assert (
            REGISTRY.get_sample_value("paywave_operator_alerts_total", {"alert": kind}) is not None
        )

    before = REGISTRY.get_sample_value(
        "paywave_operator_alerts_total", {"alert": "paid_after_cancel"}
    )
    alerts.operator_alert(alerts.AlertKind.PAID_AFTER_CANCEL, "paid after its cancel")
    after = REGISTRY.get_sample_value(
        "paywave_operator_alerts_total", {"alert": "paid_after_cancel"}
    )
    assert after == before + 1
