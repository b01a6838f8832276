"""Prometheus metrics: what PayWave counts, and the /metrics view.

Counters and histograms live in the process that does the work: the API's
gunicorn workers and the Celery workers (which serve their own registry on
PAYWAVE_WORKER_METRICS_ADDR:PAYWAVE_WORKER_METRICS_PORT, to the same
PAYWAVE_METRICS_ALLOW as the API's /metrics, see paywave.observability.celery_signals).
Each gunicorn worker has its own registry unless PROMETHEUS_MULTIPROC_DIR names an
empty directory writable by all of them (prometheus_client's multiprocess mode; set
before the process starts): /metrics then adds up every worker's files. A Celery worker given
such a directory serves the sum of its files too (its pool's processes, if prefork).
One directory per kind of process: the API's would otherwise add up the workers'
counts as well, and Prometheus would see them twice.

Queue depth is read when Prometheus scrapes (a custom collector), from the broker,
never failing a scrape; an app adds collectors of its own state the same way
(`scrape_time_register`: the gateways' circuits, gateways/metrics.py). The broker is
the one of Celery's default app, which config/celery_app.py sets for every thread.
"""

import functools
import ipaddress
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from socketserver import ThreadingMixIn
from typing import Any, Generic, Protocol, TypeVar, cast
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from celery.app import default_app
from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from kombu import Connection
from kombu.transport import virtual
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    make_wsgi_app,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from paywave.jobs import QUEUES

logger = logging.getLogger(__name__)
T = TypeVar("T")

PAYMENT_TRANSITIONS = Counter(
    "paywave_payment_transitions_total",
    "Payment status changes, by the status reached, method and gateway.",
    ["to_status", "method", "gateway"],
)
GATEWAY_ATTEMPT_SECONDS = Histogram(
    "paywave_gateway_attempt_seconds",
    "Gateway charge attempts: latency by gateway and outcome.",
    ["gateway", "outcome"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0),
)
CIRCUIT_CHANGES = Counter(
    "paywave_gateway_circuit_changes_total",
    "Circuit breaker changes per gateway, by the state reached (open, half_open, closed).",
    ["gateway", "to_state"],
)
APPROVALS = Counter(
    "paywave_approvals_total",
    "Payments waiting for their payer's approval (PayPal) looked at, by gateway, by what "
    "started it (payer-return, gateway-callback, reconciliation) and by what became of it.",
    ["gateway", "signal", "outcome"],
)
PIX_CHECKS = Counter(
    "paywave_pix_checks_total",
    "Waiting PIX charges looked up before they expire (by reconciliation, or staff), by "
    "gateway and by what was found (succeeded: paid, its callback missed).",
    ["gateway", "outcome"],
)
WEBHOOK_DELIVERIES = Counter(
    "paywave_webhook_deliveries_total",
    "Webhook delivery tries to wallet apps, by endpoint (its id) and outcome.",
    ["endpoint", "outcome"],
)
OPERATOR_ALERTS = Counter(
    "paywave_operator_alerts_total",
    "Operator alerts raised (paywave.observability.alerts), by kind: one per alert logged.",
    ["alert"],
)

events_logger = logging.getLogger("paywave.events")


def record_transition(
    to_status: str,
    method: str,
    gateway: str | None,
    *,
    payment_id: Any = None,
    from_status: str | None = None,
) -> None:
    """Count a payment status change and log it (Kibana's "payments by status").

    A payment's creation is its first change: to `pending`, from no status."""
    PAYMENT_TRANSITIONS.labels(str(to_status), str(method), gateway or "none").inc()
    fields = {"event": "payment_transition", "to_status": str(to_status), "method": str(method)}
    if gateway:
        fields["gateway"] = gateway
    if payment_id is not None:
        fields["payment_id"] = str(payment_id)
    if from_status is not None:
        fields["from_status"] = str(from_status)
    events_logger.info("payment %s -> %s", from_status or "new", to_status, extra=fields)


def record_attempt(
    gateway: str,
    outcome: str,
    seconds: float,
    *,
    error_class: str = "",
    payment_id: Any = None,
    attempt: int | None = None,
) -> None:
    """Observe a gateway attempt's latency and log it (failures by gateway and error class)."""
    GATEWAY_ATTEMPT_SECONDS.labels(gateway, str(outcome)).observe(max(seconds, 0.0))
    fields: dict[str, Any] = {
        "event": "gateway_attempt",
        "gateway": gateway,
        "outcome": str(outcome),
        "latency_ms": round(seconds * 1000, 1),
    }
    if error_class:
        fields["error_class"] = error_class
    if payment_id is not None:
        fields["payment_id"] = str(payment_id)
    if attempt is not None:
        fields["attempt"] = attempt
    events_logger.info("gateway attempt at %s: %s", gateway, outcome, extra=fields)


