"""The simulators' memory: charges, refunds, saved idempotent answers, per-gateway objects.

One re-entrant lock guards everything; handlers hold it while they read and change
state (all in memory, so briefly) and never while sleeping or calling out.
"""

import collections
import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from gateways.simulators.routing import Response


def _now() -> float:
    return time.time()


@dataclass
class ChargeRecord:
    gateway: str
    id: str
    idempotency_key: str
    reference: str  # the PayWave payment id, as each gateway carries it
    amount: int  # minor units
    currency: str  # ISO 4217, upper case
    status: str  # the gateway's own word
    amount_refunded: int = 0
    created_at: float = field(default_factory=_now)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["created_at"] = datetime.fromtimestamp(self.created_at, UTC).isoformat()
        return data


@dataclass
class RefundRecord:
    gateway: str
    id: str
    charge_id: str
    idempotency_key: str
    amount: int
    status: str
    created_at: float = field(default_factory=_now)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["created_at"] = datetime.fromtimestamp(self.created_at, UTC).isoformat()
        return data


@dataclass(frozen=True)
class RequestRecord:
    """One request that reached a gateway's routes, and what it met."""

    gateway: str
    method: str
    path: str
    verdict: str  # the fault verdict: pass, error, timeout, down
    status: int | None  # the answer's status; None when none was sent (timeout, reset)
    at: float = field(default_factory=_now)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["at"] = datetime.fromtimestamp(self.at, UTC).isoformat()
        return data


REQUEST_LOG_SIZE = 10_000  # the newest requests kept; enough for any test or demo run


@dataclass(frozen=True)
class _SavedAnswer:
    fingerprint: str
    response: Response


class Store:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self._charges: dict[tuple[str, str], ChargeRecord] = {}
            self._refunds: dict[tuple[str, str], RefundRecord] = {}
            self._answers: dict[tuple[str, str], _SavedAnswer] = {}
            self._buckets: dict[str, dict[str, Any]] = {}
            self._counter = itertools.count(1)
            self._requests: collections.deque[RequestRecord] = collections.deque(
                maxlen=REQUEST_LOG_SIZE
            )

    def next_number(self) -> int:
        with self.lock:
            return next(self._counter)

    def bucket(self, name: str) -> dict[str, Any]:
        """A gateway's own objects (payment intents, cobs, tokens...), by id. Hold the lock."""
        with self.lock:
            return self._buckets.setdefault(name, {})

    # Charges and refunds, as the control API lists them.

    def add_charge(self, record: ChargeRecord) -> ChargeRecord:
        with self.lock:
            self._charges[(record.gateway, record.id)] = record
            return record

    def charge(self, gateway: str, charge_id: str) -> ChargeRecord | None:
        with self.lock:
            return self._charges.get((gateway, charge_id))

    def update_charge(self, gateway: str, charge_id: str, **changes: Any) -> None:
        with self.lock:
            record = self._charges.get((gateway, charge_id))
            if record is not None:
                for name, value in changes.items():
                    setattr(record, name, value)

    def charges(
        self, *, gateway: str = "", reference: str = "", idempotency_key: str = ""
    ) -> list[ChargeRecord]:
        with self.lock:
            return [
                record
                for record in self._charges.values()
                if (not gateway or record.gateway == gateway)
                and (not reference or record.reference == reference)
                and (not idempotency_key or record.idempotency_key == idempotency_key)
            ]

    def add_refund(self, record: RefundRecord) -> RefundRecord:
        with self.lock:
            self._refunds[(record.gateway, record.id)] = record
            return record

    def refunds(self, *, gateway: str = "", charge_id: str = "") -> list[RefundRecord]:
        with self.lock:
            return [
                record
                for record in self._refunds.values()
                if (not gateway or record.gateway == gateway)
                and (not charge_id or record.charge_id == charge_id)
            ]

    # Every gateway request, in arrival order (for counting calls: tokens, retries).

    def log_request(self, record: RequestRecord) -> None:
        with self.lock:
            self._requests.append(record)

    def requests(self, *, gateway: str = "", path: str = "") -> list[RequestRecord]:
        with self.lock:
            return [
                record
                for record in self._requests
                if (not gateway or record.gateway == gateway) and (not path or record.path == path)
            ]

    # Idempotency: the first answer for a key is saved and given again.

    def once(
        self,
        gateway: str,
        key: str,
        fingerprint: str,
        produce: Callable[[], Response],
        *,
        mismatch: Callable[[], Response] | None = None,
        replay_headers: dict[str, str] | None = None,
    ) -> Response:
        """Run `produce` once per (gateway, key) and answer repeats with the saved answer.

        A repeat whose fingerprint differs gets `mismatch()` when given (Stripe refuses
        it); otherwise the saved answer. Concurrent repeats wait for the first to finish
        instead of being refused, so exactly one of them does the work.
        """
        if not key:
            with self.lock:
                return produce()
        with self.lock:
            saved = self._answers.get((gateway, key))
            if saved is not None:
                if mismatch is not None and saved.fingerprint != fingerprint:
                    return mismatch()
                return saved.response.with_headers(**(replay_headers or {}))
            response = produce()
            if response.replayable and response.status < 500:
                self._answers[(gateway, key)] = _SavedAnswer(fingerprint, response)
            return response
