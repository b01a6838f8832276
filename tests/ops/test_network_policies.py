"""The chart's NetworkPolicies, rendered by real Helm and evaluated as Kubernetes would.

`allowed()` applies the NetworkPolicy rules (a pod selected by no policy of a
direction is open in that direction; otherwise some rule of a selecting policy must
match the peer and the port) to the pods the chart itself renders, so each test
reads as "who can reach whom". Schemas are checked in test_helm.py.
"""

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.ops.conftest import CHART, chart_render

REPO_ROOT = Path(__file__).resolve().parents[2]
NAMESPACE = "payments"
PRODUCTION_VALUES = yaml.safe_load((CHART / "values-production.yaml").read_text())


def render(values: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    return chart_render(values, NAMESPACE)


@dataclass(frozen=True)
class Endpoint:
    """A pod (namespace and labels) or an address outside the cluster (no labels)."""

    ip: str
    namespace: str = ""
    labels: dict[str, str] | None = None
    namespace_labels: dict[str, str] = field(default_factory=dict)


def pod(ip: str, namespace: str = NAMESPACE, **labels: str) -> Endpoint:
    return Endpoint(ip, namespace, labels, {"kubernetes.io/metadata.name": namespace})


def outside(ip: str) -> Endpoint:
    return Endpoint(ip)


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for expression in selector.get("matchExpressions") or []:
        key, operator, values = expression["key"], expression["operator"], expression.get("values")
        present = key in labels
        if operator == "In" and not (present and labels[key] in values):
            return False
        if operator == "NotIn" and present and labels[key] in values:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
    return True


def peer_matches(peer: dict[str, Any], other: Endpoint, policy_namespace: str) -> bool:
    if "ipBlock" in peer:
        address = ipaddress.ip_address(other.ip)
        block = peer["ipBlock"]
        network = ipaddress.ip_network(block["cidr"])
        if address.version != network.version or address not in network:
            return False
        return not any(
            address in ipaddress.ip_network(cidr)
            for cidr in block.get("except", [])
            if ipaddress.ip_network(cidr).version == address.version
        )
    if other.labels is None:
        return False  # selectors match pods only
    if "namespaceSelector" in peer:
        if not selects(peer["namespaceSelector"], other.namespace_labels):
            return False
    elif other.namespace != policy_namespace:
        return False
    return "podSelector" not in peer or selects(peer["podSelector"], other.labels)


def port_matches(ports: list[dict[str, Any]] | None, port: int, protocol: str) -> bool:
    return not ports or any(
        p.get("protocol", "TCP") == protocol and p.get("port") in (None, port) for p in ports
    )


def allowed(
    documents: list[dict[str, Any]],
    direction: str,
    subject: Endpoint,
    other: Endpoint,
    port: int,
    protocol: str = "TCP",
) -> bool:
    """May `other` reach `subject` (Ingress), or `subject` reach `other` (Egress)?"""
    rules_key, peers_key = ("ingress", "from") if direction == "Ingress" else ("egress", "to")
    selecting = [
        doc
        for doc in documents
        if doc["kind"] == "NetworkPolicy"
        and direction in doc["spec"]["policyTypes"]
        and subject.namespace == NAMESPACE
        and selects(doc["spec"]["podSelector"], subject.labels or {})
    ]
    if not selecting:
        return True
    for policy in selecting:
        for rule in policy["spec"].get(rules_key) or []:
            peers = rule.get(peers_key)  # none: every peer
            if port_matches(rule.get("ports"), port, protocol) and (
                not peers or any(peer_matches(peer, other, NAMESPACE) for peer in peers)
            ):
                return True
    return False


def workloads(documents: list[dict[str, Any]]) -> dict[str, Endpoint]:
    """The release's pods, by component, at made-up pod addresses."""
    pods = {}
    for index, doc in enumerate(d for d in documents if d["kind"] in ("Deployment", "Job")):
        labels = doc["spec"]["template"]["metadata"]["labels"]
        pods[labels["app.kubernetes.io/component"]] = pod(f"10.244.1.{index + 10}", **labels)
    return pods


@pytest.fixture(scope="module")
def default() -> list[dict[str, Any]]:
    return render()


@pytest.fixture(scope="module")
def pods(default: list[dict[str, Any]]) -> dict[str, Endpoint]:
    return workloads(default)


INGRESS_CONTROLLER = pod("10.244.9.1", "ingress-nginx", **{"app.kubernetes.io/name": "nginx"})
PROMETHEUS = pod("10.244.8.1", "monitoring", **{"app.kubernetes.io/name": "prometheus"})
SOME_OTHER_APP = pod("10.244.7.1", "shop", app="shop")
A_POD_OF_OURS_NAMESPACE = pod("10.244.7.2", NAMESPACE, app="something-else")
KUBE_DNS = pod("10.244.0.10", "kube-system", **{"k8s-app": "kube-dns"})
KUBE_PROXY = pod("10.244.0.11", "kube-system", **{"k8s-app": "kube-proxy"})
STRIPE = outside("54.187.174.169")
METADATA_SERVICE = outside("169.254.169.254")
MANAGED_POSTGRESQL = outside("10.20.0.5")


def test_every_pod_of_the_release_is_isolated_both_ways(
    default: list[dict[str, Any]], pods: dict[str, Endpoint]
) -> None:
    for component, endpoint in pods.items():
        assert not allowed(default, "Ingress", endpoint, SOME_OTHER_APP, 8000), component
        if component != "simulators":  # the sandbox's stand-ins for the internet
            assert not allowed(default, "Egress", endpoint, SOME_OTHER_APP, 8000), component


def test_the_api_takes_traffic_from_the_ingress_controller_only(
    default: list[dict[str, Any]], pods: dict[str, Endpoint]
) -> None:
    api = pods["api"]

    assert allowed(default, "Ingress", api, INGRESS_CONTROLLER, 8000)
    assert not allowed(default, "Ingress", api, INGRESS_CONTROLLER, 9808)
    for caller in (SOME_OTHER_APP, A_POD_OF_OURS_NAMESPACE, pods["worker-payments"], STRIPE):
        assert not allowed(default, "Ingress", api, caller, 8000), caller
    assert allowed(default, "Ingress", api, PROMETHEUS, 8000)  # /metrics, allow-listed by the app
    assert allowed(default, "Ingress", api, pods["simulators"], 8000)  # sandbox callbacks


def test_the_ingress_controllers_namespace_is_a_value() -> None:
    traefik = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "traefik"}},
               "podSelector": {"matchLabels": {"app.kubernetes.io/name": "traefik"}}}  # fmt: skip
    documents = render({"networkPolicy": {"ingressController": traefik}})
    api = workloads(documents)["api"]

    traefik_pod = pod("10.244.9.5", "traefik", **{"app.kubernetes.io/name": "traefik"})
    assert allowed(documents, "Ingress", api, traefik_pod, 8000)
    other_pod_there = pod("10.244.9.6", "traefik", **{"app.kubernetes.io/name": "other"})
    assert not allowed(documents, "Ingress", api, other_pod_there, 8000)
    assert not allowed(documents, "Ingress", api, INGRESS_CONTROLLER, 8000)


