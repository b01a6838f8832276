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

import http.server
import json
import os
import re
import threading
import time
import uuid
from pathlib import Path

import httpx
import pytest

from tests.helpers import pix_body
from tests.make_run import (
    REPO_ROOT,
    STARTUP_TIMEOUT,
    MakeRun,
    api_auth,
    counted,
    make_run,
    read_dotenv,
    scrape,
    wait_healthy,
)

pytestmark = pytest.mark.slow


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
    # health once beat has probed them (every 15 s), into the cache the api reads, and the
    # probe's heartbeat, into the database.
    deadline = time.monotonic() + STARTUP_TIMEOUT
    after_beat = {
        "paywave_gateway_health_up",
        "paywave_scheduled_task_last_success_timestamp_seconds",
    }
    while not after_beat <= {name for name, _ in api} and time.monotonic() < deadline:
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
    wait_healthy(run)

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

    auth = api_auth(run)

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
    receiver = WebhookReceiver()
    try:
        with make_run(tmp_path) as run:
            exercise(run, receiver)
    finally:
        receiver.close()
