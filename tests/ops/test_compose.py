"""docker-compose.yml and the Dockerfile, checked without a Docker engine: services,
commands, ports, health checks, dependencies, volumes, and env names against settings."""

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
APP_IMAGE = "paywave:local"
APP_SERVICES = {s for s, spec in SERVICES.items() if spec.get("image") == APP_IMAGE}
ONE_SHOTS = {"migrate", "kibana-loader"}
READ_BY_SETTINGS = {
    name
    for path in (REPO_ROOT / "config" / "settings").glob("*.py")
    for name in re.findall(r'env\.\w+\(\s*"([A-Z0-9_]+)"', path.read_text())
}
ENV_EXAMPLE = set(
    re.findall(r"^([A-Z0-9_]+)=", (REPO_ROOT / "config/env.example").read_text(), re.M)
)

# What each PayWave service runs, and the port it listens on inside the container.
EXPECTED_COMMANDS = {
    "migrate": (["python", "manage.py", "migrate", "--noinput"], None),
    "api": (["gunicorn", "config.wsgi:application", "--bind", "0.0.0.0:8000"], 8000),
    "payments-worker": (["python", "-m", "config.payments_workers"], None),
    "worker": (["celery", "-A", "config.celery_app", "worker", "--queues",
                "default,notifications,callbacks"], None),
    "beat": (["celery", "-A", "config.celery_app", "beat"], None),
    "flower": (["sh", "-c"], 5555),
    "simulators": (["python", "-m", "gateways.simulators", "--host", "0.0.0.0",  # noqa: S104
                    "--port", "8900"], 8900),
}  # fmt: skip
EXPECTED_IMAGES = {
    "postgres": "postgres:",
    "redis": "redis:",
    "rabbitmq": "rabbitmq:3.13-management",
    "elasticsearch": "docker.elastic.co/elasticsearch/elasticsearch:",
    "logstash": "docker.elastic.co/logstash/logstash:",
    "kibana": "docker.elastic.co/kibana/kibana:",
    "kibana-loader": "curlimages/curl:",
    "prometheus": "prom/prometheus:",
    "alertmanager": "prom/alertmanager:",
    "grafana": "grafana/grafana:",
}


def test_the_platform_is_all_there() -> None:
    assert set(SERVICES) == set(EXPECTED_COMMANDS) | set(EXPECTED_IMAGES)
    assert set(EXPECTED_COMMANDS) == APP_SERVICES


@pytest.mark.parametrize("service", sorted(EXPECTED_COMMANDS))
def test_paywave_services_share_one_image_and_differ_by_command(service: str) -> None:
    spec = SERVICES[service]
    command, port = EXPECTED_COMMANDS[service]

    assert spec["build"] == "."
    assert spec["env_file"] == ".env"
    assert spec["command"][: len(command)] == command
    assert spec["environment"]["DJANGO_SETTINGS_MODULE"] == "config.settings.production"
    published = [p.rsplit(":", 1)[-1] for p in spec.get("ports", [])]
    assert published == ([str(port)] if port else [])


def test_flower_is_behind_basic_auth_from_the_environment() -> None:
    assert '--basic-auth="$$FLOWER_BASIC_AUTH"' in SERVICES["flower"]["command"][-1]


def test_published_ports_listen_on_loopback_and_match_the_listeners() -> None:
    expected = {
        "api": "8000", "flower": "5555", "simulators": "8900", "rabbitmq": "15672",
        "elasticsearch": "9200", "kibana": "5601", "prometheus": "9090", "grafana": "3000",
        "alertmanager": "9093",
    }  # fmt: skip
    published = {}
    for name, spec in SERVICES.items():
        for port in spec.get("ports", []):
            host, host_port, container_port = port.split(":")
            assert host == "127.0.0.1", name
            assert host_port == container_port, name
            published[name] = container_port
    assert published == expected


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_every_service_has_a_health_check_or_is_a_one_shot(service: str) -> None:
    spec = SERVICES[service]
    check = spec.get("healthcheck")

    assert check is not None, f"{service}: no healthcheck"
    if service in ONE_SHOTS:
        assert check == {"disable": True}
        assert spec["restart"] == "no"
    else:
        assert check["test"][0] in ("CMD", "CMD-SHELL")
        assert check["interval"]
        assert check["retries"]
        assert spec.get("restart") == "unless-stopped"