def record_approval(gateway: str, signal: str, outcome: str, *, payment_id: Any) -> None:
    """Count and log one look at a payment waiting for its payer (Kibana's "approvals")."""
    APPROVALS.labels(gateway, signal, outcome).inc()
    fields = {"event": "approval", "gateway": gateway, "signal": signal, "outcome": outcome,
              "payment_id": str(payment_id)}  # fmt: skip
    events_logger.info("approval at %s by %s: %s", gateway, signal, outcome, extra=fields)


def record_pix_check(gateway: str, outcome: str, *, payment_id: Any) -> None:
    """Count and log one look at a waiting PIX charge (Kibana's "PIX checks"): a charge
    found paid means its gateway's callback did not arrive."""
    PIX_CHECKS.labels(gateway, outcome).inc()
    fields = {"event": "pix_check", "gateway": gateway, "outcome": outcome,
              "payment_id": str(payment_id)}  # fmt: skip
    events_logger.info("waiting PIX looked up at %s: %s", gateway, outcome, extra=fields)


def pix_checks_start_at_zero(gateways: Iterable[str]) -> None:
    """A `succeeded` series per PIX gateway before its first look: a series that appears
    at 1 is invisible to increase(), and PayWavePixCallbacksMissed would need one more."""
    for gateway in gateways:
        PIX_CHECKS.labels(gateway, "succeeded")


def record_circuit_change(gateway: str, to_state: str) -> None:
    CIRCUIT_CHANGES.labels(gateway, to_state).inc()


def record_webhook_delivery(endpoint: Any, outcome: str) -> None:
    WEBHOOK_DELIVERIES.labels(str(endpoint), str(outcome)).inc()


def record_operator_alert(kind: str) -> None:
    OPERATOR_ALERTS.labels(kind).inc()


def operator_alerts_start_at_zero(kinds: Iterable[str]) -> None:
    """A series per kind from the start: Prometheus's increase() counts from 0, not from
    the first alert (a counter that appears at 1 would hide it)."""
    for kind in kinds:
        OPERATOR_ALERTS.labels(kind)


# --- Read at scrape time -------------------------------------------------------


class _QueueChannel(Protocol):
    """What every transport's channel has (kombu's stubs type channel() by its bare base)."""

    def queue_declare(self, *, queue: str, passive: bool) -> tuple[str, int, int]: ...

    def close(self) -> None: ...


class QueueDepthCollector(Collector):
    """Ready messages and consumers per queue, asked of the broker, cached a few seconds.

    RabbitMQ counts a queue's consumers (its answer to a passive declare). kombu's
    virtual transports (the filesystem broker of `make run`, Redis, SQS) answer 0
    whoever consumes: there the consumer count is left out rather than reported as 0.
    """

    def __init__(
        self,
        ttl: float = 5.0,
        queues: Iterable[str] = QUEUES,
        connect: Callable[[], Connection] | None = None,
    ) -> None:
        self.ttl = ttl
        self.queues = tuple(queues)
        self.connect = connect
        self._lock = threading.Lock()
        self._cached_at = float("-inf")
        self._cached: tuple[bool, dict[str, tuple[int, int | None]]] = (False, {})

    def _connection(self) -> Connection:
        if self.connect is not None:
            return self.connect()
        return default_app.connection_for_read()

    def _ask_broker(self) -> tuple[bool, dict[str, tuple[int, int | None]]]:
        found: dict[str, tuple[int, int | None]] = {}
        try:
            with self._connection() as conn:
                conn.ensure_connection(
                    max_retries=1, timeout=settings.PAYWAVE_METRICS_BROKER_TIMEOUT
                )
                counts_consumers = not isinstance(conn.transport, virtual.Transport)
                for queue in self.queues:
                    channel = cast(_QueueChannel, conn.channel())
                    try:
                        _, messages, consumers = channel.queue_declare(queue=queue, passive=True)
                        found[queue] = (int(messages), int(consumers) if counts_consumers else None)
                    except Exception:  # not declared yet: no depth to report
                        logger.debug("queue %s not found on the broker", queue)
                    finally:
                        try:
                            channel.close()
                        except Exception:
                            logger.debug("channel close failed", exc_info=True)
        except Exception:
            logger.warning("queue depth not collected: broker unreachable", exc_info=True)
            return False, {}
        return True, found

    def snapshot(self) -> tuple[bool, dict[str, tuple[int, int | None]]]:
        with self._lock:  # one broker round trip per ttl, however many scrapes
            if time.monotonic() - self._cached_at >= self.ttl:
                self._cached = self._ask_broker()
                self._cached_at = time.monotonic()
            return self._cached

    def collect(self) -> Iterator[Metric]:
        up, queues = self.snapshot()
        broker_up = GaugeMetricFamily(
            "paywave_broker_up", "1 if the broker answered the last queue depth query."
        )
        broker_up.add_metric([], 1.0 if up else 0.0)
        depth = GaugeMetricFamily(
            "paywave_queue_messages",
            "Messages ready in the queue (not counting those held by workers).",
            labels=["queue"],
        )
        consumers = GaugeMetricFamily(
            "paywave_queue_consumers",
            "Consumers (worker channels) on the queue; absent where the broker cannot count them.",
            labels=["queue"],
        )
        for name, (messages, count) in sorted(queues.items()):
            depth.add_metric([name], float(messages))
            if count is not None:
                consumers.add_metric([name], float(count))
        yield from (broker_up, depth, consumers)


