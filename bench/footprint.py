"""`python -m bench footprint`: what one payment costs PostgreSQL, Redis and RabbitMQ.

python -m bench footprint                        # results to bench/results/footprint.json
python -m bench footprint --database paywave_fp --vhost paywave_fp --redis-db 6

One card payment and one PIX payment, end to end through the code the platform runs,
in this process, one stage at a time: the API's views through Django's test client
(`POST /api/v1/payments`, the gateway's callback at `/webhooks/<gateway>`), and each
job the stage published taken from RabbitMQ and run as a worker runs it (the charge,
the callback's processing, each webhook delivery to an endpoint subscribed to every
event, on a receiver in this process). The gateways are the simulators (in this
process too); the PIX payer pays at the simulator, which hands back the callback it
signed. Each stage is measured alone:

- `statements`: what the Django connection sent to PostgreSQL (BEGIN and COMMIT
  included; Django's connection health check, a `SELECT 1` at the first query of a
  request or task, counted as `SELECT (health check)`), by kind;
- `wal_bytes`: pg_current_wal_lsn() after minus before, the whole cluster's WAL in that
  window; `wal_bytes_own` (with pg_walinspect): the records of this database's
  transactions only (others writing beside the run add to `wal_bytes`, never to it),
  and `wal_fpi_bytes_own`, the full-page images among them (first change of a page
  after a checkpoint: they vary with where the checkpoint fell); `commits`, the
  transactions of this database that committed (each waits for a WAL flush: an fsync);
- `redis_commands` and `redis_round_trips` (a pipeline is one trip), by command, as
  redis-py sends them;
- `amqp_published`: messages kombu published, by routing key.

A warm-up pair goes first, unmeasured (the wallet app's token read, the endpoint
subscriptions cached, connections open), as on a platform that has been running.
Counts, not times: CPU per payment comes from `bench load` (bench/cpu.py).
"""

import argparse
import json
import random
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bench.payloads import Mix, payment_body
from bench.receiver import verify

RESULTS = Path(__file__).resolve().parent / "results"
DEFAULT_RESOURCES = {"database": "paywave_footprint", "vhost": "paywave_footprint", "redis_db": 5}
APP = "bench-app-0"
EVERY_EVENT = ["*"]

# The process kind that runs each stage on the platform (README, the Procfile).
PROCESS_OF = {
    "accept": "api",
    "callback": "api",
    "charge": "payments worker",
    "callback_process": "worker",
    "delivery": "worker",
}
STAGE_OF_TASK = {
    "payments.process_payment": "charge",
    "callbacks.process": "callback_process",
    "notifications.deliver": "delivery",
}
WAL_COUNTS = ("wal_bytes", "wal_bytes_own", "wal_fpi_bytes_own", "commits")
COUNTS = (
    "statements",
    *WAL_COUNTS,
    "redis_commands",
    "redis_round_trips",
    "amqp_published",
)


def _body(method: str) -> dict[str, Any]:
    """A payment as the load generator's wallet apps send it."""
    mix = Mix(pix_share=1.0 if method == "pix" else 0.0, exact=True)
    body, _ = payment_body(0, mix, random.Random(0))  # noqa: S311 (not a secret)
    return body


# --- the counters ------------------------------------------------------------------


def statement_kind(sql: str) -> str:
    words = sql.lstrip(" (").split(None, 1)
    return words[0].upper() if words else "?"


@dataclass
class Tally:
    """What one stage sent: statements, Redis commands and round trips, AMQP messages."""

    statements: Counter[str] = field(default_factory=Counter)
    redis: Counter[str] = field(default_factory=Counter)
    redis_round_trips: int = 0
    amqp: Counter[str] = field(default_factory=Counter)


