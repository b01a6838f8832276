"""Fault knobs per gateway: latency, errors, timeouts, outages; reproducible under a seed.

Three knobs are a gateway's answers rather than its failures: what new PIX codes carry
(`br_code`), how new refunds end (`refund_status`) and whether PayPal captures are
declined (`capture_status`).
"""

import enum
import random
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from typing import Any, TypeVar

from gateways.simulators.routing import GATEWAYS

DEFAULT_HANG_MS = 30_000
_Kind = TypeVar("_Kind", bound=enum.StrEnum)


class FaultError(ValueError):
    """A fault setting out of range or unknown."""


class DownMode(enum.StrEnum):
    """How a gateway that is down fails each request (README.md has the client's view)."""

    REFUSE = "refuse"  # its own port stops listening; elsewhere reset unread
    RESET_BEFORE_READ = "reset_before_read"  # reset before the request is read
    RESET = "reset"  # read the request, then reset the connection without handling it
    RESET_AFTER_READ = "reset_after_read"  # handle (and record) it, then reset: answer lost
    HANG = "hang"  # handle (and record) it, then hold hang_ms and close unanswered
    BAD_GATEWAY = "502"  # handle (and record) it, then answer 502: a proxy lost the answer
    UNAVAILABLE = "503"  # answer 503 without handling it: clearly not processed
    GATEWAY_TIMEOUT = "504"  # handle (and record) it, then answer 504

    @property
    def reads_request(self) -> bool:
        return self not in (DownMode.REFUSE, DownMode.RESET_BEFORE_READ)

    @property
    def handles_request(self) -> bool:
        return self in _HANDLING_MODES


class BrCodeFault(enum.StrEnum):
    """What the BR Codes of a PIX gateway's new charges carry (a gateway's bug, not an outage)."""

    VALID = "valid"
    WRONG_AMOUNT = "wrong_amount"  # a well-formed code, for one centavo more than the charge
    BAD_CRC = "bad_crc"  # the charge's code with its CRC's last digit changed: malformed

    def amount(self, charged: int) -> int:
        """The amount the code states for a charge of `charged`."""
        return charged + 1 if self is BrCodeFault.WRONG_AMOUNT else charged

    def finish(self, code: str) -> str:
        if self is not BrCodeFault.BAD_CRC:
            return code
        return code[:-1] + ("1" if code[-1] == "0" else "0")


class RefundFault(enum.StrEnum):
    """How the refunds a gateway makes while it is set end (its own word, not an outage)."""

    SUCCEEDED = "succeeded"  # settled at once, as in calm times
    PENDING = "pending"  # still processing; read back later, it ends as the knob then says
    FAILED = "failed"  # the payer's bank refused it: nothing was returned

    def settles(self) -> bool:
        """Whether a pending refund read back now ends (as this says)."""
        return self is not RefundFault.PENDING


class CaptureFault(enum.StrEnum):
    """How the captures a gateway makes while it is set end (PayPal: the payer's funding)."""

    COMPLETED = "completed"  # captured, as in calm times
    DECLINED = "declined"  # the payer's funding source refused: 422 INSTRUMENT_DECLINED


_HANDLING_MODES = frozenset(
    {DownMode.RESET_AFTER_READ, DownMode.HANG, DownMode.BAD_GATEWAY, DownMode.GATEWAY_TIMEOUT}
)


@dataclass(frozen=True)
class FaultSettings:
    latency_ms: int = 0  # sleep before handling the request
    error_rate: float = 0.0  # answer error_status without handling the request
    error_status: int = 500  # what an error_rate fault answers: 400..599 (e.g. 429, 502, 503)
    timeout_rate: float = 0.0  # handle (and record), then hang for hang_ms and close unanswered
    down: bool = False
    down_mode: DownMode = DownMode.RESET
    seed: int | None = None  # None: a fresh, unpredictable sequence
    hang_ms: int = DEFAULT_HANG_MS
    br_code: BrCodeFault = BrCodeFault.VALID  # PIX gateways: what new charges' codes carry
    refund_status: RefundFault = RefundFault.SUCCEEDED  # how new (and pending) refunds end
    capture_status: CaptureFault = CaptureFault.COMPLETED  # PayPal: whether captures decline

    @classmethod
    def from_json(cls, data: Any, *, default_hang_ms: int = DEFAULT_HANG_MS) -> "FaultSettings":
        if not isinstance(data, dict):
            raise FaultError("fault settings must be a JSON object")
        known = {f.name for f in fields(cls)}
        if unknown := sorted(set(data) - known):
            raise FaultError(f"unknown fault setting(s): {', '.join(unknown)}")
        values: dict[str, Any] = {**asdict(cls(hang_ms=default_hang_ms)), **data}
        for name in ("latency_ms", "hang_ms"):
            values[name] = _non_negative_int(name, values[name])
        for name in ("error_rate", "timeout_rate"):
            values[name] = _rate(name, values[name])
        values["error_status"] = _error_status(values["error_status"])
        if not isinstance(values["down"], bool):
            raise FaultError("down must be true or false")
        values["down_mode"] = _choice("down_mode", DownMode, values["down_mode"])
        values["br_code"] = _choice("br_code", BrCodeFault, values["br_code"])
        values["refund_status"] = _choice("refund_status", RefundFault, values["refund_status"])
        values["capture_status"] = _choice("capture_status", CaptureFault, values["capture_status"])
        seed = values["seed"]
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise FaultError("seed must be an integer or null")
        return cls(**values)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["down_mode"] = self.down_mode.value
        data["br_code"] = self.br_code.value
        data["refund_status"] = self.refund_status.value
        data["capture_status"] = self.capture_status.value
        return data


