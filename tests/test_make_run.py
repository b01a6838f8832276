"""`make run` for real, on the embedded defaults (SQLite, filesystem broker, file cache).

The run gets free ports and a temporary PAYWAVE_VAR_DIR, so it leaves the developer's
./var and a running `make run` alone; it does share the repository's .venv and .env,
which `make run` creates or tops up as it would for anyone.

It also scrapes what Prometheus would: the api's /metrics (its two gunicorn workers
added up) and each Celery worker's own metrics port, where the charged payment counts;
and reads every line the processes wrote as a log shipper would: one JSON object each.

honcho starts each Procfile process in a session of its own, so the process group of
`make` does not hold gunicorn, the Celery worker, beat or Flower. The test tells them
by a marker in their environment (Linux) and by the process groups of the descendants
of `make` it sees while the run is up, and checks that none of them outlives Ctrl-C.
"""

import contextlib
import http.server
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
import uuid
from pathlib import Path
from typing import IO

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.helpers import pix_body

pytestmark = pytest.mark.slow

REPO_ROOT = Path(__file__).resolve().parent.parent
STARTUP_TIMEOUT = 120.0
SHUTDOWN_TIMEOUT = 30.0
KILL_TIMEOUT = 10.0
MARKER = "PAYWAVE_MAKE_RUN_TEST"
# Variables that would take the run off the embedded defaults or out of its own ports
# and var dir; honcho lets the .env file override the environment for the Procfile.
ISOLATING = (
    "DATABASE_URL",
    "CELERY_BROKER_URL",
    "REDIS_URL",
    "DJANGO_SETTINGS_MODULE",
    "PAYWAVE_VAR_DIR",
    "PAYWAVE_API_PORT",
    "FLOWER_PORT",
    "PAYWAVE_SIMULATOR_PORT",
    "PAYWAVE_SIMULATOR_URL",
    "PAYWAVE_WORKER_METRICS_PORT",
)
REMOVED = (
    "DATABASE_URL",
    "CELERY_BROKER_URL",
    "REDIS_URL",
    "DJANGO_SETTINGS_MODULE",
    "PAYWAVE_SIMULATOR_URL",
)
# An outer `make test` must not pass its flags (-n, -j, jobserver) to `make run`.
MAKE_VARIABLES = ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES")


