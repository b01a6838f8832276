"""A circuit breaker per gateway, its state in the shared cache (Redis in deployments).

Closed: calls go through; each retryable failure adds one to a counter, each
success resets it. At PAYWAVE_CIRCUIT_THRESHOLD consecutive failures the circuit
opens: routing skips the gateway. After PAYWAVE_CIRCUIT_COOLDOWN_SECONDS it is
half-open: exactly one caller gets a trial call (an atomic `add`); its success,
or a healthy probe, closes the circuit, its failure opens it for another cooldown.
"""

import logging
import math
import time
from dataclasses import dataclass
from enum import StrEnum

from django.conf import settings
from django.core.cache import cache

from paywave.alerts import AlertKind, operator_alert

logger = logging.getLogger(__name__)

# Long enough to outlive any outage; a success deletes the keys anyway.
_KEY_TIMEOUT = 7 * 24 * 3600


class CircuitState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True)
class CircuitStatus:
    state: CircuitState
    failures: int
    opened_at: float | None


def _failures_key(code: str) -> str:
    return f"circuit:v1:{code}:failures"


def _opened_key(code: str) -> str:
    return f"circuit:v1:{code}:opened_at"


def _trial_key(code: str) -> str:
    return f"circuit:v1:{code}:trial"


def circuit_status(code: str) -> CircuitStatus:
    values = cache.get_many([_failures_key(code), _opened_key(code), _trial_key(code)])
    failures = int(values.get(_failures_key(code)) or 0)
    opened_at = values.get(_opened_key(code))
    if opened_at is None:
        return CircuitStatus(CircuitState.CLOSED, failures, None)
    cooled = time.time() - float(opened_at) >= settings.PAYWAVE_CIRCUIT_COOLDOWN_SECONDS
    state = CircuitState.HALF_OPEN if cooled else CircuitState.OPEN
    return CircuitStatus(state, failures, float(opened_at))


def circuit_allows(code: str) -> bool:
    """May a call go to this gateway now? In half-open, True for one caller per cooldown."""
    status = circuit_status(code)
    if status.state is CircuitState.CLOSED:
        return True
    if status.state is CircuitState.OPEN:
        return False
    # Cache timeouts are whole seconds: at least one, or the key would expire at once.
    trial_timeout = max(1, math.ceil(settings.PAYWAVE_CIRCUIT_COOLDOWN_SECONDS))
    return cache.add(_trial_key(code), 1, timeout=trial_timeout)


def circuit_record_success(code: str) -> None:
    values = cache.get_many([_failures_key(code), _opened_key(code)])
    if not values:
        return  # the common case: nothing to reset, no writes
    circuit_close(code, was_open=_opened_key(code) in values)


def circuit_close(
    code: str, *, was_open: bool | None = None, why: str = "a call succeeded"
) -> None:
    if was_open is None:
        was_open = cache.get(_opened_key(code)) is not None
    cache.delete_many([_failures_key(code), _opened_key(code), _trial_key(code)])
    if was_open:  # Kibana's circuit events: opened (an alert), closed, reopened
        logger.info(
            "circuit closed for gateway %s: %s",
            code,
            why,
            extra={"event": "circuit_closed", "gateway": code},
        )


def circuit_record_failure(code: str) -> bool:
    """Count a retryable failure; True when this one opened the circuit."""
    cache.add(_failures_key(code), 0, timeout=_KEY_TIMEOUT)
    try:
        failures = cache.incr(_failures_key(code))
    except ValueError:  # expired between add and incr
        cache.set(_failures_key(code), 1, timeout=_KEY_TIMEOUT)
        failures = 1
    opened_at = cache.get(_opened_key(code))
    if opened_at is not None:
        cooled = time.time() - float(opened_at) >= settings.PAYWAVE_CIRCUIT_COOLDOWN_SECONDS
        if cooled:  # the half-open trial failed: open for another cooldown
            cache.set(_opened_key(code), time.time(), timeout=_KEY_TIMEOUT)
            cache.delete(_trial_key(code))
            logger.warning(
                "circuit reopened for gateway %s: the trial call failed",
                code,
                extra={"event": "circuit_reopened", "gateway": code},
            )
        return False
    if failures < settings.PAYWAVE_CIRCUIT_THRESHOLD:
        return False
    if not cache.add(_opened_key(code), time.time(), timeout=_KEY_TIMEOUT):
        return False  # another worker opened it first
    operator_alert(
        AlertKind.CIRCUIT_OPENED,
        f"circuit opened for gateway {code} after {failures} consecutive failures",
        gateway=code,
        failures=failures,
    )
    return True
