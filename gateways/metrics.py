"""What Prometheus reads of the gateways at scrape time: each circuit, and the last probe.

Registered with the scrape-time registry of paywave.observability.metrics by GatewaysConfig.ready.
Read from the shared cache, never failing a scrape.
"""

import logging
from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from .circuit import circuit_status
from .health import gateway_health_get
from .models import Gateway

logger = logging.getLogger(__name__)

CIRCUIT_STATES = ("closed", "half_open", "open")


class CircuitCollector(Collector):
    """Each gateway's circuit (1 for its current state) and failure count, from the cache."""

    def collect(self) -> Iterator[Metric]:
        state = GaugeMetricFamily(
            "paywave_gateway_circuit_state",
            "Circuit breaker state per gateway: 1 for the current state.",
            labels=["gateway", "state"],
        )
        failures = GaugeMetricFamily(
            "paywave_gateway_circuit_failures",
            "Consecutive failed calls counted by the circuit breaker.",
            labels=["gateway"],
        )
        health = GaugeMetricFamily(
            "paywave_gateway_health_up",
            "Last health probe (beat): 1 up, 0 down; absent if not probed lately.",
            labels=["gateway"],
        )
        try:
            # A disabled gateway takes no calls: its circuit is no one's concern.
            enabled = Gateway.objects.filter(enabled=True)
            for code in enabled.values_list("code", flat=True).order_by("code"):
                status = circuit_status(code)
                for name in CIRCUIT_STATES:
                    state.add_metric([code, name], 1.0 if status.state.value == name else 0.0)
                failures.add_metric([code], float(status.failures))
                probed = gateway_health_get(code)
                if probed:
                    health.add_metric([code], 1.0 if probed.get("status") == "up" else 0.0)
        except Exception:
            logger.warning("circuit state not collected", exc_info=True)
        yield from (state, failures, health)


circuit_collector = CircuitCollector()
