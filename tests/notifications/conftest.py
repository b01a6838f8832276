"""Fixtures for webhooks and alerts: a local HTTP receiver, and jobs recorded instead of queued.

Most tests run the notification jobs in process (`jobs.drive()`): each job is what a
worker would do, and the countdown it was published with is recorded instead of
waited for (the delivery's `next_attempt_at` is moved to now before it runs).
test_worker.py runs a real Celery worker over RabbitMQ instead.
"""

import importlib.util
import json
import socket
import ssl
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import trustme
from django.db import transaction
from django.utils import timezone

from config.celery_app import app as celery_app
from notifications import sending
from notifications.delivery import delivery_attempt
from notifications.models import Delivery, Event
from notifications.services import event_record
from notifications.tasks import send_alert

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _local_receivers_allowed(settings: Any) -> None:
    """The receivers here are on 127.0.0.1, which only the sandbox policy lets webhooks reach."""
    settings.PAYWAVE_WEBHOOK_ALLOW_PRIVATE = True


# --- A local receiver ---------------------------------------------------------------


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """What a wallet app's endpoint got; answers the scripted statuses, then `default`."""

    base_url: str
    requests: list[Received] = field(default_factory=list)
    statuses: deque[int] = field(default_factory=deque)
    default: int = 200
    delay: float = 0.0  # seconds before answering
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str = "/hooks") -> str:
        return self.base_url + path

    def script(self, *statuses: int) -> None:
        self.statuses.extend(statuses)

    def answer(self, received: Received) -> int:
        with self.lock:
            self.requests.append(received)
            return self.statuses.popleft() if self.statuses else self.default

    def event_ids(self) -> list[str]:
        return [request.json()["id"] for request in self.requests]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with _serving(None) as (server, port):
        state = Receiver(base_url=f"http://127.0.0.1:{port}")
        server.receiver = state  # type: ignore[attr-defined]
        yield state


@contextmanager
def _serving(ssl_context: ssl.SSLContext | None) -> Iterator[tuple["_QuietServer", int]]:
    server = _QuietServer(("127.0.0.1", 0), _ReceiverHandler)
    if ssl_context is not None:
        server.socket = ssl_context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server, server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


# --- HTTPS: a certificate authority the delivery client trusts, and a local resolver -----


@pytest.fixture
def trusted_ca(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[trustme.CA]:
    """A CA the webhook client trusts instead of the public ones (through SSL_CERT_FILE)."""
    ca = trustme.CA()
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
    monkeypatch.setattr(sending, "_shared", None)  # a client built under that trust
    yield ca
    if sending._shared is not None:
        sending._shared.close()


@dataclass
class TlsReceiver(Receiver):
    server_names: list[str | None] = field(default_factory=list)  # SNI of each handshake


@contextmanager
def tls_receiver(ca: trustme.CA, name: str, certificate_for: str | None = None):
    """A receiver on 127.0.0.1 answering https://<name>:<port> with a certificate of `ca`.

    The certificate is for `certificate_for` (default: `name`). Names are not resolved
    here: point them at 127.0.0.1 with the `resolver` fixture.
    """
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(certificate_for or name).configure_cert(context)
    with _serving(context) as (server, port):
        state = TlsReceiver(base_url=f"https://{name}:{port}")

        def note_server_name(sock: Any, server_name: str | None, context: Any) -> None:
            state.server_names.append(server_name)

        context.sni_callback = note_server_name
        server.receiver = state  # type: ignore[attr-defined]
        yield state


class Resolver:
    """Stands in for DNS (outside the machine): scripted answers for some names.

    `answer(name, first, then, ...)`: each lookup of `name` takes the next list of
    IPv4 addresses, the last one for good. Other names resolve as usual.
    """

    def __init__(self, real: Any) -> None:
        self._real = real
        self._scripts: dict[str, deque[list[str]]] = {}
        self.lookups: list[str] = []

    def answer(self, name: str, *answers: list[str]) -> None:
        self._scripts[name] = deque(answers)

    def getaddrinfo(self, host: Any, port: Any, *args: Any, **kwargs: Any) -> list[Any]:
        name = host.decode() if isinstance(host, bytes) else host
        script = self._scripts.get(name)
        if script is None:
            return self._real(host, port, *args, **kwargs)
        self.lookups.append(name)
        addresses = script.popleft() if len(script) > 1 else script[0]
        number = int(port) if port is not None else 0
        tcp = socket.IPPROTO_TCP
        return [(socket.AF_INET, socket.SOCK_STREAM, tcp, "", (a, number)) for a in addresses]


@pytest.fixture
def resolver(monkeypatch: pytest.MonkeyPatch) -> Resolver:
    stub = Resolver(socket.getaddrinfo)
    monkeypatch.setattr(socket, "getaddrinfo", stub.getaddrinfo)
    return stub


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that gave up (a timeout test) is not the receiver's problem


class _ReceiverHandler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        received = Received(self.path, dict(self.headers.items()), body)
        status = self.server.receiver.answer(received)  # type: ignore[attr-defined]
        time.sleep(self.server.receiver.delay)  # type: ignore[attr-defined]
        answer = b'{"received": true}' if 200 <= status < 300 else b"receiver says no"
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, format: str, *args: Any) -> None:
        pass


