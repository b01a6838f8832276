"""Alert routing: docker-compose's Alertmanager configuration and the one the chart renders,
checked by the real amtool (check-config, config routes test) and, for the inhibitions, a
real Alertmanager; the chart's rules ConfigMap against config/prometheus/rules.

amtool and Alertmanager are Debian's prometheus-alertmanager: skipped where it is not
installed, required on CI (CI=true), as ops_module() does for the Python packages."""

import contextlib
import json
import os
import re
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.ops.conftest import CHART, chart_render, debian_tool, ops_module
from tests.processes import free_port, wait_for

REPO_ROOT = Path(__file__).resolve().parents[2]
KUBE_VERSION = "1.30.0"
COMPOSE_CONFIG = REPO_ROOT / "config" / "alertmanager" / "alertmanager.yml"
RULES = REPO_ROOT / "config" / "prometheus" / "rules" / "paywave.yml"
ENABLED = {"alerting": {"enabled": True}}
PAGE_URL = "https://hooks.example.com/paywave/page"
TICKET_URL = "https://hooks.example.com/paywave/ticket"
WITH_URLS = {
    "alerting": {
        "enabled": True,
        "alertmanager": {
            "receivers": {"page": {"webhookUrl": PAGE_URL}, "ticket": {"webhookUrl": TICKET_URL}}
        },
    }
}


@pytest.fixture
def amtool() -> str:
    return debian_tool("amtool", "prometheus-alertmanager")


def check_config(amtool: str, config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [amtool, "check-config", str(config)], capture_output=True, text=True, timeout=30
    )


