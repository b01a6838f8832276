"""Kibana, Logstash and Grafana use only what PayWave's processes actually emit.

A renamed log field or metric would blank a panel without any error, so this drives a
payment as production does and compares. The API takes it (Django's test client, the
real middleware and log configuration); a Celery worker (this process, a thread, the
real signals) charges it, with Mercado Pago down: three failed tries open its circuit
(an operator alert), then Efí issues the charge. Every line logged meanwhile is kept in
both shapes PayWave ships, stdout's JSON lines and python-logstash's events. Then the
API's /metrics (over HTTP, the live server) and the worker's own metrics port are
scraped, as Prometheus does.
"""

import json
import logging
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from config.celery_app import app as celery_app
from gateways.tasks import probe_health
from payments.approvals import payer_return_process
from payments.models import Payment
from payments.models import PaymentStatus as S
from paywave.observability.celery_signals import serve_worker_metrics
from paywave.observability.log_format import MESSAGE_TYPE, MaskedLogstashFormatter
from tests.helpers import paypal_body, pix_body, post_payment
from tests.paywave.observability.conftest import configured_console
from tests.processes import free_port, wait_for

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]

REPO_ROOT = Path(__file__).resolve().parents[3]
SAVED_OBJECTS = [
    json.loads(line)
    for line in (REPO_ROOT / "config/kibana/paywave.ndjson").read_text().splitlines()
    if line.strip()
]
PIPELINE = (REPO_ROOT / "config/logstash/pipeline/paywave.conf").read_text()
GRAFANA = json.loads((REPO_ROOT / "config/grafana/dashboards/paywave.json").read_text())
# Fields the pipeline's inputs add to every event (not PayWave's to emit).
LOGSTASH_INPUT_FIELDS = {"port"}
# Panels this drive has nothing for: no webhook endpoint is registered.
NOT_DRIVEN = {"paywave_webhook_deliveries_total"}


def kql_fields(query: str) -> set[str]:
    return set(re.findall(r"([@\w.]+)\s*:", query))


def query_of(obj: dict[str, Any]) -> str:
    meta = obj["attributes"].get("kibanaSavedObjectMeta", {})
    return json.loads(meta.get("searchSourceJSON", "{}")).get("query", {}).get("query", "")


def kibana_fields() -> dict[str, set[str]]:
    """Each saved object's id: the fields it shows, sorts, aggregates or queries on."""
    used: dict[str, set[str]] = {}
    for obj in SAVED_OBJECTS:
        attributes, fields = obj["attributes"], set()
        if attributes.get("timeFieldName"):
            fields.add(attributes["timeFieldName"])
        fields |= set(attributes.get("columns", []))
        fields |= {field for field, _ in attributes.get("sort", [])}
        if "visState" in attributes:
            for agg in json.loads(attributes["visState"])["aggs"]:
                if agg["params"].get("field"):
                    fields.add(agg["params"]["field"])
        fields |= kql_fields(query_of(obj))
        used[obj["id"]] = fields
    return used


def logstash_fields() -> set[str]:
    """The fields the pipeline's filters read (`[name]`), less those it only removes."""
    filters = PIPELINE[PIPELINE.index("filter {") : PIPELINE.index("output {")]
    code = "\n".join(line.split("#", 1)[0] for line in filters.splitlines())
    removed = set(re.findall(r"remove_field => \[([^\]]*)\]", code))
    removed_names = {name.strip(' "') for group in removed for name in group.split(",")}
    return set(re.findall(r"\[([@\w]+)\]", code)) - removed_names - LOGSTASH_INPUT_FIELDS


def grafana_metrics() -> set[str]:
    return {
        name
        for panel in GRAFANA["panels"]
        for target in panel["targets"]
        for name in re.findall(r"\b((?:paywave|django)_[a-z_]+)", target["expr"])
    }


