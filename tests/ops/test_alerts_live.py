"""The alerting rules on a live PayWave: the real Prometheus server scraping `make run`.

`make run` starts on its embedded defaults (ports picked at random); Prometheus
(Debian's `prometheus`) runs with config/prometheus/make-run.yml, its targets moved to
those ports and its intervals cut to a second, and the committed rules file unchanged.
At rest nothing fires (a beat task not run yet may be pending as never run). A simulator
then takes Stripe down: card payments fail there, the circuit opens, and
Prometheus's own API shows PayWaveGatewayCircuitOpen pending, then firing a minute
later (the rule's `for`) while card payments keep coming and failing, and the alerts
about absent processes stay quiet. The payments failing on every gateway also fire
PayWaveGatewaysExhausted, counted by the payments worker's own /metrics.
"""

import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.helpers import card_body
from tests.make_run import REPO_ROOT, MakeRun, api_auth, free_ports, make_run, wait_healthy
from tests.ops.conftest import debian_tool

pytestmark = pytest.mark.slow

MAKE_RUN_CONFIG = REPO_ROOT / "config/prometheus/make-run.yml"
RULES = REPO_ROOT / "config/prometheus/rules/paywave.yml"
# The circuit's alert waits 1 minute; Prometheus's evaluation and scrapes add seconds.
FIRING_TIMEOUT = 150.0
QUIET = ("PayWaveApiDown", "PayWaveWorkersAbsent", "PayWaveBrokerDown")


def prometheus_config(run: MakeRun, path: Path) -> Path:
    """make-run.yml with the run's ports, 1 s intervals and the rules file by its path."""
    config = yaml.safe_load(MAKE_RUN_CONFIG.read_text())
    assert config["rule_files"] == ["rules/paywave.yml"]  # beside make-run.yml
    config["rule_files"] = [str(RULES)]
    config["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
    ports = {
        "paywave-api": [run.api],
        "paywave-workers": [run.payments_metrics, run.worker_metrics],
        "flower": [run.flower],
    }
    for job in config["scrape_configs"]:
        urls = iter(ports[job["job_name"]])
        for group in job["static_configs"]:
            group["targets"] = [
                next(urls).removeprefix("http://").split("/")[0] for _ in group["targets"]
            ]
    path.write_text(yaml.safe_dump(config))
    return path


class Prometheus:
    def __init__(self, binary: str, config: Path, tmp_path: Path) -> None:
        (port,) = free_ports(1)
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = tmp_path / "prometheus.log"
        self.log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def explain(self, what: str) -> str:
        self.log.flush()
        tail = "\n".join(self.log_path.read_text(errors="replace").splitlines()[-30:])
        return f"{what}\n--- last lines of {self.log_path} ---\n{tail}"

    def get(self, path: str, **params: str) -> Any:
        response = httpx.get(f"{self.url}{path}", params=params, timeout=5.0)
        response.raise_for_status()
        return response.json()["data"]

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.explain("prometheus exited")
            try:
                if httpx.get(f"{self.url}/-/ready", timeout=2.0).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.3)
        pytest.fail(self.explain("prometheus not ready"))

    def query(self, expr: str) -> list[dict[str, Any]]:
        return list(self.get("/api/v1/query", query=expr)["result"])

    def alerts(self, name: str) -> list[dict[str, Any]]:
        return [a for a in self.get("/api/v1/alerts")["alerts"] if a["labels"]["alertname"] == name]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self.log.close()


@pytest.fixture
def prometheus_binary() -> str:
    return debian_tool("prometheus", "prometheus")


@pytest.fixture
def live(tmp_path: Path, prometheus_binary: str) -> Iterator[tuple[MakeRun, Prometheus]]:
    with make_run(tmp_path) as run:
        wait_healthy(run)
        prometheus = Prometheus(
            prometheus_binary, prometheus_config(run, tmp_path / "prometheus.yml"), tmp_path
        )
        try:
            prometheus.wait_ready()
            yield run, prometheus
        finally:
            prometheus.stop()