class _Hooks:
    """Client-side counters on redis-py's sends and kombu's publish, installed for a run.

    The classes are patched (every client of the process goes through them); a
    `Tally` collects only while a stage runs.
    """

    def __init__(self) -> None:
        self.tally: Tally | None = None
        self._undo: list[Callable[[], None]] = []

    def install(self) -> None:
        from kombu.messaging import Producer
        from redis.connection import AbstractConnection

        hooks = self

        def wrap(owner: Any, name: str, count: Callable[[Tally, tuple[Any, ...], Any], None]):
            original = getattr(owner, name)

            def counted(*args: Any, **kwargs: Any) -> Any:
                if hooks.tally is not None:
                    count(hooks.tally, args, kwargs)
                return original(*args, **kwargs)

            setattr(owner, name, counted)
            self._undo.append(lambda: setattr(owner, name, original))

        def one_command(tally: Tally, args: tuple[Any, ...], kwargs: Any) -> None:
            tally.redis[_command_name(args[1:])] += 1

        def commands(tally: Tally, args: tuple[Any, ...], kwargs: Any) -> None:
            for command in args[1]:
                tally.redis[_command_name(command)] += 1

        def round_trip(tally: Tally, args: tuple[Any, ...], kwargs: Any) -> None:
            tally.redis_round_trips += 1

        def publish(tally: Tally, args: tuple[Any, ...], kwargs: Any) -> None:
            tally.amqp[str(kwargs.get("routing_key") or "")] += 1

        wrap(AbstractConnection, "send_command", one_command)
        wrap(AbstractConnection, "pack_commands", commands)
        wrap(AbstractConnection, "send_packed_command", round_trip)
        wrap(Producer, "publish", publish)

    def uninstall(self) -> None:
        while self._undo:
            self._undo.pop()()


def _command_name(command: Any) -> str:
    name = command[0] if command else "?"
    return (name.decode() if isinstance(name, bytes) else str(name)).split(" ")[0].upper()


class Wal:
    """The WAL a stage wrote, read on a connection of its own (reading writes none)."""

    # Records of this database's transactions: any record naming one of its relations,
    # and every record of a transaction that did (its COMMIT).
    OWN = """
        WITH r AS (SELECT * FROM pg_get_wal_records_info(%s::pg_lsn, %s::pg_lsn)),
        ours AS (SELECT * FROM r WHERE block_ref LIKE %s),
        xids AS (SELECT DISTINCT xid FROM ours WHERE xid <> '0'::xid)
        SELECT coalesce(sum(record_length), 0), coalesce(sum(fpi_length), 0),
               count(*) FILTER (WHERE resource_manager = 'Transaction'
                                AND record_type LIKE 'COMMIT%%')
        FROM r WHERE block_ref LIKE %s OR xid IN (SELECT xid FROM xids)
    """

    def __init__(self) -> None:
        from django.db import connection, connections

        self.enabled = connection.vendor == "postgresql"
        self.inspect = False
        if not self.enabled:
            return
        self.db = connections.create_connection("default")
        self.db.ensure_connection()
        self.db.set_autocommit(True)
        with self.db.cursor() as cursor:
            cursor.execute("SELECT oid FROM pg_database WHERE datname = current_database()")
            self.pattern = f"%/{cursor.fetchone()[0]}/%"
            try:
                cursor.execute("CREATE EXTENSION IF NOT EXISTS pg_walinspect")
                self.inspect = True
            except Exception:
                self.inspect = False  # not installed, or not a superuser: the diff only

    def lsn(self) -> str | None:
        if not self.enabled:
            return None
        with self.db.cursor() as cursor:
            cursor.execute("SELECT pg_current_wal_lsn()")
            return str(cursor.fetchone()[0])

    def between(self, before: str | None, after: str | None) -> dict[str, int | None]:
        if before is None or after is None:
            return dict.fromkeys(WAL_COUNTS)
        with self.db.cursor() as cursor:
            cursor.execute("SELECT pg_wal_lsn_diff(%s::pg_lsn, %s::pg_lsn)", [after, before])
            diff = int(cursor.fetchone()[0])
            own = fpi = commits = None
            if self.inspect and diff == 0:
                own = fpi = commits = 0
            elif self.inspect:
                self._flushed(cursor, after)  # pg_walinspect reads flushed WAL only
                cursor.execute(self.OWN, [before, after, self.pattern, self.pattern])
                own, fpi, commits = (int(v) for v in cursor.fetchone())
        return {
            "wal_bytes": diff,
            "wal_bytes_own": own,
            "wal_fpi_bytes_own": fpi,
            "commits": commits,
        }

    @staticmethod
    def _flushed(cursor: Any, lsn: str, timeout: float = 5.0) -> None:
        """Wait until WAL up to `lsn` is on disk: a commit flushes its own, what a stage
        wrote without one (a page pruned by a read) waits for the WAL writer (200 ms)."""
        deadline = time.monotonic() + timeout
        while True:
            cursor.execute("SELECT pg_current_wal_flush_lsn() >= %s::pg_lsn", [lsn])
            if cursor.fetchone()[0]:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"WAL not flushed up to {lsn} after {timeout} s")
            time.sleep(0.01)

    def close(self) -> None:
        if self.enabled:
            self.db.close()