def read_dotenv(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    values = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            name, value = line.split("=", 1)
            values[name.removeprefix("export ").strip()] = value.strip().strip("'\"")
    return values


def free_ports(count: int) -> list[int]:
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def free_port_pair() -> int:
    """A free port whose next port is free too (the Procfile's two worker metrics ports)."""
    for _ in range(50):
        first = free_ports(1)[0]
        with contextlib.ExitStack() as stack:
            try:
                for port in (first, first + 1):
                    sock = stack.enter_context(socket.socket())
                    sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return first
    raise AssertionError("no two consecutive free ports")


def process_table() -> list[tuple[int, int, int, str, str]]:
    """(pid, ppid, pgid, state, command) of every process, from ps (Linux and macOS)."""
    out = subprocess.run(
        ["ps", "-A", "-o", "pid=", "-o", "ppid=", "-o", "pgid=", "-o", "stat=", "-o", "args="],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    table = []
    for line in out.splitlines():
        fields = line.split(None, 4)
        if len(fields) >= 4:
            pid, ppid, pgid = (int(field) for field in fields[:3])
            table.append((pid, ppid, pgid, fields[3], fields[4] if len(fields) > 4 else ""))
    return table


def marked_pids(marker: bytes) -> set[int]:
    """Processes whose environment holds the marker (needs /proc; empty elsewhere)."""
    proc = Path("/proc")
    if not proc.is_dir():
        return set()
    found = set()
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if marker in environ.split(b"\0"):
            found.add(int(entry.name))
    return found


class MakeRun:
    def __init__(
        self, tmp_path: Path, api_port: int, flower_port: int, sim_port: int, metrics_port: int
    ) -> None:
        self.var_dir = tmp_path / "var"
        self.log_path = tmp_path / "make-run.log"
        self.api = f"http://127.0.0.1:{api_port}"
        self.flower = f"http://127.0.0.1:{flower_port}"
        self.simulators = f"http://127.0.0.1:{sim_port}"
        # The payments worker serves its metrics on this port, the other worker on the next.
        self.payments_metrics = f"http://127.0.0.1:{metrics_port}/metrics"
        self.worker_metrics = f"http://127.0.0.1:{metrics_port + 1}/metrics"
        token = uuid.uuid4().hex
        self.marker = f"{MARKER}={token}".encode()
        env = {
            name: value
            for name, value in os.environ.items()
            if name not in REMOVED and name not in MAKE_VARIABLES
        }
        env.update(
            PAYWAVE_API_PORT=str(api_port),
            FLOWER_PORT=str(flower_port),
            PAYWAVE_SIMULATOR_PORT=str(sim_port),
            PAYWAVE_WORKER_METRICS_PORT=str(metrics_port),
            PAYWAVE_VAR_DIR=str(self.var_dir),
            PYTHONUNBUFFERED="1",
            **{MARKER: token},
        )
        self.log: IO[bytes] = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            ["make", "run"],
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.pgid = self.proc.pid  # session and group leader
        self.pgids = {self.pgid}

    def tail(self, lines: int = 80) -> str:
        if not self.log.closed:
            self.log.flush()
        text = self.log_path.read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def explain(self, what: str) -> str:
        return f"{what}\n--- last lines of {self.log_path} ---\n{self.tail()}"

    def track(self) -> None:
        """Remember the process groups of `make` and everything below it."""
        table = process_table()
        children: dict[int, list[tuple[int, int]]] = {}
        for pid, ppid, pgid, _, _ in table:
            children.setdefault(ppid, []).append((pid, pgid))
        todo = [self.proc.pid]
        while todo:
            for pid, pgid in children.get(todo.pop(), []):
                self.pgids.add(pgid)
                todo.append(pid)

    def alive(self) -> list[str]:
        """Processes of the run still running (zombies waiting for a reaper do not count)."""
        marked = marked_pids(self.marker)
        return [
            f"{pid} (pgid {pgid}, {state}) {command}"
            for pid, _, pgid, state, command in process_table()
            if (pgid in self.pgids or pid in marked) and not state.startswith("Z")
        ]

    def wait_gone(self, timeout: float) -> list[str]:
        deadline = time.monotonic() + timeout
        while (left := self.alive()) and time.monotonic() < deadline:
            time.sleep(0.3)
        return left

    def signal_all(self, signum: int) -> None:
        marked = marked_pids(self.marker)
        for pid, _, pgid, state, _ in process_table():
            if (pgid in self.pgids or pid in marked) and not state.startswith("Z"):
                for kill, target in ((os.killpg, pgid), (os.kill, pid)):
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        kill(target, signum)

    def stop(self) -> list[str]:
        """Ctrl-C the run; what was still running after it (killed since) is returned."""
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            self.track()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pgid, signal.SIGINT)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=SHUTDOWN_TIMEOUT)
        left_after_ctrl_c = self.wait_gone(KILL_TIMEOUT)
        for signum in (signal.SIGTERM, signal.SIGKILL):
            if not self.wait_gone(0):
                break
            self.signal_all(signum)
            self.wait_gone(KILL_TIMEOUT)
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=KILL_TIMEOUT)
        self.log.close()
        return left_after_ctrl_c

    def wait_until_up(self, url: str, deadline: float) -> httpx.Response:
        """The first HTTP answer from url; fails if make exits or the deadline passes."""
        while True:
            self.track()
            try:
                return httpx.get(url, timeout=2.0)
            except httpx.TransportError:
                pass
            if self.proc.poll() is not None:
                pytest.fail(self.explain(f"make run exited with {self.proc.returncode}"))
            if time.monotonic() > deadline:
                pytest.fail(self.explain(f"{url} did not answer within {STARTUP_TIMEOUT:.0f} s"))
            time.sleep(0.5)