# --- Jobs recorded instead of published -------------------------------------------------


@dataclass(frozen=True)
class Job:
    name: str
    args: tuple[Any, ...]
    countdown: float | None


@dataclass(frozen=True)
class Ran:
    job: Job
    outcome: Any


class Jobs:
    """The jobs published to the broker, run in process in publication order."""

    def __init__(self) -> None:
        self.queue: deque[Job] = deque()
        self.ran: list[Ran] = []

    def send_task(
        self,
        name: str,
        args: Any = (),
        kwargs: Any = None,
        queue: str | None = None,
        **options: Any,
    ):
        assert queue == "notifications", f"{name} published to {queue}"
        self.queue.append(Job(name, tuple(args or ()), options.get("countdown")))

    def names(self) -> list[str]:
        return [job.name for job in self.queue]

    def run_next(self) -> Ran:
        job = self.queue.popleft()
        outcome: Any
        if job.name == "notifications.deliver":
            if job.countdown:  # the wait is recorded, not waited for
                Delivery.objects.filter(pk=job.args[0]).update(next_attempt_at=timezone.now())
            outcome = delivery_attempt(*job.args)
        elif job.name == "notifications.send_alert":
            outcome = send_alert(*job.args)
        else:
            raise AssertionError(f"unexpected job {job}")
        self.ran.append(Ran(job, outcome))
        return self.ran[-1]

    def drive(self, max_jobs: int = 50) -> list[Ran]:
        """Run jobs (and the jobs they publish) until none is left."""
        start = len(self.ran)
        for _ in range(max_jobs):
            if not self.queue:
                return self.ran[start:]
            self.run_next()
        raise AssertionError(f"still jobs after {max_jobs}: {self.names()}")

    def deliveries(self) -> list[tuple[float | None, Any]]:
        """(countdown, outcome) of every delivery job run so far."""
        return [
            (ran.job.countdown, ran.outcome)
            for ran in self.ran
            if ran.job.name == "notifications.deliver"
        ]


@pytest.fixture
def jobs(monkeypatch: pytest.MonkeyPatch) -> Jobs:
    recorder = Jobs()
    monkeypatch.setattr(celery_app, "send_task", recorder.send_task)
    return recorder


class Broker:
    """Switches publishing between the recorder and a broker that refuses everything."""

    def __init__(self, jobs: Jobs, monkeypatch: pytest.MonkeyPatch) -> None:
        self.jobs = jobs
        self.monkeypatch = monkeypatch

    def down(self) -> None:
        from kombu.exceptions import OperationalError

        def refuse(*args: Any, **kwargs: Any) -> None:
            raise OperationalError("[Errno 111] Connection refused")

        self.monkeypatch.setattr(celery_app, "send_task", refuse)

    def up(self) -> None:
        self.monkeypatch.setattr(celery_app, "send_task", self.jobs.send_task)


@pytest.fixture
def broker(jobs: Jobs, monkeypatch: pytest.MonkeyPatch) -> Broker:
    return Broker(jobs, monkeypatch)


# --- Events and the standalone example ----------------------------------------------------


def record_event(
    client: Any, type: str = "payment.succeeded", subject_id: Any = None, **data: Any
) -> Event:
    """An event as a transition records it: in a transaction, its fan-out published on commit."""
    import uuid

    subject_id = subject_id or uuid.uuid4()
    with transaction.atomic():
        return event_record(
            type=type,
            client_id=client.pk,
            subject_id=subject_id,
            data={"id": str(subject_id), "status": type.split(".")[1], **data},
        )


@pytest.fixture(scope="session")
def example() -> ModuleType:
    """examples/verify_webhook.py, loaded from its file as a wallet app would run it."""
    path = REPO_ROOT / "examples" / "verify_webhook.py"
    spec = importlib.util.spec_from_file_location("verify_webhook_example", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
