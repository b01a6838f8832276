"""Gateway health: probed on beat, kept in the shared cache, shown to staff."""

import logging
from datetime import UTC, datetime
from typing import Any

from paywave.cache.json_state import json_state

from .base import GatewayError
from .circuit import circuit_half_open
from .models import Gateway
from .registry import adapter_for

logger = logging.getLogger(__name__)

# Several probe periods: a stopped beat shows as missing health, not as stale "up".
HEALTH_TTL_SECONDS = 120


def _key(code: str) -> str:
    return f"gateway:v2:{code}:health"


def gateway_health_get(code: str) -> dict[str, Any] | None:
    """{"status": "up"|"down", "latency_ms", "checked_at", "detail"} or None if never probed."""
    return json_state().get_many([_key(code)]).get(_key(code))


def gateway_probe(gateway: Gateway) -> dict[str, Any]:
    """Call the gateway's cheap authenticated endpoint; record and return what it said."""
    try:
        result = adapter_for(gateway).health()
        healthy, latency_ms, detail = result.healthy, result.latency_ms, result.detail
    except GatewayError as exc:
        healthy, latency_ms, detail = False, 0, f"{type(exc).__name__}: {exc.message}"
    except Exception as exc:  # a probe must never take the beat task down with it
        logger.exception("gateway health probe crashed", extra={"gateway": gateway.code})
        healthy, latency_ms, detail = False, 0, f"{type(exc).__name__}"
    health = {
        "status": "up" if healthy else "down",
        "latency_ms": latency_ms,
        "checked_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "detail": detail[:200],
    }
    json_state().set(_key(gateway.code), health, HEALTH_TTL_SECONDS)
    if healthy:  # the next call is the trial: a success closes the circuit
        circuit_half_open(gateway.code, why="the health probe found it up")
    return health


def gateways_probe_all() -> dict[str, dict[str, Any]]:
    gateways = Gateway.objects.filter(enabled=True)
    return {gateway.code: gateway_probe(gateway) for gateway in gateways}