class LogstashEvents(logging.Handler):
    """What python-logstash would send: its v1 event per record, after PayWave's filters."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(MaskedLogstashFormatter(MESSAGE_TYPE))
        self.events: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.events.append(json.loads(self.format(record)))


@pytest.fixture
def logstash_events() -> Iterator[LogstashEvents]:
    handler = LogstashEvents()
    for log_filter in configured_console().filters:
        handler.addFilter(log_filter)
    root = logging.getLogger()
    root.addHandler(handler)
    yield handler
    root.removeHandler(handler)


@pytest.fixture
def worker_metrics(settings: Any) -> Iterator[str]:
    settings.PAYWAVE_WORKER_METRICS_ADDR = "127.0.0.1"
    settings.PAYWAVE_WORKER_METRICS_PORT = free_port()
    server = serve_worker_metrics()
    yield f"http://127.0.0.1:{settings.PAYWAVE_WORKER_METRICS_PORT}/metrics"
    server.shutdown()
    server.server_close()


@pytest.fixture
def driven(
    api: Any,
    gateways: Any,
    sim: Any,
    settings: Any,
    worker: Any,
    json_lines: Any,
    logstash_events: LogstashEvents,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """A payment retried, its gateway's circuit opened, issued at the fallback: the lines."""
    settings.PAYWAVE_CIRCUIT_THRESHOLD = 3
    sim.faults("mercadopago", down=True, down_mode="503")
    response = post_payment(api, pix_body(), key=f"fields-{uuid.uuid4().hex[:8]}")
    assert response.status_code == 202
    payment_id = response.json()["id"]
    wait_for(lambda: Payment.objects.get(pk=payment_id).status == S.AWAITING_PAYMENT)
    wait_for(lambda: json_lines.about(alert="circuit_opened"))
    # A PayPal payment approved by its payer, whose return captures it.
    response = post_payment(api, paypal_body(), key=f"fields-{uuid.uuid4().hex[:8]}")
    assert response.status_code == 202
    paypal_id = response.json()["id"]
    wait_for(lambda: Payment.objects.get(pk=paypal_id).status == S.REQUIRES_ACTION)
    order = Payment.objects.get(pk=paypal_id).gateway_reference
    sim.http.post(f"/paypal/approve/{order}").raise_for_status()
    assert payer_return_process(paypal_id, "approved") == "succeeded"
    return json_lines.records(), logstash_events.events


def test_kibana_and_logstash_use_only_fields_the_log_lines_carry(
    driven: tuple[list[dict[str, Any]], list[dict[str, Any]]],
) -> None:
    json_lines, events = driven
    in_json_lines = {field for line in json_lines for field in line}
    in_events = {field for event in events for field in event}

    for object_id, fields in kibana_fields().items():
        assert fields - in_json_lines == set(), f"{object_id}: not in the JSON lines"
        assert fields - in_events == set(), f"{object_id}: not in python-logstash's events"
    assert logstash_fields() - in_json_lines == set()
    assert logstash_fields() - in_events == set()
    assert "payment_id" in kibana_fields()["paywave-payment-story"]  # the parsing found them
    # Each panel's fields in the very lines its query selects, and the values it compares
    # with: tests/ops/test_kibana_log_fields.py.


def test_grafana_queries_only_metrics_the_api_and_a_worker_serve(
    driven: Any, live_server: Any, worker_metrics: str
) -> None:
    with celery_app.connection_for_write() as conn:  # the queues a worker declares
        for queue in celery_app.conf.task_queues:
            queue(conn.default_channel).declare()
    probe_health.apply()  # beat's probe: each gateway's health, for the health panel

    scraped = {}
    for url in (f"{live_server.url}/metrics", worker_metrics):
        response = httpx.get(url, timeout=10)
        assert response.status_code == 200, url
        for family in text_string_to_metric_families(response.text):
            scraped.setdefault(family.name, set())
            scraped[family.name] |= {sample.name for sample in family.samples}
    with_samples = {name for samples in scraped.values() for name in samples}

    used = grafana_metrics()
    assert "paywave_payment_transitions_total" in used  # the parsing found them
    for name in used:
        family = re.sub(r"_(bucket|count|sum|total)$", "", name)
        assert family in scraped or name in scraped, f"{name}: no such metric is served"
        if name not in NOT_DRIVEN:
            assert name in with_samples, f"{name}: served, but nothing was counted"
