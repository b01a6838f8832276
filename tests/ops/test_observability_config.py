"""The ELK and Grafana configuration agree with what PayWave actually emits."""

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from paywave.observability.log_format import MESSAGE_TYPE

REPO_ROOT = Path(__file__).resolve().parents[2]
PIPELINE = (REPO_ROOT / "config/logstash/pipeline/paywave.conf").read_text()
TEMPLATE = json.loads((REPO_ROOT / "config/logstash/templates/paywave-logs.json").read_text())
MAPPED = TEMPLATE["template"]["mappings"]["properties"]
SAVED_OBJECTS = [
    json.loads(line)
    for line in (REPO_ROOT / "config/kibana/paywave.ndjson").read_text().splitlines()
    if line.strip()
]
GRAFANA = json.loads((REPO_ROOT / "config/grafana/dashboards/paywave.json").read_text())


def test_the_pipeline_listens_where_the_handler_sends() -> None:
    from django.conf import settings

    assert settings.LOGSTASH_PORT == 5959
    assert re.search(r"udp \{\s*port => 5959\s*codec => json\b", PIPELINE)
    assert re.search(r"tcp \{\s*port => 5959\s*codec => json_lines\b", PIPELINE)  # one per line
    assert 'index => "paywave-logs-%{+YYYY.MM.dd}"' in PIPELINE
    assert "/usr/share/logstash/templates/paywave-logs.json" in PIPELINE
    assert TEMPLATE["index_patterns"] == ["paywave-logs-*"]
    assert MESSAGE_TYPE == "paywave"


def test_the_story_fields_are_keywords_for_exact_search() -> None:
    for field in ("payment_id", "request_id", "task_id", "client", "gateway", "alert", "event"):
        assert MAPPED[field]["type"] == "keyword", field
    assert MAPPED["attempt"]["type"] == "integer"
    assert MAPPED["latency_ms"]["type"] == "float"
    assert MAPPED["@timestamp"]["type"] == "date"


def objects_by_id() -> dict[tuple[str, str], dict[str, Any]]:
    return {(obj["type"], obj["id"]): obj for obj in SAVED_OBJECTS}


def test_kibana_objects_reference_only_each_other() -> None:
    objects = objects_by_id()
    (data_view,) = [obj for obj in SAVED_OBJECTS if obj["type"] == "index-pattern"]

    assert data_view["attributes"]["title"] == "paywave-logs-*"
    assert data_view["attributes"]["timeFieldName"] == "@timestamp"
    for obj in SAVED_OBJECTS:
        for reference in obj["references"]:
            assert (reference["type"], reference["id"]) in objects, (obj["id"], reference)
    (dashboard,) = [obj for obj in SAVED_OBJECTS if obj["type"] == "dashboard"]
    panels = json.loads(dashboard["attributes"]["panelsJSON"])
    names = {reference["name"].split(":")[-1] for reference in dashboard["references"]}
    assert {panel["panelRefName"] for panel in panels} == names
    titles = {objects[(r["type"], r["id"])]["attributes"]["title"] for r in dashboard["references"]}
    for wanted in ("Payments by status", "gateway and error class", "latency", "Circuit", "alerts"):
        assert any(wanted in title for title in titles), wanted


@pytest.mark.parametrize(
    "obj",
    [obj for obj in SAVED_OBJECTS if obj["type"] == "visualization"],
    ids=lambda obj: obj["id"],
)
def test_visualizations_aggregate_on_mapped_fields(obj: dict[str, Any]) -> None:
    state = json.loads(obj["attributes"]["visState"])
    source = json.loads(obj["attributes"]["kibanaSavedObjectMeta"]["searchSourceJSON"])

    for agg in state["aggs"]:
        field = agg["params"].get("field")
        if field:
            assert field in MAPPED, field
    for field in re.findall(r"(\w+):", source["query"]["query"]):
        assert field in MAPPED, field