def test_dependencies_wait_for_health_or_completion() -> None:
    for name, spec in SERVICES.items():
        for dependency, condition in (spec.get("depends_on") or {}).items():
            assert dependency in SERVICES, f"{name} -> {dependency}"
            if dependency in ONE_SHOTS:
                assert condition == {"condition": "service_completed_successfully"}
            else:
                assert condition == {"condition": "service_healthy"}, f"{name} -> {dependency}"
                assert "test" in SERVICES[dependency]["healthcheck"], dependency
    for name in APP_SERVICES - {"migrate", "simulators"}:
        assert {"postgres", "rabbitmq", "redis", "migrate"} <= SERVICES[name]["depends_on"].keys()
    assert SERVICES["migrate"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    assert SERVICES["kibana-loader"]["depends_on"] == {"kibana": {"condition": "service_healthy"}}


def test_named_volumes_are_declared_and_bind_mounts_exist() -> None:
    used = set()
    for name, spec in SERVICES.items():
        for volume in spec.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (REPO_ROOT / source).exists(), f"{name}: {source}"
            else:
                used.add(source)
    assert used == set(COMPOSE["volumes"])
    stateful = ("postgres", "rabbitmq", "elasticsearch", "prometheus", "alertmanager")
    for state in (*stateful, "grafana", "beat"):
        assert any(v.startswith(state) for v in used), state


def test_env_names_are_settings_paywave_reads() -> None:
    process_env = {
        "DJANGO_SETTINGS_MODULE",
        "PROMETHEUS_MULTIPROC_DIR",
        "PAYWAVE_PAYMENTS_PROCESSES",
    }
    for name in APP_SERVICES:
        names = set(SERVICES[name]["environment"])
        names = {n for n in names if not (name == "simulators" and n.startswith("SIM_"))}
        assert names - READ_BY_SETTINGS - process_env == set(), name
        assert names <= ENV_EXAMPLE, name
    interpolated = set(re.findall(r"\$\{(\w+)", (REPO_ROOT / "docker-compose.yml").read_text()))
    assert interpolated <= ENV_EXAMPLE  # what compose takes from .env is documented there


def test_logs_and_metrics_are_wired_to_their_services() -> None:
    app_env = SERVICES["api"]["environment"]
    assert (app_env["LOGSTASH_HOST"], app_env["LOGSTASH_PORT"]) == ("logstash", "5959")
    assert app_env["PROMETHEUS_MULTIPROC_DIR"] == "/tmp/prometheus"
    assert any(t.startswith("/tmp/prometheus") for t in SERVICES["api"]["tmpfs"])
    prometheus = yaml.safe_load((REPO_ROOT / "config/prometheus/prometheus.yml").read_text())
    targets = {
        target
        for job in prometheus["scrape_configs"]
        for group in job["static_configs"]
        for target in group["targets"]
    }
    for service, port in (("api", "8000"), ("payments-worker", "9808"), ("worker", "9808")):
        assert f"{service}:{port}" in targets
    for worker in ("payments-worker", "worker"):
        assert SERVICES[worker]["environment"]["PAYWAVE_WORKER_METRICS_PORT"] == "9808"
    assert "flower:5555" in targets
    # The payments worker's processes add up their counts for the first one to serve.
    payments = SERVICES["payments-worker"]
    assert payments["environment"]["PROMETHEUS_MULTIPROC_DIR"] == "/tmp/prometheus"
    assert any(t.startswith("/tmp/prometheus") for t in payments["tmpfs"])


def test_prometheus_loads_the_rules_and_alerts_through_alertmanager() -> None:
    prometheus = SERVICES["prometheus"]
    config = yaml.safe_load((REPO_ROOT / "config/prometheus/prometheus.yml").read_text())
    alertmanager = SERVICES["alertmanager"]

    assert "./config/prometheus/rules:/etc/prometheus/rules:ro" in prometheus["volumes"]
    assert config["rule_files"] == ["/etc/prometheus/rules/*.yml"]
    assert (REPO_ROOT / "config/prometheus/rules/paywave.yml").is_file()  # matches the glob
    (alertmanagers,) = config["alerting"]["alertmanagers"]
    assert alertmanagers["static_configs"] == [{"targets": ["alertmanager:9093"]}]
    assert prometheus["depends_on"]["alertmanager"] == {"condition": "service_healthy"}
    # Alertmanager reads the repository's file, read-only, from where its command says.
    mount = "./config/alertmanager/alertmanager.yml:/etc/alertmanager/alertmanager.yml:ro"
    assert mount in alertmanager["volumes"]
    assert "--config.file=/etc/alertmanager/alertmanager.yml" in alertmanager["command"]
    assert alertmanager["image"].rsplit(":", 1)[1].startswith("v")  # pinned, not latest
    assert "9093/-/ready" in alertmanager["healthcheck"]["test"][-1]


def test_worker_health_checks_ping_the_node_names_the_workers_take() -> None:
    from config.payments_workers import worker_argv

    first_payments = worker_argv(1, [])[-1].replace("%h", "$$HOSTNAME")
    payments = SERVICES["payments-worker"]["healthcheck"]["test"][1]
    default = SERVICES["worker"]["healthcheck"]["test"][1]

    assert payments.endswith(f"inspect ping -d {first_payments}")
    assert first_payments == "payments1@$$HOSTNAME"
    assert default.endswith("inspect ping -d default@$$HOSTNAME")
    assert "--hostname" not in SERVICES["payments-worker"]["command"]  # the launcher names them


def test_the_dockerfile_builds_one_slim_non_root_image() -> None:
    dockerfile = (REPO_ROOT / "Dockerfile").read_text()
    stages = re.findall(r"^FROM (\S+)", dockerfile, re.M)
    ignored = (REPO_ROOT / ".dockerignore").read_text().split()

    assert stages == ["python:3.11-slim", "python:3.11-slim"]  # build, runtime
    assert re.search(r"^USER 10001", dockerfile, re.M)
    assert "collectstatic --noinput" in dockerfile
    assert re.search(r"^HEALTHCHECK .*\n.*/healthz", dockerfile, re.M)
    assert re.search(r'^CMD \["gunicorn", "config.wsgi:application"', dockerfile, re.M)
    assert "COPY requirements.txt ." in dockerfile
    for path in (".env", ".venv", ".git", "tests", "requirements-ops.txt"):
        assert path in ignored, path
