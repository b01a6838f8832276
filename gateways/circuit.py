"""A circuit breaker per gateway, its state shared by every process (JSON in Redis).

Closed: calls go through; every failure of any kind (a reset, a timeout, a 5xx: what
the engine counts, `circuit_record_failure`) adds one to a counter, each success
resets it (a success of a call let through while none was counted has nothing to
reset, and reads nothing). At PAYWAVE_CIRCUIT_THRESHOLD consecutive failures the
circuit opens: routing sends new payments straight to the next gateway. The health
probe half-opens it as soon as the gateway answers (so does
PAYWAVE_CIRCUIT_COOLDOWN_SECONDS, in case beat is not running); half-open, exactly one
caller gets a trial call (an atomic `add`): its success closes the circuit, its failure
opens it again.

Every change (opened, half-open, closed, reopened) is logged with an `event` field
for Kibana and counted in `paywave_gateway_circuit_changes_total`.
"""

import logging
import math
import time
from dataclasses import dataclass
from enum import StrEnum

from django.conf import settings

from paywave.cache.json_state import json_state
from paywave.observability.alerts import AlertKind, operator_alert
from paywave.observability.metrics import record_circuit_change

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
    return f"circuit:v2:{code}:failures"


def _opened_key(code: str) -> str:
    return f"circuit:v2:{code}:opened_at"


def _probed_up_key(code: str) -> str:
    return f"circuit:v2:{code}:probed_up"


def _trial_key(code: str) -> str:
    return f"circuit:v2:{code}:trial"


def _keys(code: str) -> list[str]:
    return [_failures_key(code), _opened_key(code), _probed_up_key(code), _trial_key(code)]


def circuit_status(code: str) -> CircuitStatus:
    values = json_state().get_many(_keys(code))
    failures = int(values.get(_failures_key(code)) or 0)
    opened_at = values.get(_opened_key(code))
    if opened_at is None:
        return CircuitStatus(CircuitState.CLOSED, failures, None)
    return CircuitStatus(_open_or_half(code, float(opened_at), values), failures, float(opened_at))


def _open_or_half(code: str, opened_at: float, values: dict) -> CircuitState:
    cooled = time.time() - opened_at >= settings.PAYWAVE_CIRCUIT_COOLDOWN_SECONDS
    probed_up = values.get(_probed_up_key(code)) is not None
    return CircuitState.HALF_OPEN if cooled or probed_up else CircuitState.OPEN


@dataclass(frozen=True)
class CircuitPass:
    """A call the circuit let through. `clean`: closed, with no failure counted."""

    clean: bool


def circuit_pass(code: str) -> CircuitPass | None:
    """May a call go to this gateway now (None: no)? In half-open, one caller per cooldown."""
    status = circuit_status(code)
    if status.state is CircuitState.CLOSED:
        return CircuitPass(clean=status.failures == 0)
    if status.state is CircuitState.OPEN:
        return None
    # Whole seconds: at least one, or the key would expire at once.
    trial_timeout = max(1, math.ceil(settings.PAYWAVE_CIRCUIT_COOLDOWN_SECONDS))
    granted = json_state().add(_trial_key(code), 1, trial_timeout)
    if granted and not json_state().get_many([_probed_up_key(code)]):
        # Half-open by the cooldown (no probe said so): this trial is the change to log.
        _changed(code, CircuitState.HALF_OPEN, "the cooldown passed: one trial call", logging.INFO)
    return CircuitPass(clean=False) if granted else None


def circuit_record_success(code: str, *, let_through: CircuitPass | None = None) -> None:
    """A call succeeded: the failures counted reset, an open circuit closes.

    Given the pass of the call (`let_through`) and it was clean, nothing is read or
    written (the common case, one Redis round trip less a charge): a failure counted
    since came from a call that ended after this one began, newer news than its success,
    and stays for the next success whose call began after it."""
    if let_through is not None and let_through.clean:
        return
    values = json_state().get_many([_failures_key(code), _opened_key(code)])
    if not values:
        return  # the common case: nothing to reset, no writes
    _close(code, was_open=_opened_key(code) in values, why="a call succeeded")


def circuit_half_open(code: str, *, why: str) -> bool:
    """An open circuit gets its trial now (the gateway answers again); True if it was open."""
    state = json_state()
    if not state.get_many([_opened_key(code)]):
        return False
    if not state.add(_probed_up_key(code), time.time(), _KEY_TIMEOUT):
        return False  # half-open already
    _changed(code, CircuitState.HALF_OPEN, why, logging.INFO)
    return True


def circuit_close(code: str, *, why: str) -> None:
    _close(code, was_open=None, why=why)


def _close(code: str, *, was_open: bool | None, why: str) -> None:
    state = json_state()
    if was_open is None:
        was_open = bool(state.get_many([_opened_key(code)]))
    state.delete_many(_keys(code))
    if was_open:
        _changed(code, CircuitState.CLOSED, why, logging.INFO)


def circuit_record_failure(code: str) -> bool:
    """Count a failed call; True when this one opened the circuit."""
    state = json_state()
    failures = state.incr(_failures_key(code), _KEY_TIMEOUT)
    values = state.get_many([_opened_key(code), _probed_up_key(code)])
    opened_at = values.get(_opened_key(code))
    if opened_at is not None:
        if _open_or_half(code, float(opened_at), values) is CircuitState.HALF_OPEN:
            # The trial failed: open for another cooldown, until the next healthy probe.
            state.set(_opened_key(code), time.time(), _KEY_TIMEOUT)
            state.delete_many([_probed_up_key(code), _trial_key(code)])
            _changed(code, CircuitState.OPEN, "the trial call failed", logging.WARNING,
                     event="circuit_reopened")  # fmt: skip
        return False
    if failures < settings.PAYWAVE_CIRCUIT_THRESHOLD:
        return False
    if not state.add(_opened_key(code), time.time(), _KEY_TIMEOUT):
        return False  # another worker opened it first
    record_circuit_change(code, CircuitState.OPEN.value)
    operator_alert(
        AlertKind.CIRCUIT_OPENED,
        f"circuit opened for gateway {code} after {failures} consecutive failures",
        gateway=code,
        failures=failures,
        event="circuit_opened",  # beside `alert`, so `event: circuit_*` finds every change
    )
    return True


def _changed(
    code: str, to: CircuitState, why: str, level: int, *, event: str | None = None
) -> None:
    record_circuit_change(code, to.value)
    logger.log(
        level,
        "circuit %s for gateway %s: %s",
        "reopened" if event == "circuit_reopened" else to.value.replace("_", "-"),
        code,
        why,
        extra={"event": event or f"circuit_{to.value}", "gateway": code},
    )