class Meter:
    """`with meter.stage(name, payment)`: counts what the block sends, into `stages`."""

    def __init__(self) -> None:
        self.hooks = _Hooks()
        self.wal = Wal()
        self.stages: list[dict[str, Any]] = []
        self.recording = True

    def __enter__(self) -> "Meter":
        self.hooks.install()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.hooks.uninstall()
        self.wal.close()

    @contextmanager
    def stage(self, name: str, payment: str, **about: Any) -> Iterator[None]:
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        if not self.recording:
            with _around_request():
                yield
            return
        tally = Tally()
        checks = _count_health_checks(connection, tally)
        before = self.wal.lsn()
        self.hooks.tally = tally
        try:
            with CaptureQueriesContext(connection) as queries, _around_request(), checks:
                yield
        finally:
            self.hooks.tally = None
        after = self.wal.lsn()
        for query in queries.captured_queries:
            tally.statements[statement_kind(query["sql"])] += 1
        self.stages.append(
            {
                "payment": payment,
                "stage": name,
                "process": PROCESS_OF[name],
                **about,
                "statements": sum(tally.statements.values()),
                "statements_by_kind": dict(sorted(tally.statements.items())),
                **self.wal.between(before, after),
                "redis_commands": sum(tally.redis.values()),
                "redis_round_trips": tally.redis_round_trips,
                "redis_by_command": dict(sorted(tally.redis.items())),
                "amqp_published": sum(tally.amqp.values()),
                "amqp_by_routing_key": dict(sorted(tally.amqp.items())),
            }
        )


@contextmanager
def _around_request() -> Iterator[None]:
    """What a server does around each request and a worker around each task
    (Django's request_started/finished; paywave.observability.celery_signals, which skips
    it for an eager task): connections past their age or broken are closed, the rest
    health-checked at their next query."""
    from django.db import close_old_connections

    close_old_connections()
    try:
        yield
    finally:
        close_old_connections()


@contextmanager
def _count_health_checks(connection: Any, tally: Tally) -> Iterator[None]:
    """Django's health check runs `SELECT 1` on the raw connection, past the query log.

    Counted where Django's backend sends it: paywave.postgresql asks it only when the
    socket alone cannot answer (something waiting there, a transaction left open)."""
    from django.db.backends.postgresql.base import DatabaseWrapper

    original = DatabaseWrapper.is_usable

    def is_usable(self: Any) -> bool:
        if self is connection:
            tally.statements["SELECT (health check)"] += 1
        return bool(original(self))

    DatabaseWrapper.is_usable = is_usable  # type: ignore[method-assign]
    try:
        yield
    finally:
        DatabaseWrapper.is_usable = original  # type: ignore[method-assign]