def route(amtool: str, config: Path, *labels: str) -> str:
    """The receivers amtool routes an alert with these labels to (comma-separated)."""
    result = subprocess.run(
        [amtool, "config", "routes", "test", f"--config.file={config}", *labels],
        capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip
    return result.stdout.strip()


def named(documents: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    (document,) = [d for d in documents if d["kind"] == kind and d["metadata"]["name"] == name]
    return document


def chart_config(values: dict[str, Any], tmp_path: Path) -> Path:
    """The chart's alertmanager.yml (its Secret's), written where amtool reads it."""
    secret = named(chart_render(values), "Secret", "paywave-alertmanager")
    path = tmp_path / "alertmanager.yml"
    path.write_text(secret["stringData"]["alertmanager.yml"])
    return path


@pytest.fixture(params=["compose", "chart", "chart-with-urls"])
def config(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    if request.param == "compose":
        return COMPOSE_CONFIG
    return chart_config(ENABLED if request.param == "chart" else WITH_URLS, tmp_path)


# --- amtool ------------------------------------------------------------------------


def test_amtool_accepts_the_configuration(amtool: str, config: Path) -> None:
    result = check_config(amtool, config)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout
    assert "2 inhibit rules" in result.stdout


def test_amtool_rejects_a_route_to_an_undefined_receiver(amtool: str, tmp_path: Path) -> None:
    broken = yaml.safe_load(COMPOSE_CONFIG.read_text())
    broken["route"]["routes"][0]["receiver"] = "pager"
    path = tmp_path / "broken.yml"
    path.write_text(yaml.safe_dump(broken))

    result = check_config(amtool, path)

    assert result.returncode != 0
    assert 'undefined receiver "pager"' in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("labels", "receiver"),
    [
        (["severity=page", "alertname=PayWaveGatewayCircuitOpen", "gateway=stripe"], "page"),
        (["severity=ticket", "alertname=PayWaveGatewayDown", "gateway=stripe"], "ticket"),
        (["alertname=PayWaveSomethingNew", "team=payments"], "default"),  # no severity
        (["severity=warning", "alertname=PayWaveSomethingNew"], "default"),  # unknown one
    ],
)
def test_alerts_go_to_the_receiver_of_their_severity(
    amtool: str, config: Path, labels: list[str], receiver: str
) -> None:
    assert route(amtool, config, *labels) == receiver


def rule_alerts() -> list[dict[str, Any]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def test_every_alert_of_the_rules_reaches_the_receiver_of_its_severity(amtool: str) -> None:
    alerts = rule_alerts()

    assert alerts
    for rule in alerts:
        labels = {"alertname": rule["alert"], **rule["labels"]}
        received = route(amtool, COMPOSE_CONFIG, *(f"{k}={v}" for k, v in labels.items()))
        assert received == rule["labels"]["severity"], rule["alert"]  # page or ticket


def test_the_inhibitions_name_alerts_of_the_rules() -> None:
    names = {rule["alert"] for rule in rule_alerts()}
    inhibitions = yaml.safe_load(COMPOSE_CONFIG.read_text())["inhibit_rules"]

    scrape = yaml.safe_load((REPO_ROOT / "config/prometheus/prometheus.yml").read_text())
    worker_queues = {
        group.get("labels", {}).get("queues")
        for job in scrape["scrape_configs"]
        if job["job_name"] == "paywave-workers"
        for group in job["static_configs"]
    }

    for inhibition in inhibitions:
        for matcher in [*inhibition["source_matchers"], *inhibition["target_matchers"]]:
            match = re.fullmatch(r'(alertname|queues)="([\w,]+)"', matcher)
            assert match, matcher
            known = names if match[1] == "alertname" else worker_queues
            assert match[2] in known, matcher


def test_pages_are_grouped_and_repeated_sooner_than_tickets() -> None:
    root = yaml.safe_load(COMPOSE_CONFIG.read_text())["route"]
    page, ticket = root["routes"]

    assert root["group_by"] == ["alertname", "gateway", "endpoint"]
    assert (page["receiver"], ticket["receiver"]) == ("page", "ticket")
    for timing in ("group_wait", "group_interval", "repeat_interval"):
        assert seconds(page[timing]) < seconds(ticket[timing]), timing
        assert seconds(page[timing]) <= seconds(root[timing]), timing


def seconds(duration: str) -> int:
    return int(duration[:-1]) * {"s": 1, "m": 60, "h": 3600}[duration[-1]]


# --- The chart ---------------------------------------------------------------------


def test_alerting_renders_nothing_unless_enabled() -> None:
    names = {d["metadata"]["name"] for d in chart_render()}

    assert not {"paywave-prometheus-rules", "paywave-alertmanager"} & names


def test_the_rules_config_map_carries_the_rules_file_byte_for_byte() -> None:
    rules = named(chart_render(ENABLED), "ConfigMap", "paywave-prometheus-rules")

    assert rules["data"] == {"paywave.yml": RULES.read_text()}
    # One copy: the chart reads the rules through a symlink into config/.
    link = CHART / "files" / "prometheus-rules" / "paywave.yml"
    assert link.is_symlink()
    assert not Path(os.readlink(link)).is_absolute()
    assert link.resolve() == RULES.resolve()


def test_the_packaged_chart_carries_the_files_not_the_links(tmp_path: Path) -> None:
    helm = ops_module("helm_python")
    archive = helm.package(str(CHART), destination=str(tmp_path))
    with helm.Chart.load(archive) as chart:
        rendered = chart.render(ENABLED, name="paywave", namespace="payments", is_install=True)
    (text,) = [text for path, text in rendered.items() if path.endswith("/alerting.yaml")]
    documents = [doc for doc in yaml.safe_load_all(text) if doc]

    rules = named(documents, "ConfigMap", "paywave-prometheus-rules")
    assert rules["data"] == {"paywave.yml": RULES.read_text()}


@pytest.mark.parametrize("values", [ENABLED, WITH_URLS], ids=["no-urls", "urls"])
def test_the_chart_routes_as_compose_does(values: dict[str, Any]) -> None:
    secret = named(chart_render(values), "Secret", "paywave-alertmanager")
    rendered = yaml.safe_load(secret["stringData"]["alertmanager.yml"])
    compose = yaml.safe_load(COMPOSE_CONFIG.read_text())

    assert rendered["route"] == compose["route"]
    assert rendered["inhibit_rules"] == compose["inhibit_rules"]
    receivers = {r.pop("name"): r for r in rendered["receivers"]}
    assert receivers["default"] == {}  # delivers nowhere: the UI shows what reaches it
    if values is ENABLED:
        assert receivers == {"default": {}, "page": {}, "ticket": {}}
    else:
        assert receivers["page"] == {"webhook_configs": [{"url": PAGE_URL}]}
        assert receivers["ticket"] == {"webhook_configs": [{"url": TICKET_URL}]}


def test_a_url_for_an_unknown_receiver_fails_the_render() -> None:
    helm = ops_module("helm_python")
    values = {"alerting": {"enabled": True, "alertmanager": {"receivers": {"pager": {}}}}}

    with pytest.raises(helm.HelmError, match=r"alerting\.alertmanager\.receivers\.pager"):
        chart_render(values)


def test_the_prometheus_rule_holds_the_same_rules() -> None:
    kubernetes_validate = ops_module("kubernetes_validate")
    values = {"alerting": {"enabled": True, "prometheusRule": {
        "enabled": True, "labels": {"release": "kube-prometheus-stack"},
    }}}  # fmt: skip
    documents = chart_render(values)

    rule = named(documents, "PrometheusRule", "paywave")
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert rule["spec"] == yaml.safe_load(RULES.read_text())
    # A CRD: kubernetes-validate has no schema for it; every built-in kind is validated
    # (test_helm.py validates the alerting render without it too).
    with pytest.raises(kubernetes_validate.SchemaNotFoundError):
        kubernetes_validate.validate(rule, KUBE_VERSION, strict=True)
    for document in documents:
        if document is not rule:
            kubernetes_validate.validate(document, KUBE_VERSION, strict=True)


# --- Inhibitions, in a real Alertmanager --------------------------------------------


@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[str]:
    """compose's configuration in the Alertmanager on PATH, on a free loopback port."""
    binary = debian_tool("prometheus-alertmanager", "prometheus-alertmanager")
    url = f"http://127.0.0.1:{free_port()}"
    process = subprocess.Popen(
        [binary, f"--config.file={COMPOSE_CONFIG}", f"--storage.path={tmp_path}",
         f"--web.listen-address={url.removeprefix('http://')}", "--cluster.listen-address="],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_for(lambda: ready(url) or process.poll() is not None, 20, "Alertmanager ready")
        assert process.poll() is None, "Alertmanager exited"
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/-/ready", timeout=1):  # noqa: S310 (loopback)
            return True
    except OSError:
        return False


def api(url: str, path: str, body: Any = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(  # noqa: S310 (the loopback Alertmanager)
        f"{url}/api/v2/{path}", data=data, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
        return json.loads(response.read() or b"null")


@pytest.mark.parametrize(
    ("absent_worker", "backlog"),
    [("payments", "suppressed"), ("default,notifications,callbacks", "active")],
)
def test_causes_inhibit_their_consequences(
    alertmanager: str, absent_worker: str, backlog: str
) -> None:
    """The payments worker gone mutes the payments backlog; the other worker gone does not."""
    rule_labels = {rule["alert"]: rule["labels"] for rule in rule_alerts()}

    def alert(name: str, **labels: str) -> dict[str, Any]:
        return {"labels": {"alertname": name, **rule_labels[name], **labels}}

    api(alertmanager, "alerts", [
        alert("PayWaveWorkersAbsent", queues=absent_worker),
        alert("PayWavePaymentsQueueBacklog"),
        alert("PayWaveGatewayCircuitOpen", gateway="stripe"),
        alert("PayWaveGatewayDown", gateway="stripe"),
        alert("PayWaveGatewayDown", gateway="mercadopago"),  # its circuit is closed
    ])  # fmt: skip

    expected = {
        ("PayWaveWorkersAbsent", ""): "active",
        ("PayWavePaymentsQueueBacklog", ""): backlog,
        ("PayWaveGatewayCircuitOpen", "stripe"): "active",
        ("PayWaveGatewayDown", "stripe"): "suppressed",
        ("PayWaveGatewayDown", "mercadopago"): "active",
    }
    seen: list[dict[tuple[str, str], str]] = []

    def settled() -> bool:
        seen.append({
            (a["labels"]["alertname"], a["labels"].get("gateway", "")): a["status"]["state"]
            for a in api(alertmanager, "alerts")
        })  # fmt: skip
        return seen[-1] == expected

    with contextlib.suppress(AssertionError):  # timed out: the comparison below says how
        wait_for(settled, 10, "the inhibitions")
    assert seen[-1] == expected