class DatabaseRead(Generic[T]):
    """A value read from the database at scrape time, at most once per `ttl` seconds per
    process (None: PAYWAVE_METRICS_DB_READ_SECONDS), however many scrapes.

    A failed read is None until the next one: a collector then yields no series rather
    than a claim ("0 parked"), and the scrape still succeeds.
    """

    def __init__(self, read: Callable[[], T], what: str, ttl: float | None = None) -> None:
        self.read = read
        self.what = what
        self.ttl = ttl
        self._lock = threading.Lock()
        self._read_at = float("-inf")
        self._value: T | None = None

    def get(self) -> T | None:
        with self._lock:
            ttl = settings.PAYWAVE_METRICS_DB_READ_SECONDS if self.ttl is None else self.ttl
            if time.monotonic() - self._read_at >= ttl:
                try:
                    self._value = self.read()
                except Exception:
                    logger.warning("%s not collected", self.what, exc_info=True)
                    self._value = None
                self._read_at = time.monotonic()
            return self._value


_scrape_time = CollectorRegistry(auto_describe=False)
_scrape_time_collectors: list[Collector] = []
queue_depth_collector = QueueDepthCollector()


def scrape_time_register(collector: Collector) -> None:
    """Read `collector` at every scrape too: an app registers its own from AppConfig.ready."""
    if collector not in _scrape_time_collectors:  # ready() may run again (tests, reloads)
        _scrape_time_collectors.append(collector)
        _scrape_time.register(collector)


scrape_time_register(queue_depth_collector)


# --- The view ------------------------------------------------------------------


def _networks() -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return _parsed(tuple(settings.PAYWAVE_METRICS_ALLOW))


@functools.lru_cache(maxsize=8)
def _parsed(cidrs: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    # Parsed once per value of the setting (settings.py has refused a malformed one).
    return tuple(ipaddress.ip_network(cidr.strip(), strict=False) for cidr in cidrs)


def _allowed(
    address: str, networks: Iterable[ipaddress.IPv4Network | ipaddress.IPv6Network]
) -> bool:
    try:
        ip = ipaddress.ip_address(address.strip().strip("[]"))
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return any(ip in network for network in networks if network.version == ip.version)


def metrics_allowed(request: HttpRequest) -> bool:
    """The peer, and every address a proxy says it forwarded for, are in PAYWAVE_METRICS_ALLOW.

    Behind an ingress the peer is the ingress (a private address): the forwarded
    addresses are what keeps the public out.
    """
    return peer_allowed(request.META)


def peer_allowed(environ: Mapping[str, Any]) -> bool:
    """metrics_allowed for a WSGI environ (REMOTE_ADDR, HTTP_X_FORWARDED_FOR)."""
    networks = _networks()
    forwarded = str(environ.get("HTTP_X_FORWARDED_FOR", ""))
    addresses = [str(environ.get("REMOTE_ADDR", ""))] + [
        a for a in forwarded.split(",") if a.strip()
    ]
    return all(_allowed(address, networks) for address in addresses)


def registry_for_scrape() -> CollectorRegistry:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return registry
    return REGISTRY


def metrics_view(request: HttpRequest) -> HttpResponse:
    """Prometheus text format; no JWT, only from PAYWAVE_METRICS_ALLOW addresses."""
    if not metrics_allowed(request):
        raise PermissionDenied("metrics are served to the monitoring network only")
    body = generate_latest(registry_for_scrape()) + generate_latest(_scrape_time)
    return HttpResponse(body, content_type=CONTENT_TYPE_LATEST)


# --- A Celery worker's own metrics server --------------------------------------------


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass  # one line per scrape is noise


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _ThreadingWSGIServerV6(_ThreadingWSGIServer):
    address_family = socket.AF_INET6


def worker_metrics_app(registry: CollectorRegistry | None = None) -> Callable[..., Any]:
    """This process's registry (its multiprocess directory's, if any) as a WSGI app,
    answered to PAYWAVE_METRICS_ALLOW only."""
    metrics_app = make_wsgi_app(registry or registry_for_scrape())

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if not peer_allowed(environ):
            body = b"metrics are served to the monitoring network only\n"
            start_response(
                "403 Forbidden",
                [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))],
            )
            return [body]
        return metrics_app(environ, start_response)

    return app


def worker_metrics_serve(addr: str, port: int) -> WSGIServer:
    """Serve worker_metrics_app on addr:port from a daemon thread; the server."""
    server_class = _ThreadingWSGIServerV6 if ":" in addr else _ThreadingWSGIServer
    server = make_server(addr, port, worker_metrics_app(), server_class, _QuietHandler)
    threading.Thread(target=server.serve_forever, name="worker-metrics", daemon=True).start()
    return server
