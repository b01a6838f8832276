"""The chart, linted and rendered by real Helm (helm-python-sdk, offline), and every
rendered manifest validated against the Kubernetes schemas (kubernetes-validate)."""

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.ops.conftest import CHART, chart_render, ops_module

REPO_ROOT = Path(__file__).resolve().parents[2]
KUBE_VERSION = "1.30.0"  # a version kubernetes-validate ships schemas for, offline
PRODUCTION_VALUES = yaml.safe_load((CHART / "values-production.yaml").read_text())
# Off by default; its PrometheusRule (a CRD, no schema here) is in test_alertmanager.py.
ALERTING_VALUES = {"alerting": {"enabled": True}}
SETTINGS_FILES = (REPO_ROOT / "config" / "settings").glob("*.py")
READ_BY_SETTINGS = {
    name
    for path in SETTINGS_FILES
    for name in re.findall(r'env\.\w+\(\s*"([A-Z0-9_]+)"', path.read_text())
}
ENV_EXAMPLE = set(
    re.findall(r"^([A-Z0-9_]+)=", (REPO_ROOT / "config/env.example").read_text(), re.M)
)
# Read by processes rather than settings: the pod's own address, the simulators' callbacks.
PROCESS_ENV = {
    "POD_IP",
    "DJANGO_SETTINGS_MODULE",
    "PROMETHEUS_MULTIPROC_DIR",
    "FLOWER_BASIC_AUTH",
    "PAYWAVE_PAYMENTS_PROCESSES",  # config.payments_workers
}

helm = ops_module("helm_python")
kubernetes_validate = ops_module("kubernetes_validate")


def by_kind(documents: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for doc in documents if doc["kind"] == kind}


def containers(document: dict[str, Any]) -> list[dict[str, Any]]:
    return document["spec"]["template"]["spec"]["containers"]


@pytest.fixture(scope="module")
def default() -> list[dict[str, Any]]:
    return chart_render()


@pytest.fixture(scope="module")
def production() -> list[dict[str, Any]]:
    return chart_render(PRODUCTION_VALUES)


@pytest.fixture(scope="module")
def alerting() -> list[dict[str, Any]]:
    return chart_render(ALERTING_VALUES)


@pytest.mark.parametrize(
    "values",
    [None, PRODUCTION_VALUES, ALERTING_VALUES],
    ids=["default", "production", "alerting"],
)
def test_the_chart_lints_clean(values: dict[str, Any] | None) -> None:
    report = helm.lint(str(CHART), values, strict=True, kube_version=f"v{KUBE_VERSION}")

    assert report["errors"] == []
    problems = [m for m in report["messages"] if m["severity"] >= 2]  # warnings and errors
    assert problems == []


@pytest.mark.parametrize("values", ["default", "production", "alerting"])
def test_every_manifest_validates_against_the_kubernetes_schemas(
    values: str, request: pytest.FixtureRequest
) -> None:
    documents = request.getfixturevalue(values)

    assert len(documents) > 10
    for document in documents:
        kubernetes_validate.validate(document, KUBE_VERSION, strict=True)


def test_an_invalid_manifest_is_caught_by_the_validation() -> None:
    broken = by_kind(chart_render(), "Deployment")["paywave-beat"]
    broken["spec"]["replicas"] = "one"

    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBE_VERSION, strict=True)


def test_default_workloads(default: list[dict[str, Any]]) -> None:
    deployments = by_kind(default, "Deployment")
    assert set(deployments) == {
        "paywave-api", "paywave-worker-payments", "paywave-worker-default", "paywave-beat",
        "paywave-flower", "paywave-simulators",
    }  # fmt: skip
    queues = {
        name: next(arg for arg in containers(d)[0]["command"] if arg.startswith("--queues="))
        for name, d in deployments.items()
        if "worker" in name
    }
    assert queues == {
        "paywave-worker-payments": "--queues=payments",
        "paywave-worker-default": "--queues=default,notifications,callbacks",
    }
    assert containers(deployments["paywave-api"])[0]["command"][:2] == [
        "gunicorn",
        "config.wsgi:application",
    ]
    for name, deployment in deployments.items():
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        for container in pod["containers"]:
            assert container["image"] == "paywave:0.1.0", name
            assert {"requests", "limits"} <= container["resources"].keys(), name
            assert container["securityContext"]["allowPrivilegeEscalation"] is False, name