def scrape(run: MakeRun, url: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    response = httpx.get(url, timeout=10.0)
    assert response.status_code == 200, run.explain(f"{url}: {response.status_code}")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def counted(metrics: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str,
            **labels: str) -> float:  # fmt: skip
    """The sum of the samples of `name` that carry these labels (others may differ)."""
    return sum(
        value
        for (sample, sample_labels), value in metrics.items()
        if sample == name and set(labels.items()) <= sample_labels
    )


def check_metrics(run: MakeRun, payment: dict[str, str]) -> None:
    """What Prometheus scrapes from make run: every process's counts, each counted once."""
    # The api's two gunicorn workers answer one after the other: each scrape must show
    # every request both served (the POST above, made once), never one worker's share.
    requests = []
    for _ in range(4):
        api = scrape(run, f"{run.api}/metrics")
        posts = counted(api, "django_http_requests_total_by_view_transport_method_total",
                        view="payment-collection", method="POST")  # fmt: skip
        assert posts == 1, run.explain(f"the api's /metrics counts {posts} payment POSTs, not 1")
        created = counted(api, "paywave_payment_transitions_total", to_status="pending")
        assert created == 1, run.explain(f"the api's /metrics counts {created} payments created")
        requests.append(counted(api, "django_http_requests_total_by_method_total"))
    assert requests == sorted(requests), run.explain(f"the api's request count went {requests}")

    # The payments worker issued the PIX charge at Mercado Pago; the other worker settled it
    # when the simulator's callback arrived. Each serves what it counted, on its own port.
    payments = scrape(run, run.payments_metrics)
    issued = dict(to_status="awaiting_payment", method="pix", gateway="mercadopago")
    assert counted(payments, "paywave_payment_transitions_total", **issued) == 1, run.explain(
        f"{run.payments_metrics} does not count payment {payment['id']} issued at mercadopago"
    )
    assert counted(payments, "paywave_gateway_attempt_seconds_count", gateway="mercadopago",
                   outcome="succeeded") == 1, run.explain("no gateway attempt counted")  # fmt: skip
    worker = scrape(run, run.worker_metrics)
    settled = dict(to_status="succeeded", method="pix", gateway="mercadopago")
    assert counted(worker, "paywave_payment_transitions_total", **settled) == 1, run.explain(
        f"{run.worker_metrics} does not count payment {payment['id']} succeeded"
    )

    # What the Grafana dashboard queries, Prometheus finds in one of the three: the gateways'
    # health once beat has probed them (every 15 s), into the cache the api reads.
    deadline = time.monotonic() + STARTUP_TIMEOUT
    probed = "paywave_gateway_health_up"
    while not any(name == probed for name, _ in api) and time.monotonic() < deadline:
        time.sleep(1)
        api = scrape(run, f"{run.api}/metrics")
    served = {name for metrics in (api, payments, worker) for name, _ in metrics}
    dashboard = (REPO_ROOT / "config/grafana/dashboards/paywave.json").read_text()
    for name in set(re.findall(r"\b((?:paywave|django)_[a-z_]+)", dashboard)):
        if name == "paywave_queue_consumers":  # the filesystem broker cannot count them
            continue
        assert name in served, run.explain(f"no process of make run serves {name}")


HONCHO_LINE = re.compile(r"^\d\d:\d\d:\d\d (?P<process>[a-z]+)\.1 +\| (?P<text>.*)$")


def not_json(run: MakeRun) -> list[str]:
    """The lines a Procfile process wrote that are not one JSON object (a log shipper's line).

    Celery warns when a worker runs as root (on a CI machine, in a container): Python's
    warning, written before logging is set up, is the one text allowed, and only then.
    """
    strays = []
    in_root_warning = False
    for line in run.log_path.read_text(errors="replace").splitlines():
        match = HONCHO_LINE.match(line)
        if not match or match["process"] == "system":
            continue
        text = match["text"]
        if os.geteuid() == 0 and match["process"] in ("payments", "worker"):
            if "SecurityWarning: You're running the worker with superuser" in text:
                in_root_warning = True
            if in_root_warning:
                in_root_warning = "_warn_or_raise_security_error(" not in text
                continue
        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = None
        if not (isinstance(parsed, dict) and "logger_name" in parsed):
            strays.append(line)
    return strays


def fetch_status(run: MakeRun, location: str, auth: dict[str, str]) -> str:
    response = httpx.get(httpx.URL(run.api).join(location), headers=auth, timeout=10.0)
    return response.json()["status"]


class WebhookReceiver:
    """A wallet app's webhook endpoint: answers 200, keeps each event's type in order."""

    def __init__(self) -> None:
        received: list[str] = []
        self._received = received

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                received.append(json.loads(self.rfile.read(length))["type"])
                self.send_response(200)
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/hooks"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def types(self) -> list[str]:
        return list(self._received)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def paypal_round_trip(run: MakeRun, auth: dict[str, str], deadline: float) -> None:
    """The README's PayPal steps: the payer approves at PayPal's page (the simulator's),
    comes back through PayWave to the wallet app, and the payment is captured."""
    created = httpx.post(
        f"{run.api}/api/v1/payments",
        json={
            "amount": 1999, "currency": "USD", "method": "paypal",
            "payer": {"name": "Ana Souza", "email": "ana@example.com", "country": "BR"},
            "return_url": "https://wallet.example/done?order=1003",
        },
        headers={**auth, "Idempotency-Key": f"make-run-{uuid.uuid4()}"},
        timeout=10.0,
    )  # fmt: skip
    assert created.status_code == 202, run.explain(f"PayPal payment: {created.text}")
    location = created.headers["Location"]
    while (status := fetch_status(run, location, auth)) in ("pending", "processing"):
        if time.monotonic() > deadline:
            pytest.fail(run.explain(f"PayPal payment still {status}"))
        time.sleep(0.5)
    assert status == "requires_action", run.explain(f"PayPal payment is {status}")
    payment = httpx.get(httpx.URL(run.api).join(location), headers=auth, timeout=10.0).json()

    approved = httpx.post(payment["next_action"]["url"], data={"action": "approve"}, timeout=10.0)
    assert approved.status_code == 303, run.explain(f"PayPal approval: {approved.text}")
    back = httpx.get(approved.headers["Location"], timeout=10.0)
    assert back.status_code == 303, run.explain(f"PayWave's return page: {back.status_code}")
    assert back.headers["Location"].startswith("https://wallet.example/done?order=1003&"), (
        run.explain(f"the payer was sent to {back.headers['Location']}")
    )
    while (status := fetch_status(run, location, auth)) == "requires_action":
        if time.monotonic() > deadline:
            pytest.fail(run.explain("PayPal payment not captured after the payer's return"))
        time.sleep(0.5)
    assert status == "succeeded", run.explain(f"PayPal payment is {status}")


def exercise(run: MakeRun, receiver: WebhookReceiver) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while (health := run.wait_until_up(f"{run.api}/healthz", deadline)).status_code != 200:
        if time.monotonic() > deadline:
            pytest.fail(run.explain(f"/healthz answers {health.status_code}: {health.text}"))
        time.sleep(0.5)

    log = run.log_path.read_text(errors="replace")
    for expected in (
        f"{run.api}/api/v1/",
        "demo wallet app demo / demo",
        f"sqlite3 {run.var_dir / 'paywave.sqlite3'}",
        "Broker       filesystem://",
        "no Broker tab on filesystem://",  # Flower's: it needs RabbitMQ or Redis
        f"FileBasedCache {run.var_dir / 'cache'}",
        f"{run.api}/metrics",
        f"{run.payments_metrics}   (payments worker: ",
        f"{run.worker_metrics}   (worker)",
    ):
        assert expected in log, run.explain(f"the banner does not say {expected!r}")

    ready = httpx.get(f"{run.api}/readyz", timeout=10.0)
    assert ready.status_code == 200, run.explain(f"/readyz: {ready.status_code} {ready.text}")

    token = httpx.post(
        f"{run.api}/api/v1/auth/token",
        json={"username": "demo", "password": "demo"},
        timeout=10.0,
    )
    assert token.status_code == 200, run.explain(f"auth/token: {token.status_code} {token.text}")
    access = token.json().get("access")
    assert access, run.explain(f"auth/token gave no access token: {token.text}")
    auth = {"Authorization": f"Bearer {access}"}

    # The wallet app listens for its webhooks (allowed on loopback: the sandbox's default).
    endpoint = httpx.post(
        f"{run.api}/api/v1/webhook-endpoints",
        json={"url": receiver.url, "events": ["*"]},
        headers={**auth, "Idempotency-Key": f"make-run-{uuid.uuid4()}"},
        timeout=10.0,
    )
    assert endpoint.status_code == 201, run.explain(
        f"POST /api/v1/webhook-endpoints: {endpoint.status_code} {endpoint.text}"
    )

    body = pix_body()
    created = httpx.post(
        f"{run.api}/api/v1/payments",
        json=body,
        headers={**auth, "Idempotency-Key": f"make-run-{uuid.uuid4()}"},
        timeout=10.0,
    )
    assert created.status_code == 202, run.explain(
        f"POST /api/v1/payments: {created.status_code} {created.text}"
    )
    location = created.headers.get("Location", "")
    payment = created.json()
    assert location.endswith(f"/api/v1/payments/{payment['id']}"), run.explain(
        f"Location {location!r} is not the URL of payment {payment['id']}"
    )
    fetched = httpx.get(httpx.URL(run.api).join(location), headers=auth, timeout=10.0)
    assert fetched.status_code == 200, run.explain(
        f"GET {location}: {fetched.status_code} {fetched.text}"
    )
    for field in ("id", "amount", "currency", "method", "created_at"):
        assert fetched.json()[field] == payment[field], run.explain(
            f"GET {location} gives {field}={fetched.json()[field]!r}, POST gave {payment[field]!r}"
        )

    # The payments worker charges it at the simulators, over the embedded broker.
    while (status := fetch_status(run, location, auth)) in ("pending", "processing"):
        if time.monotonic() > deadline:
            pytest.fail(run.explain(f"payment {payment['id']} still {status}"))
        time.sleep(0.5)
    assert status == "awaiting_payment", run.explain(f"payment {payment['id']} is {status}")
    charges = httpx.get(
        f"{run.simulators}/_sim/charges", params={"reference": payment["id"]}, timeout=10.0
    ).json()
    assert [c["gateway"] for c in charges] == ["mercadopago"], run.explain(f"charges: {charges}")

    # The payer pays: the simulator calls /webhooks/mercadopago, a worker settles the payment.
    paid = httpx.post(
        f"{run.simulators}/_sim/pix/{charges[0]['id']}/pay",
        params={"gateway": "mercadopago"},
        timeout=10.0,
    )
    assert paid.json()["callback"]["delivered"], run.explain(f"callback: {paid.text}")
    while (status := fetch_status(run, location, auth)) == "awaiting_payment":
        if time.monotonic() > deadline:
            pytest.fail(run.explain(f"payment {payment['id']} still {status} after the callback"))
        time.sleep(0.5)
    assert status == "succeeded", run.explain(f"payment {payment['id']} is {status}")

    # Its events reach the wallet app, one after another, on the embedded defaults too.
    expected = ["payment.processing", "payment.awaiting_payment", "payment.succeeded"]
    while len(receiver.types()) < len(expected) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert receiver.types() == expected, run.explain(f"webhooks received: {receiver.types()}")

    check_metrics(run, payment)
    paypal_round_trip(run, auth, deadline)

    strays = not_json(run)
    assert not strays, run.explain("lines that are not JSON:\n" + "\n".join(strays[:20]))

    credentials = read_dotenv(REPO_ROOT / ".env").get("FLOWER_BASIC_AUTH", "")
    flower = run.wait_until_up(f"{run.flower}/", deadline)
    if credentials:
        assert flower.status_code == 401, run.explain(
            f"Flower answers {flower.status_code} without the FLOWER_BASIC_AUTH credentials"
        )
        user, _, password = credentials.partition(":")
        flower = httpx.get(f"{run.flower}/", auth=(user, password), timeout=10.0)
        assert flower.status_code == 200, run.explain(
            f"Flower answers {flower.status_code} with the FLOWER_BASIC_AUTH credentials"
        )


def test_make_run_starts_serves_and_stops_everything(tmp_path: Path) -> None:
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    overriding = [name for name in ISOLATING if name in read_dotenv(REPO_ROOT / ".env")]
    if overriding:
        pytest.skip(
            f".env sets {', '.join(overriding)}: honcho would let it override the test's "
            "environment, so the run would not be on its own embedded defaults"
        )

    run = MakeRun(tmp_path, *free_ports(3), free_port_pair())
    receiver = WebhookReceiver()
    try:
        exercise(run, receiver)
    finally:
        left = run.stop()
        receiver.close()
    assert not left, run.explain(
        "still running after Ctrl-C (SIGINT to make's process group), killed since:\n"
        + "\n".join(left)
    )
    assert not run.alive(), run.explain("still running after SIGKILL:\n" + "\n".join(run.alive()))