def wait_targets_up(run: MakeRun, prometheus: Prometheus, timeout: float = 60.0) -> None:
    wanted = {"paywave-api": 1, "paywave-workers": 2}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        up: dict[str, int] = {}
        for target in prometheus.get("/api/v1/targets")["activeTargets"]:
            if target["health"] == "up":
                up[target["labels"]["job"]] = up.get(target["labels"]["job"], 0) + 1
        if all(up.get(job, 0) >= count for job, count in wanted.items()):
            return
        time.sleep(1.0)
    pytest.fail(run.explain(prometheus.explain(f"targets not up: {up}")))


def alerts_at_rest(prometheus: Prometheus) -> list[tuple[str, str]]:
    """Alerts active on a platform doing nothing wrong: none may fire. A beat task not run
    yet may be pending as "never ran" (its `for` is 30 minutes), nothing else."""
    active = [
        (a["labels"]["alertname"], a["state"]) for a in prometheus.get("/api/v1/alerts")["alerts"]
    ]
    return [(name, state) for name, state in active
            if (name, state) != ("PayWaveScheduledTaskNeverRan", "pending")]  # fmt: skip


def test_the_circuit_alert_goes_pending_then_fires(live: tuple[MakeRun, Prometheus]) -> None:
    run, prometheus = live
    wait_targets_up(run, prometheus)
    time.sleep(5)  # five evaluations of every rule on what make run serves at rest
    assert alerts_at_rest(prometheus) == [], run.explain("alerts on a healthy platform")
    # 429 to every request: refused before any charge, so the engine retries, then gives
    # up (after a 5xx or a reset Stripe may have charged: the payments would be parked).
    down = httpx.put(
        f"{run.simulators}/_sim/faults/stripe",
        json={"error_rate": 1.0, "error_status": 429},
        timeout=10.0,
    )
    assert down.status_code == 200, down.text
    auth = api_auth(run)

    def pay() -> None:
        created = httpx.post(
            f"{run.api}/api/v1/payments",
            json=card_body(),
            headers={**auth, "Idempotency-Key": f"alerts-{uuid.uuid4()}"},
            timeout=10.0,
        )
        assert created.status_code == 202, run.explain(created.text)

    for _ in range(6):  # the first two open the circuit (3 tries each); the rest find it open
        pay()

    seen: list[tuple[float, str]] = []
    deadline = time.monotonic() + FIRING_TIMEOUT
    last_paid = time.monotonic()
    while time.monotonic() < deadline:
        if time.monotonic() - last_paid > 8:  # traffic keeps failing its trial calls
            pay()
            last_paid = time.monotonic()
        states = {a["state"] for a in prometheus.alerts("PayWaveGatewayCircuitOpen")
                  if a["labels"].get("gateway") == "stripe"}  # fmt: skip
        for state in states:
            if not seen or seen[-1][1] != state:
                seen.append((time.monotonic(), state))
        if "firing" in states:
            break
        time.sleep(1.0)
    order = [state for _, state in seen]
    assert order == ["pending", "firing"], run.explain(prometheus.explain(f"states: {seen}"))
    pending_for = seen[1][0] - seen[0][0]
    assert pending_for >= 50, f"firing {pending_for:.0f} s after pending: the rule's `for` is 1m"

    (firing,) = [
        a for a in prometheus.alerts("PayWaveGatewayCircuitOpen") if a["state"] == "firing"
    ]
    assert firing["labels"]["severity"] == "page"
    assert firing["annotations"]["summary"] == "Gateway stripe: circuit open for more than a minute"

    exhausted = prometheus.alerts("PayWaveGatewaysExhausted")
    counted = prometheus.query('paywave_operator_alerts_total{alert="gateways_exhausted"}')
    assert [a["state"] for a in exhausted] == ["firing"], run.explain(f"{exhausted} {counted}")
    for name in QUIET:
        assert prometheus.alerts(name) == [], (name, prometheus.alerts(name))
    # Flower serves an idle copy of PayWave's counters: the scrape config drops it.
    assert prometheus.query('count({job="flower",__name__=~"paywave_.+"})') == []
    assert prometheus.query('count({job="flower",__name__=~"flower_.+"})') != []