@pytest.mark.parametrize(
    ("component", "port"), [("worker-payments", 9808), ("worker-default", 9808), ("flower", 5555)]
)
def test_metrics_are_reachable_from_the_monitoring_namespace_only(
    default: list[dict[str, Any]], pods: dict[str, Endpoint], component: str, port: int
) -> None:
    target = pods[component]

    assert allowed(default, "Ingress", target, PROMETHEUS, port)
    for caller in (INGRESS_CONTROLLER, SOME_OTHER_APP, A_POD_OF_OURS_NAMESPACE, pods["api"]):
        assert not allowed(default, "Ingress", target, caller, port), caller
    assert not allowed(default, "Ingress", target, PROMETHEUS, 8000)


def test_beat_and_the_migration_job_take_no_traffic(
    default: list[dict[str, Any]], pods: dict[str, Endpoint]
) -> None:
    for component in ("beat", "migrate"):
        for caller in (PROMETHEUS, INGRESS_CONTROLLER, pods["api"]):
            assert not allowed(default, "Ingress", pods[component], caller, 8000), component


@pytest.mark.parametrize("component", ["api", "worker-payments", "worker-default", "beat",
                                       "flower", "migrate"])  # fmt: skip
def test_paywave_reaches_its_services_the_gateways_and_dns_only(
    default: list[dict[str, Any]], pods: dict[str, Endpoint], component: str
) -> None:
    source = pods[component]

    assert allowed(default, "Egress", source, KUBE_DNS, 53, "UDP")
    assert allowed(default, "Egress", source, KUBE_DNS, 53, "TCP")
    assert not allowed(default, "Egress", source, KUBE_PROXY, 53, "UDP")
    assert allowed(default, "Egress", source, MANAGED_POSTGRESQL, 5432)
    assert allowed(default, "Egress", source, pod("10.244.3.3", "data", app="rabbitmq"), 5672)
    assert allowed(default, "Egress", source, pod("10.244.3.4", "data", app="redis"), 6379)
    assert allowed(default, "Egress", source, STRIPE, 443)  # gateways, wallet apps' webhooks
    assert allowed(default, "Egress", source, pods["simulators"], 8900)  # the sandbox's
    assert not allowed(default, "Egress", source, METADATA_SERVICE, 443)
    assert not allowed(default, "Egress", source, METADATA_SERVICE, 80)
    assert not allowed(default, "Egress", source, outside("10.0.0.1"), 443)  # inside the VPC
    assert not allowed(default, "Egress", source, SOME_OTHER_APP, 443)
    assert not allowed(default, "Egress", source, STRIPE, 80)
    assert not allowed(default, "Egress", source, outside("8.8.8.8"), 25)