def test_beat_is_exactly_one_replica_replaced_not_rolled(default: list[dict[str, Any]]) -> None:
    beat = by_kind(default, "Deployment")["paywave-beat"]

    assert beat["spec"]["replicas"] == 1
    assert beat["spec"]["strategy"] == {"type": "Recreate"}
    assert "paywave-beat" not in by_kind(default, "HorizontalPodAutoscaler")
    assert "paywave-beat" not in by_kind(default, "PodDisruptionBudget")


def test_api_probes_service_autoscaling_and_disruption_budget(
    default: list[dict[str, Any]],
) -> None:
    api = by_kind(default, "Deployment")["paywave-api"]
    (container,) = containers(api)
    pod_labels = api["spec"]["template"]["metadata"]["labels"]

    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert "replicas" not in api["spec"]  # the HPA owns it
    hpa = by_kind(default, "HorizontalPodAutoscaler")["paywave-api"]
    assert hpa["spec"]["scaleTargetRef"]["name"] == "paywave-api"
    assert hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu"
    service = by_kind(default, "Service")["paywave"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    pdb = by_kind(default, "PodDisruptionBudget")["paywave-api"]
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert api["spec"]["template"]["metadata"]["annotations"]["prometheus.io/path"] == "/metrics"


def test_every_worker_group_scales_and_can_be_drained(default: list[dict[str, Any]]) -> None:
    hpas = by_kind(default, "HorizontalPodAutoscaler")
    pdbs = by_kind(default, "PodDisruptionBudget")
    for name in ("paywave-worker-payments", "paywave-worker-default"):
        worker = by_kind(default, "Deployment")[name]
        labels = worker["spec"]["template"]["metadata"]["labels"]
        assert hpas[name]["spec"]["scaleTargetRef"]["name"] == name
        assert pdbs[name]["spec"]["maxUnavailable"] == 1  # a one-pod group still drains
        assert pdbs[name]["spec"]["selector"]["matchLabels"].items() <= labels.items()
        assert worker["spec"]["selector"]["matchLabels"].items() <= labels.items()


def test_migrations_run_as_a_hook_after_the_secret_exists(default: list[dict[str, Any]]) -> None:
    job = by_kind(default, "Job")["paywave-migrate"]
    secret = by_kind(default, "Secret")["paywave-secrets"]

    annotations = job["metadata"]["annotations"]
    assert annotations["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert int(secret["metadata"]["annotations"]["helm.sh/hook-weight"]) < int(
        annotations["helm.sh/hook-weight"]
    )
    (container,) = containers(job)
    assert container["command"] == ["python", "manage.py", "migrate", "--noinput"]
    env = {item["name"]: item.get("value") for item in container["env"]}
    assert env["DJANGO_SETTINGS_MODULE"] == "config.settings.production"
    assert container["envFrom"] == [{"secretRef": {"name": "paywave-secrets"}}]


def test_generated_secrets_fit_what_settings_expect(default: list[dict[str, Any]]) -> None:
    from cryptography.fernet import Fernet

    data = by_kind(default, "Secret")["paywave-secrets"]["stringData"]

    Fernet(data["PAYWAVE_ENCRYPTION_KEYS"])  # a valid Fernet key
    assert len(data["DJANGO_SECRET_KEY"]) >= 50
    assert len(data["PAYWAVE_JWT_SIGNING_KEY"]) >= 50
    assert data["PAYWAVE_JWT_SIGNING_KEY"] != data["DJANGO_SECRET_KEY"]
    assert re.fullmatch(r"flower:\S{24}", data["FLOWER_BASIC_AUTH"])


def test_env_names_are_settings_paywave_reads(
    default: list[dict[str, Any]], production: list[dict[str, Any]]
) -> None:
    for documents in (default, production):
        names = set()
        for config in by_kind(documents, "ConfigMap").values():
            names |= config["data"].keys()
        for secret in by_kind(documents, "Secret").values():
            names |= secret["stringData"].keys()
        for kind in ("Deployment", "Job"):
            for document in by_kind(documents, kind).values():
                for container in containers(document):
                    names |= {item["name"] for item in container.get("env", [])}
        names = {name for name in names if not name.startswith("SIM_")}  # simulators' own
        assert names - READ_BY_SETTINGS - PROCESS_ENV == set()
        assert names - ENV_EXAMPLE - {"POD_IP"} == set()


def test_django_answers_probes_at_the_pod_address(default: list[dict[str, Any]]) -> None:
    for name, deployment in by_kind(default, "Deployment").items():
        if name == "paywave-simulators":
            continue
        env = containers(deployment)[0]["env"]
        names = [item["name"] for item in env]
        # $(POD_IP) expands only from a variable defined before it.
        assert names.index("POD_IP") < names.index("DJANGO_ALLOWED_HOSTS"), name
        hosts = env[names.index("DJANGO_ALLOWED_HOSTS")]["value"].split(",")
        assert {"$(POD_IP)", "localhost", "paywave"} <= set(hosts), name


def test_production_values(production: list[dict[str, Any]]) -> None:
    assert by_kind(production, "Secret") == {}  # existingSecret: the chart writes none
    deployments = by_kind(production, "Deployment")
    assert "paywave-simulators" not in deployments
    assert {
        "paywave-worker-payments",
        "paywave-worker-notifications",
        "paywave-worker-default",
    } <= (deployments.keys())
    for document in [*deployments.values(), *by_kind(production, "Job").values()]:
        for container in containers(document):
            secret_refs = [s["secretRef"]["name"] for s in container["envFrom"] if "secretRef" in s]
            assert secret_refs == ["paywave-secrets"]
    config = by_kind(production, "ConfigMap")["paywave-config"]["data"]
    assert config["LOGSTASH_HOST"] == "logstash.logging.svc.cluster.local"
    assert config["LOGSTASH_TRANSPORT"] == "tcp"
    assert config["PAYWAVE_SANDBOX"] == "false"
    ingress = by_kind(production, "Ingress")["paywave"]
    assert ingress["spec"]["tls"][0]["hosts"] == ["api.paywave.example.com"]
    paths = {p["path"] for p in ingress["spec"]["rules"][0]["http"]["paths"]}
    assert "/metrics" not in paths  # metrics stay inside the cluster
    assert "/" not in paths
    hosts = containers(deployments["paywave-api"])[0]["env"][1]["value"].split(",")
    assert "api.paywave.example.com" in hosts


def test_a_missing_service_url_fails_the_render() -> None:
    values = {"externalServices": {"postgresql": {"url": ""}}}

    with pytest.raises(helm.HelmError, match=r"externalServices\.postgresql\.url"):
        chart_render(values)


def test_the_payments_worker_runs_a_process_per_cpu_of_its_limit(
    default: list[dict[str, Any]],
) -> None:
    from config.payments_workers import worker_argv

    pod = by_kind(default, "Deployment")["paywave-worker-payments"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    env = {item["name"]: item.get("value") for item in container["env"]}
    first = worker_argv(1, [])[-1].replace("%h", "$HOSTNAME")

    assert container["command"][:3] == ["python", "-m", "config.payments_workers"]
    assert not any(arg.startswith("--hostname") for arg in container["command"])
    assert "PAYWAVE_PAYMENTS_PROCESSES" not in env  # one per CPU of the limit
    assert container["resources"]["limits"]["cpu"] == "1"
    # The processes add up their metrics in a directory on the pod's /tmp emptyDir.
    assert env["PROMETHEUS_MULTIPROC_DIR"] == "/tmp/prometheus"
    assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
    assert f"--destination={first} " in container["livenessProbe"]["exec"]["command"][-1]
    other = by_kind(default, "Deployment")["paywave-worker-default"]["spec"]["template"]["spec"]
    assert other["containers"][0]["command"][:3] == ["celery", "--app=config.celery_app", "worker"]


def test_the_payments_worker_processes_can_be_set() -> None:
    room = {"postgresql": {"maxConnections": 500}}  # three processes hold three times more
    documents = chart_render({"workers": {"payments": {"processes": 3}}, "externalServices": room})

    (container,) = containers(by_kind(documents, "Deployment")["paywave-worker-payments"])
    env = {item["name"]: item.get("value") for item in container["env"]}
    assert env["PAYWAVE_PAYMENTS_PROCESSES"] == "3"


def test_payments_worker_processes_without_a_cpu_limit_fail_the_render() -> None:
    unbounded = {"resources": {"limits": {"cpu": None}}}
    room = {"postgresql": {"maxConnections": 500}}

    with pytest.raises(helm.HelmError, match=r"workers\.payments: set processes"):
        chart_render({"workers": {"payments": unbounded}, "externalServices": room})
    chart_render({"workers": {"payments": {**unbounded, "processes": 2}}, "externalServices": room})