# --- the wallet app's endpoint -----------------------------------------------------


class Receiver:
    """An endpoint on 127.0.0.1 that checks each delivery's signature and answers 200."""

    def __init__(self) -> None:
        self.secret = ""
        self.events: list[dict[str, Any]] = []
        self.forged = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if verify(receiver.secret, self.headers.get("PayWave-Signature", ""), body):
                    receiver.events.append(json.loads(body))
                    self.send_response(200)
                else:
                    receiver.forged += 1
                    self.send_response(400)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks/footprint"

    def __enter__(self) -> "Receiver":
        self.thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


# --- the jobs, from RabbitMQ ---------------------------------------------------------


class Jobs:
    """The platform's queues, read as a worker reads them: a message at a time, each
    run as the task it names and acknowledged after (acks late)."""

    def __init__(self) -> None:
        from django.conf import settings
        from kombu import Connection

        from config.celery_app import app

        self.app = app
        self.connection = Connection(settings.CELERY_BROKER_URL)
        self.channel = self.connection.channel()
        self.queues = [queue(self.channel) for queue in app.amqp.queues.values()]
        for queue in self.queues:
            queue.declare()

    def purge(self) -> None:
        for queue in self.queues:
            queue.purge()

    def next(self) -> Any | None:
        for queue in self.queues:
            message = queue.get(no_ack=False, accept=["json"])
            if message is not None:
                return message
        return None

    def run(self, message: Any) -> Any:
        """The task's return value (a delivery's outcome: delivered, stale, ...)."""
        name = message.headers["task"]
        args, kwargs, _ = message.decode()
        result = self.app.tasks[name].apply(args=args, kwargs=kwargs, task_id=message.headers["id"])
        if result.failed():
            raise RuntimeError(f"{name}{tuple(args)} failed: {result.result!r}")
        message.ack()
        return result.result

    def close(self) -> None:
        self.connection.release()


# --- the run -------------------------------------------------------------------------


@dataclass
class Platform:
    """What the run drives: an authenticated API client, the simulators, the receiver."""

    api: Any
    simulator_url: str
    receiver: Receiver


def endpoint_register(platform: Platform, events: list[str]) -> None:
    answer = platform.api.post(
        "/api/v1/webhook-endpoints",
        {"url": platform.receiver.url, "events": events},
        format="json",
        HTTP_IDEMPOTENCY_KEY=f"footprint-endpoint-{uuid.uuid4()}",
    )
    if answer.status_code != 201:
        raise RuntimeError(f"webhook endpoint: {answer.status_code} {answer.content!r}")
    platform.receiver.secret = answer.json()["secret"]


def _drain(meter: Meter, jobs: Jobs, payment: str) -> None:
    """Run every job the last stage published (and the ones they publish), each a stage,
    and every delivery a webhook worker's poller would claim (notifications/poller.py)."""
    for _ in range(50):
        message = jobs.next()
        if message is None:
            if _poll(meter, payment):
                continue
            return
        name = message.headers["task"]
        stage = STAGE_OF_TASK.get(name)
        if stage is None:
            raise RuntimeError(f"an unexpected job: {name}")
        about: dict[str, Any] = {"task": name}
        if stage == "delivery":
            about["event"] = _delivery_event(message.decode()[0][0])
        with meter.stage(stage, payment, **about):
            outcome = jobs.run(message)
        if outcome is not None and meter.recording:
            meter.stages[-1]["outcome"] = str(outcome)
    raise RuntimeError("jobs still published after 50")