def test_worker_metrics_listen_on_the_pod_address_with_the_apis_allow_list(
    default: list[dict[str, Any]],
) -> None:
    (config,) = [d for d in default if d["kind"] == "ConfigMap"]
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert config["data"]["PAYWAVE_METRICS_ALLOW"] == values["metrics"]["allow"]
    workers = [
        d for d in default if d["kind"] == "Deployment" and "-worker-" in d["metadata"]["name"]
    ]
    assert len(workers) == 2
    for worker in workers:
        (container,) = worker["spec"]["template"]["spec"]["containers"]
        env = {e["name"]: e for e in container["env"]}
        assert env["PAYWAVE_WORKER_METRICS_ADDR"]["valueFrom"] == {
            "fieldRef": {"fieldPath": "status.podIP"}
        }
        assert env["PAYWAVE_WORKER_METRICS_PORT"]["value"] == "9808"
        config_maps = [
            s["configMapRef"]["name"] for s in container["envFrom"] if "configMapRef" in s
        ]
        assert config_maps == [config["metadata"]["name"]]  # PAYWAVE_METRICS_ALLOW, as the API


def test_the_production_example_has_no_sandbox_paths_and_reaches_its_mail_server() -> None:
    documents = render(PRODUCTION_VALUES)
    pods = workloads(documents)

    assert "simulators" not in pods
    api = pods["api"]
    nginx = pod("10.244.9.1", "ingress-nginx", **{"app.kubernetes.io/name": "ingress-nginx"})
    assert allowed(documents, "Ingress", api, nginx, 8000)
    assert not allowed(documents, "Ingress", api, A_POD_OF_OURS_NAMESPACE, 8000)
    notifications = pods["worker-notifications"]
    assert allowed(documents, "Egress", notifications, outside("52.1.2.3"), 587)  # EMAIL_URL
    assert allowed(documents, "Egress", notifications, STRIPE, 443)
    assert not allowed(documents, "Egress", notifications, METADATA_SERVICE, 443)
    logstash = pod("10.244.5.5", "logging", **{"app.kubernetes.io/name": "logstash"})
    assert allowed(documents, "Egress", notifications, logstash, 5959)


def test_network_policies_can_be_left_to_the_cluster() -> None:
    documents = render({"networkPolicy": {"enabled": False}})

    assert not [d for d in documents if d["kind"] == "NetworkPolicy"]