@pytest.mark.parametrize(
    "obj",
    [obj for obj in SAVED_OBJECTS if obj["type"] == "visualization"],
    ids=lambda obj: obj["id"],
)
def test_visualizations_keep_the_lines_that_lack_a_split_field(obj: dict[str, Any]) -> None:
    # Alerts without a gateway (gateways_exhausted, payment_parked, ledger_inconsistent,
    # ...), attempts without an error class: a terms split without a missing bucket drops
    # them from the panel, silently.
    state = json.loads(obj["attributes"]["visState"])

    for agg in state["aggs"]:
        if agg["type"] == "terms":
            assert agg["params"]["missingBucket"] is True, agg["params"]["field"]


def test_the_grafana_dashboard_queries_metrics_paywave_exposes(client: Any, db: Any) -> None:
    exposed = set(re.findall(r"^# TYPE (\S+)", client.get("/metrics").content.decode(), re.M))
    provisioning = yaml.safe_load(
        (REPO_ROOT / "config/grafana/provisioning/datasources/prometheus.yml").read_text()
    )
    uid = provisioning["datasources"][0]["uid"]

    assert GRAFANA["panels"]
    for panel in GRAFANA["panels"]:
        assert panel["datasource"]["uid"] == uid
        for target in panel["targets"]:
            for name in re.findall(r"\b((?:paywave|django)_[a-z_]+)", target["expr"]):
                family = re.sub(r"_(bucket|count|sum|total)$", "", name)
                family = re.sub(r"_total$", "", family)
                assert family in exposed or name in exposed, name


def test_the_make_run_scrape_config_names_the_ports_make_run_serves() -> None:
    from config.banner import worker_metrics_ports

    procfile = (REPO_ROOT / "Procfile").read_text()
    api_port = re.search(r"--bind 127\.0\.0\.1:\$\{PAYWAVE_API_PORT:-(\d+)\}", procfile)[1]
    flower_port = re.search(r"--port=\$\{FLOWER_PORT:-(\d+)\}", procfile)[1]
    workers = worker_metrics_ports({})
    first = f"${{PAYWAVE_WORKER_METRICS_PORT:-{workers['payments']}}}"
    payments = f"PAYWAVE_WORKER_METRICS_PORT={first}"
    worker = f"PAYWAVE_WORKER_METRICS_PORT=$(({first}+1))"
    assert re.search(rf"^payments: .*{re.escape(payments)} ", procfile, re.M)
    assert re.search(rf"^worker: .*{re.escape(worker)} ", procfile, re.M)
    assert workers["worker"] == workers["payments"] + 1
    for name in ("api", "payments", "worker"):  # one multiprocess directory each
        dir_ = f"PROMETHEUS_MULTIPROC_DIR=${{PAYWAVE_VAR_DIR:-var}}/prometheus/{name} "
        assert re.search(rf"^{name}: {re.escape(dir_)}", procfile, re.M), name

    config = yaml.safe_load((REPO_ROOT / "config/prometheus/make-run.yml").read_text())
    targets = {
        job["job_name"]: [target for group in job["static_configs"] for target in group["targets"]]
        for job in config["scrape_configs"]
    }
    assert targets == {
        "paywave-api": [f"127.0.0.1:{api_port}"],
        "paywave-workers": [f"127.0.0.1:{workers['payments']}", f"127.0.0.1:{workers['worker']}"],
        "flower": [f"127.0.0.1:{flower_port}"],
    }


def test_every_grafana_panel_title_names_the_quantiles_it_plots() -> None:
    for panel in GRAFANA["panels"]:
        plotted = {
            f"p{round(float(quantile) * 100)}"
            for target in panel["targets"]
            for quantile in re.findall(r"histogram_quantile\(\s*([0-9.]+)", target["expr"])
        }
        named = set(re.findall(r"\bp\d{2}\b", panel["title"]))
        assert plotted == named, panel["title"]