def _poll(meter: Meter, payment: str) -> bool:
    """As a poller does (with PAYWAVE_WEBHOOK_POLLER): claim the next due delivery without
    a job and try it, one stage; False when none is due."""
    from django.utils import timezone

    from notifications.dispatch import poller_enabled
    from notifications.models import Delivery
    from notifications.poller import deliveries_claim_due, delivery_try

    if not poller_enabled():
        return False
    now = timezone.now()
    due = (
        Delivery.objects.filter(status="pending", job_token=None, next_attempt_at__lte=now)
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)
        .first()
    )
    if due is None:
        return False
    with meter.stage("delivery", payment, task="delivery poller", event=_delivery_event(due)):
        [(delivery_id, token)] = deliveries_claim_due(1)
        outcome = delivery_try(delivery_id, token)
    if delivery_id != due:
        raise RuntimeError(f"claimed delivery {delivery_id}, not {due}: another poller runs")
    if meter.recording:
        meter.stages[-1]["outcome"] = outcome
    return True


def _delivery_event(delivery_id: int) -> str:
    from notifications.models import Delivery

    return Delivery.objects.values_list("event__type", flat=True).get(pk=delivery_id)


def _accept(meter: Meter, platform: Platform, method: str, body: dict[str, Any]) -> str:
    key = f"footprint-{uuid.uuid4()}"
    with meter.stage("accept", method):
        answer = platform.api.post(
            "/api/v1/payments", body, format="json", HTTP_IDEMPOTENCY_KEY=key
        )
    if answer.status_code != 202:
        raise RuntimeError(f"POST /api/v1/payments: {answer.status_code} {answer.content!r}")
    return answer.json()["id"]


def _pix_paid(meter: Meter, platform: Platform, payment_id: str) -> None:
    """The payer pays at the simulator; its signed callback, handed back instead of sent,
    is posted to PayWave as the gateway would post it (that post is the stage)."""
    import httpx
    from django.test import Client

    from payments.models import Payment

    payment = Payment.objects.get(pk=payment_id)
    gateway = payment.gateway
    with httpx.Client(base_url=platform.simulator_url + "/_sim", timeout=10) as sim:
        capture = {"url": f"capture://paywave/webhooks/{gateway}"}
        sim.put(f"/callbacks/{gateway}", json=capture).raise_for_status()
        try:
            paid = sim.post(f"/pix/{payment.gateway_reference}/pay", params={"gateway": gateway})
            paid.raise_for_status()
        finally:
            sim.put(f"/callbacks/{gateway}", json={"url": ""})
    delivery = paid.json()["callback"]
    query = urlsplit(delivery["url"]).query
    headers = {k: v for k, v in delivery["headers"].items() if k.lower() != "content-type"}
    with meter.stage("callback", "pix", gateway=gateway):
        answer = Client().generic(
            "POST",
            f"/webhooks/{gateway}" + (f"?{query}" if query else ""),
            delivery["body"].encode(),
            content_type=delivery["headers"].get("Content-Type", "application/json"),
            headers=headers,
        )
    if answer.status_code != 200:
        raise RuntimeError(f"callback: {answer.status_code} {answer.content!r}")


def payment_run(meter: Meter, platform: Platform, jobs: Jobs, method: str) -> str:
    """One payment end to end, each step a stage; its final status."""
    from payments.models import Payment

    body = _body(method)
    payment_id = _accept(meter, platform, method, body)
    _drain(meter, jobs, method)
    if method == "pix":
        status = Payment.objects.values_list("status", flat=True).get(pk=payment_id)
        if status != "awaiting_payment":
            raise RuntimeError(f"the PIX payment is {status}, not awaiting_payment")
        _pix_paid(meter, platform, payment_id)
        _drain(meter, jobs, method)
    return Payment.objects.values_list("status", flat=True).get(pk=payment_id)