def _choice(name: str, kind: type[_Kind], value: Any) -> _Kind:
    try:
        return kind(str(value))
    except ValueError as exc:
        kinds = ", ".join(member.value for member in kind)
        raise FaultError(f"{name} must be one of {kinds}") from exc


def _non_negative_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise FaultError(f"{name} must be a non-negative integer (milliseconds)")
    return value


def _error_status(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 400 <= value <= 599:
        raise FaultError("error_status must be an HTTP error status from 400 to 599")
    return value


def _rate(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise FaultError(f"{name} must be a number from 0 to 1")
    return float(value)


class Verdict(enum.Enum):
    PASS = "pass"  # noqa: S105 (a verdict, not a password)
    ERROR = "error"
    TIMEOUT = "timeout"
    DOWN = "down"


def verdict_labels() -> list[str]:
    """What the request log and the counts call each fate: a down verdict names its mode."""
    plain = [verdict.value for verdict in Verdict if verdict is not Verdict.DOWN]
    return plain + [f"{Verdict.DOWN.value}:{mode.value}" for mode in DownMode]


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    latency_s: float
    hang_s: float
    down_mode: DownMode
    error_status: int = 500

    @property
    def label(self) -> str:
        if self.verdict is Verdict.DOWN:
            return f"{Verdict.DOWN.value}:{self.down_mode.value}"
        return self.verdict.value

    @property
    def resets_unread(self) -> bool:
        """Down in a mode that resets the connection before the request is read."""
        return self.verdict is Verdict.DOWN and not self.down_mode.reads_request


@dataclass
class _GatewayFaults:
    settings: FaultSettings
    rng: random.Random
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(verdict_labels(), 0))


class FaultBook:
    """Current settings and random sequence of every gateway; safe across threads.

    `on_change`, if set, is called (outside the lock) after any gateway's settings change,
    before the change is answered: the server opens or closes gateway ports there.
    """

    def __init__(self, *, default_hang_ms: int = DEFAULT_HANG_MS) -> None:
        self.default_hang_ms = default_hang_ms
        self.on_change: Callable[[], None] | None = None
        self._lock = threading.Lock()
        self.reset()

    def reset(self, gateway: str | None = None) -> None:
        with self._lock:
            calm = FaultSettings(hang_ms=self.default_hang_ms)
            if gateway is None:
                self._state = {name: self._fresh(calm) for name in GATEWAYS}
            else:
                self._state[gateway] = self._fresh(calm)
        self._changed()

    @staticmethod
    def _fresh(settings: FaultSettings) -> _GatewayFaults:
        # Fault injection, not security: a seeded PRNG is the point.
        return _GatewayFaults(settings, random.Random(settings.seed))  # noqa: S311

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()

    def parse(self, data: Any) -> FaultSettings:
        return FaultSettings.from_json(data, default_hang_ms=self.default_hang_ms)

    def set(self, gateway: str, settings: FaultSettings) -> FaultSettings:
        with self._lock:
            self._state[gateway] = self._fresh(settings)
            current = self._state[gateway].settings
        self._changed()
        return current

    def settings(self, gateway: str) -> FaultSettings:
        with self._lock:
            return self._state[gateway].settings

    def refuses(self, gateway: str) -> bool:
        """Whether the gateway's own port must stop listening."""
        settings = self.settings(gateway)
        return settings.down and settings.down_mode is DownMode.REFUSE

    def decide(self, gateway: str) -> Decision:
        """The fate of one request. Two draws per request whatever the settings, so a seed
        gives the same sequence of verdicts for the same sequence of requests."""
        with self._lock:
            return self._decide(self._state[gateway])

    def decide_unread(self, gateway: str) -> Decision | None:
        """The fate of a connection to the gateway's own port before anything is read:
        decided (and counted) only when the gateway resets such connections unread."""
        with self._lock:
            state = self._state[gateway]
            if not state.settings.down or state.settings.down_mode.reads_request:
                return None
            return self._decide(state)

    @staticmethod
    def _decide(state: _GatewayFaults) -> Decision:
        settings = state.settings
        error_draw, timeout_draw = state.rng.random(), state.rng.random()
        if settings.down:
            verdict = Verdict.DOWN
        elif error_draw < settings.error_rate:
            verdict = Verdict.ERROR
        elif timeout_draw < settings.timeout_rate:
            verdict = Verdict.TIMEOUT
        else:
            verdict = Verdict.PASS
        decision = Decision(
            verdict=verdict,
            latency_s=settings.latency_ms / 1000,
            hang_s=settings.hang_ms / 1000,
            down_mode=settings.down_mode,
            error_status=settings.error_status,
        )
        state.counts[decision.label] += 1
        return decision

    def to_json(self) -> dict[str, Any]:
        with self._lock:
            return {
                name: {**state.settings.to_json(), "counts": dict(state.counts)}
                for name, state in self._state.items()
            }
