"""The database connections every process holds at once fit PostgreSQL's default 100.

Computed here from what the deployments actually run (the chart rendered with its
default values, the Procfile, docker-compose.yml), with the formula of
docs/operating.md "Database connections":

    a gunicorn pod holds workers x threads (each thread keeps its own connection),
    a Celery worker its pool's concurrency (one per pool thread; measured: the main
    thread runs no query), and one more if it consumes the notifications queue (its
    delivery poller claims on a connection of its own), times its
    processes for the payments worker
    (PAYWAVE_PAYMENTS_PROCESSES, else one per CPU: the pod's CPU limit on Kubernetes,
    the machine's CPUs for make run and compose, counted on 4), beat and Flower at
    most one each, the migration job one;
    a Deployment counts at its largest (the HPA's max, else its replicas) plus the
    pods a rolling update adds (maxSurge).

An unknown process fails the test: its connections must be counted here first.
"""

import math
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from config.payments_workers import process_count
from paywave.jobs import QUEUES
from tests.ops.conftest import CHART, chart_render, ops_module

REPO_ROOT = Path(__file__).resolve().parents[2]
POSTGRESQL_DEFAULT_MAX_CONNECTIONS = 100
# Superuser slots (superuser_reserved_connections = 3), an operator's psql, a backup,
# a metrics exporter: what PayWave must leave free.
RESERVE = 10
BUDGET = POSTGRESQL_DEFAULT_MAX_CONNECTIONS - RESERVE
# make run and compose start a payments worker process per CPU of the machine: they are
# counted on a machine of this many (a laptop's, a CI runner's); docs/operating.md says
# what a bigger one sets.
MACHINE_CPUS = 4


def _flag(argv: list[str], name: str, default: int | None = None) -> int:
    for index, arg in enumerate(argv):
        if arg == name and index + 1 < len(argv):
            return int(argv[index + 1])
        if arg.startswith(name + "="):
            return int(arg.split("=", 1)[1])
    if default is None:
        raise AssertionError(f"{name} not set in {argv}: its default is not counted here")
    return default


def _queues(argv: list[str]) -> list[str]:
    for index, arg in enumerate(argv):
        if arg in ("--queues", "-Q") and index + 1 < len(argv):
            return argv[index + 1].split(",")
        if arg.startswith("--queues="):
            return arg.split("=", 1)[1].split(",")
    return list(QUEUES)  # none named: every queue


def connections_per_process(
    argv: list[str], environ: dict[str, str] | None = None, cpus: int | None = None
) -> int:
    """What one running instance of `argv` holds at most (with `environ`, on `cpus` CPUs)."""
    environ = dict(environ or {})
    if argv[:2] == ["sh", "-c"]:
        argv = shlex.split(argv[2])
    while re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", argv[0]):  # VAR=value before a command
        name, value = argv[0].split("=", 1)
        environ[name] = value
        argv = argv[1:]
    if argv[0] == "exec":
        argv = argv[1:]
    if argv[0] == "nice":
        argv = argv[3:] if argv[1] == "-n" else argv[1:]
    program = Path(argv[0]).name
    if program == "gunicorn":
        return _flag(argv, "--workers") * _flag(argv, "--threads")
    if program == "celery":
        if "worker" in argv:
            poller = 1 if "notifications" in _queues(argv) else 0
            return _flag(argv, "--concurrency") + poller
        if "beat" in argv or "flower" in argv:
            return 1
    if program == "python" and argv[1:3] == ["-m", "config.payments_workers"]:
        # Its worker processes, each its pool: PAYWAVE_PAYMENTS_PROCESSES, else one per CPU.
        if environ.get("PAYWAVE_PAYMENTS_PROCESSES"):
            processes = process_count(environ)
        else:
            processes = MACHINE_CPUS if cpus is None else cpus
        return processes * _flag(argv, "--concurrency")
    if program == "python" and argv[1:3] == ["manage.py", "migrate"]:
        return 1
    if program == "python" and argv[1:3] == ["-m", "gateways.simulators"]:
        return 0  # no Django database
    raise AssertionError(f"count the database connections of {argv} here")


# --- The chart -------------------------------------------------------------------


def _surge(deployment: dict[str, Any], pods: int) -> int:
    strategy = deployment["spec"].get("strategy", {})
    if strategy.get("type") == "Recreate":
        return 0
    surge = strategy.get("rollingUpdate", {}).get("maxSurge", "25%")  # Kubernetes' default
    if isinstance(surge, str) and surge.endswith("%"):
        return math.ceil(pods * int(surge[:-1]) / 100)
    return int(surge)


def _cpu_limit(container: dict[str, Any]) -> int | None:
    """The container's CPU limit, rounded up (what the cgroup quota lets it use)."""
    cpu = str(container.get("resources", {}).get("limits", {}).get("cpu", ""))
    if not cpu:
        return None
    return max(1, math.ceil(int(cpu[:-1]) / 1000 if cpu.endswith("m") else float(cpu)))