def totals(stages: list[dict[str, Any]]) -> dict[str, Any]:
    """Per payment: each count summed over its stages, and per process kind."""

    def summed(rows: list[dict[str, Any]]) -> dict[str, Any]:
        figures: dict[str, Any] = {"stages": len(rows)}
        for count in COUNTS:
            values = [row[count] for row in rows]
            figures[count] = None if None in values else sum(values)
        kinds: Counter[str] = Counter()
        for row in rows:
            kinds.update(row["statements_by_kind"])
        figures["statements_by_kind"] = dict(sorted(kinds.items()))
        return figures

    result: dict[str, Any] = {}
    for payment in dict.fromkeys(row["payment"] for row in stages):
        rows = [row for row in stages if row["payment"] == payment]
        result[payment] = {
            **summed(rows),
            "deliveries": sum(1 for row in rows if row.get("outcome") == "delivered"),
            "delivery_jobs": sum(1 for row in rows if row["stage"] == "delivery"),
            "by_process": {
                process: summed([row for row in rows if row["process"] == process])
                for process in dict.fromkeys(row["process"] for row in rows)
            },
        }
    return result


def footprint(platform: Platform, *, events: list[str] = EVERY_EVENT) -> dict[str, Any]:
    """A warm-up card and PIX payment, then the measured card and PIX payments."""
    jobs = Jobs()
    try:
        jobs.purge()  # nothing of anyone else's runs as a stage
        with Meter() as meter:
            endpoint_register(platform, events)
            meter.recording = False
            for method in ("card", "pix"):
                payment_run(meter, platform, jobs, method)
            meter.recording = True
            delivered = len(platform.receiver.events)
            statuses = {
                method: payment_run(meter, platform, jobs, method) for method in ("card", "pix")
            }
            received = [event["type"] for event in platform.receiver.events[delivered:]]
            wal_inspected = meter.wal.inspect
    finally:
        jobs.close()
    if platform.receiver.forged:
        raise RuntimeError(f"{platform.receiver.forged} deliveries failed their signature check")
    return {
        "statuses": statuses,
        "subscribed_events": events,
        "webhooks_received": received,
        "wal_inspected": wal_inspected,
        "per_payment": totals(meter.stages),
        "stages": meter.stages,
    }


# --- the command ---------------------------------------------------------------------


def parse(argv: list[str] | None) -> argparse.Namespace:
    from bench.supervisor import in_process_parser

    parser = in_process_parser(
        "python -m bench footprint", __doc__, RESULTS / "footprint.json", DEFAULT_RESOURCES
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    from bench.supervisor import APP_PASSWORD, in_process_platform

    args = parse(argv)
    stamp = datetime.now(UTC)
    # Django's test client's host.
    bench = in_process_platform(args, "footprint", DJANGO_ALLOWED_HOSTS="testserver")
    from rest_framework.test import APIClient

    from gateways.simulators import SimulatorServer

    with SimulatorServer("127.0.0.1", bench.sim_port) as simulator, Receiver() as receiver:
        api = APIClient()
        login = api.post(
            "/api/v1/auth/token", {"username": APP, "password": APP_PASSWORD}, format="json"
        )
        if login.status_code != 200:
            raise RuntimeError(f"login: {login.status_code} {login.content!r}")
        api.credentials(HTTP_AUTHORIZATION=f"Bearer {login.json()['access']}")
        started = time.monotonic()
        result = footprint(Platform(api, simulator.base_url, receiver))
    result = {
        "measured_at": stamp.isoformat(timespec="seconds"),
        "database": "postgresql",
        "elapsed_s": round(time.monotonic() - started, 1),
        **result,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(summary(result), indent=2))
    print(f"bench: wrote {args.out}")
    return 0


def summary(result: dict[str, Any]) -> dict[str, Any]:
    """Per payment and per stage, the headline counts (what the command prints)."""
    lines: dict[str, Any] = {}
    for payment, figures in result["per_payment"].items():
        lines[payment] = {count: figures[count] for count in COUNTS}
    lines["stages"] = [
        f"{row['payment']:4} {row['stage']:16} {row.get('event', ''):24} "
        + " ".join(f"{count}={row[count]}" for count in COUNTS)
        for row in result["stages"]
    ]
    return lines


if __name__ == "__main__":
    sys.exit(main())
