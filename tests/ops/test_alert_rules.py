"""The alerting rules: valid, unit-tested by promtool, on metrics PayWave exports, documented.

`promtool test rules` runs config/prometheus/tests/paywave.test.yml: for every alert,
series in and the alert out, and near misses that must stay quiet. Here, also: the unit
tests catch a rule that is wrong (a mutated copy fails them), every alert has both kinds
of case, its metrics are ones /metrics serves, and docs/operating.md has its row.
"""

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.ops.conftest import debian_tool

REPO_ROOT = Path(__file__).resolve().parents[2]
RULES = REPO_ROOT / "config/prometheus/rules/paywave.yml"
UNIT_TESTS = REPO_ROOT / "config/prometheus/tests/paywave.test.yml"
OPERATING = (REPO_ROOT / "docs/operating.md").read_text()
ALERTS = [rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]]
# Series Prometheus makes itself rather than scrapes.
PROMETHEUS_OWN = {"up"}


@pytest.fixture
def promtool() -> str:
    return debian_tool("promtool", "prometheus")


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=60)


def test_the_rules_are_valid(promtool: str) -> None:
    checked = run(promtool, "check", "rules", str(RULES))
    assert checked.returncode == 0, checked.stdout + checked.stderr


@pytest.mark.parametrize("config", ["make-run.yml", "prometheus.yml"])
def test_the_prometheus_configs_are_valid(promtool: str, config: str) -> None:
    # make-run.yml names the rules file beside it: promtool loads and checks it too.
    checked = run(promtool, "check", "config", str(REPO_ROOT / "config/prometheus" / config))

    assert checked.returncode == 0, checked.stdout + checked.stderr
    if config == "make-run.yml":
        assert f"SUCCESS: {len(ALERTS)} rules found" in checked.stdout


def test_the_rules_pass_their_unit_tests(promtool: str) -> None:
    tested = run(promtool, "test", "rules", str(UNIT_TESTS))
    assert tested.returncode == 0, tested.stdout + tested.stderr


@pytest.mark.parametrize(
    ("alert", "right", "wrong"),
    [
        ("PayWaveGatewayCircuitOpen", "for: 1m", "for: 5m"),
        ("PayWaveGatewaysExhausted", ">= 5", ">= 6"),
        ("PayWavePaymentsOverdue", "> 180", "> 60"),
        ("PayWaveGatewayCircuitOpen", "[45s]", "[5m]"),
        ("PayWaveWebhookEndpointFailing", "> 900", "> 1900"),
        ("PayWaveLedgerInconsistent", "\n          or sum(", "\n          and sum("),
        ("PayWaveScheduledTaskLate", "2 * max", "1 * max"),
        ("PayWaveWorkersAbsent", ' or absent(up{job="paywave-workers"})', ""),
        ("PayWavePixCallbacksMissed", ">= 3", ">= 4"),
        ("PayWavePixCallbacksMissed", 'outcome="succeeded"', 'outcome=~".+"'),
        ("PayWaveReconciliationBehind", "> 900", "> 1900"),
        ("PayWaveReconciliationBehind", "for: 5m", "for: 1m"),
    ],
)
def test_the_unit_tests_fail_a_wrong_rule(
    promtool: str, tmp_path: Path, alert: str, right: str, wrong: str
) -> None:
    text = RULES.read_text()
    start = text.index(f"- alert: {alert}\n")
    end = text.find("- alert:", start + 1)
    end = len(text) if end < 0 else end
    assert right in text[start:end], (alert, right)
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules/paywave.yml").write_text(
        text[:start] + text[start:end].replace(right, wrong, 1) + text[end:]
    )
    (tmp_path / "tests").mkdir()
    shutil.copy(UNIT_TESTS, tmp_path / "tests/paywave.test.yml")

    tested = run(promtool, "test", "rules", str(tmp_path / "tests/paywave.test.yml"))

    assert tested.returncode != 0, f"the unit tests pass with {alert} changed to {wrong!r}"
    assert alert in tested.stdout + tested.stderr


# Operator alert kinds another rule watches through its own gauge, not the counter.
WATCHED_BY_A_GAUGE = {"circuit_opened": "PayWaveGatewayCircuitOpen"}
ALERT_SELECTOR = re.compile(r'paywave_operator_alerts_total\{alert=~?"([^"]+)"')


def test_every_operator_alert_kind_reaches_a_rule() -> None:
    from paywave.observability.alerts import AlertKind

    named: set[str] = set()
    for rule in ALERTS:
        for selector in ALERT_SELECTOR.findall(rule["expr"]):
            named |= set(selector.split("|"))

    assert named <= set(AlertKind.all()), named - set(AlertKind.all())  # no stale kind
    assert set(AlertKind.all()) - named == set(WATCHED_BY_A_GAUGE)


def unit_test_cases() -> list[dict[str, Any]]:
    return [
        case
        for test in yaml.safe_load(UNIT_TESTS.read_text())["tests"]
        for case in test.get("alert_rule_test", [])
    ]


@pytest.mark.parametrize("rule", ALERTS, ids=lambda rule: rule["alert"])
def test_every_alert_is_tested_firing_and_quiet(rule: dict[str, Any]) -> None:
    cases = [case for case in unit_test_cases() if case["alertname"] == rule["alert"]]

    assert any(case["exp_alerts"] for case in cases), "no case where it fires"
    assert any(not case["exp_alerts"] for case in cases), "no near miss where it must not"


@pytest.mark.parametrize("rule", ALERTS, ids=lambda rule: rule["alert"])
def test_every_alert_says_who_acts_and_how(rule: dict[str, Any]) -> None:
    assert rule["labels"]["severity"] in {"page", "ticket"}
    assert rule["labels"]["team"] == "payments"
    anchor = rule["alert"].lower()
    assert rule["annotations"]["runbook_url"] == f"docs/operating.md#{anchor}"
    # the operating guide's row: a heading-free anchor GitHub renders for `<a id>`
    assert f'<a id="{anchor}"></a>' in OPERATING, f"docs/operating.md has no row for {anchor}"


@pytest.mark.django_db
def test_the_rules_read_metrics_paywave_exports(client: Any) -> None:
    from django.utils import timezone

    from paywave.models import ScheduledTaskRun

    # The ledger's gauge exists once its daily check has run.
    ScheduledTaskRun.objects.create(
        task="wallets.check_ledger", last_succeeded_at=timezone.now(), last_result=0
    )
    exposed = set(re.findall(r"^# TYPE (\S+)", client.get("/metrics").content.decode(), re.M))

    for rule in ALERTS:
        names = set(re.findall(r"\b((?:paywave|django)_[a-z_]+)", rule["expr"]))
        names |= {name for name in PROMETHEUS_OWN if re.search(rf"\b{name}\{{", rule["expr"])}
        assert names, rule["alert"]
        for name in names - PROMETHEUS_OWN:
            family = re.sub(r"_(total|bucket|count|sum)$", "", name)
            assert family in exposed or name in exposed, (rule["alert"], name)