def chart_connections(documents: list[dict[str, Any]]) -> dict[str, int]:
    """Connections per workload of a rendered release, at its worst."""
    largest = {
        doc["spec"]["scaleTargetRef"]["name"]: doc["spec"]["maxReplicas"]
        for doc in documents
        if doc["kind"] == "HorizontalPodAutoscaler"
    }
    counted: dict[str, int] = {}
    for doc in documents:
        if doc["kind"] not in ("Deployment", "Job"):
            continue
        name = doc["metadata"]["name"]
        (container,) = doc["spec"]["template"]["spec"]["containers"]
        env = {item["name"]: item.get("value", "") for item in container.get("env", [])}
        per_pod = connections_per_process(container["command"], env, _cpu_limit(container))
        if doc["kind"] == "Job":
            counted[name] = per_pod
            continue
        pods = largest.get(name, doc["spec"].get("replicas", 1))
        counted[name] = (pods + _surge(doc, pods)) * per_pod
    return counted


def test_the_chart_defaults_fit_postgresqls_default_connections() -> None:
    counted = chart_connections(chart_render())

    assert set(counted) >= {
        "paywave-api",
        "paywave-worker-payments",
        "paywave-worker-default",
        "paywave-beat",
        "paywave-flower",
        "paywave-migrate",
    }
    assert sum(counted.values()) <= BUDGET, counted
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert values["externalServices"]["postgresql"]["maxConnections"] <= BUDGET


def test_the_chart_computes_the_same_worst_case_and_refuses_a_sizing_over_it() -> None:
    helm = ops_module("helm_python")
    expected = sum(chart_connections(chart_render()).values())
    one_short = {"externalServices": {"postgresql": {"maxConnections": expected - 1}}}

    chart_render({"externalServices": {"postgresql": {"maxConnections": expected}}})  # just fits
    with pytest.raises(helm.HelmRenderError, match=f"may hold {expected} database connections"):
        chart_render(one_short)


def test_the_production_example_names_the_connections_it_needs() -> None:
    production = yaml.safe_load((CHART / "values-production.yaml").read_text())

    needed = sum(chart_connections(chart_render(production)).values())

    assert needed <= production["externalServices"]["postgresql"]["maxConnections"]
    assert f"holds up to {needed} connections" in (CHART / "values-production.yaml").read_text()


# --- make run and docker compose ---------------------------------------------------


def _defaults_expanded(command: str) -> str:
    return re.sub(r"\$\{[A-Z0-9_]+:-([^}]*)\}", r"\1", command)


def procfile_connections() -> dict[str, int]:
    counted = {}
    for line in (REPO_ROOT / "Procfile").read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        name, command = line.split(":", 1)
        counted[name] = connections_per_process(shlex.split(_defaults_expanded(command)))
    return counted


def test_make_run_fits_postgresqls_default_connections() -> None:
    counted = procfile_connections()

    assert set(counted) == {"api", "payments", "worker", "beat", "flower", "simulators"}
    assert sum(counted.values()) <= BUDGET, counted


def _defaults(environment: dict[str, str]) -> dict[str, str]:
    return {name: _defaults_expanded(str(value)) for name, value in environment.items()}


def test_docker_compose_fits_postgresqls_default_connections() -> None:
    compose = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())
    app_services = {
        name: service
        for name, service in compose["services"].items()
        if "DATABASE_URL" in str(service.get("environment", {})) or name == "migrate"
    }

    counted = {
        name: connections_per_process(service["command"], _defaults(service.get("environment", {})))
        * service.get("deploy", {}).get("replicas", 1)
        for name, service in app_services.items()
    }

    assert {"api", "payments-worker", "worker", "beat", "flower", "migrate"} <= set(counted)
    assert sum(counted.values()) <= BUDGET, counted


@pytest.mark.parametrize(
    ("payments", "processes"),
    [
        ({"processes": 3}, 3),
        ({"resources": {"limits": {"cpu": "2500m"}}}, 3),  # one per CPU of the limit, rounded up
        ({"resources": {"limits": {"cpu": "500m"}}}, 1),
    ],
)
def test_the_payments_worker_counts_its_processes(payments: dict[str, Any], processes: int) -> None:
    helm = ops_module("helm_python")
    room = {"postgresql": {"maxConnections": 500}}
    counted = chart_connections(
        chart_render({"workers": {"payments": payments}, "externalServices": room})
    )
    per_process = (3 + 1) * 8  # the default HPA max plus the surge pod, 8 threads each
    total = sum(counted.values())

    assert counted["paywave-worker-payments"] == processes * per_process
    chart_render({"workers": {"payments": payments}, "externalServices": {"postgresql": {
        "maxConnections": total}}})  # fmt: skip
    with pytest.raises(helm.HelmRenderError, match=f"may hold {total} database connections"):
        chart_render({"workers": {"payments": payments}, "externalServices": {"postgresql": {
            "maxConnections": total - 1}}})  # fmt: skip
