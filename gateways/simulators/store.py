"""The simulators' memory: charges, refunds, saved idempotent answers, per-gateway objects.

One re-entrant lock guards everything; handlers hold it while they read and change
state (all in memory, so briefly) and never while sleeping or calling out.

With a state file (`Store.attach(path)`, `--state-file`) the state also lives in a
SQLite database (WAL, synchronous=FULL): it is loaded at start, and whenever the
outermost hold of the lock ends, every entry touched under it that changed is
written in one transaction, before the answer leaves. The request log is not kept.
"""

import collections
import hashlib
import pickle
import sqlite3
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
    """One request that reached a gateway's routes (or its own port), and what it met."""

    gateway: str
    method: str | None  # None: reset on the gateway's own port before anything was read
    path: str | None
    verdict: str  # the fault verdict: pass, error, timeout, down:<down_mode>
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


class _TrackedDict(dict):
    """A dict that notes which keys were read or written, so a journal can save them.

    Objects are changed in place after being looked up, so a key that was looked up
    counts as possibly changed; the journal writes it only if its pickle differs.
    Iterating (values, items) notes nothing: no handler changes what it iterates over.
    """

    def __init__(self, namespace: str, touched: set[tuple[str, Any]]) -> None:
        super().__init__()
        self._namespace = namespace
        self._touched = touched

    def __getitem__(self, key: Any) -> Any:
        self._touched.add((self._namespace, key))
        return super().__getitem__(key)

    def get(self, key: Any, default: Any = None) -> Any:
        self._touched.add((self._namespace, key))
        return super().get(key, default)

    def __setitem__(self, key: Any, value: Any) -> None:
        self._touched.add((self._namespace, key))
        super().__setitem__(key, value)

    def __delitem__(self, key: Any) -> None:
        self._touched.add((self._namespace, key))
        super().__delitem__(key)

    def pop(self, key: Any, *default: Any) -> Any:
        self._touched.add((self._namespace, key))
        return super().pop(key, *default)

    def setdefault(self, key: Any, default: Any = None) -> Any:
        self._touched.add((self._namespace, key))
        return super().setdefault(key, default)


class _JournalLock:
    """The store's re-entrant lock. The end of its outermost hold hands what changed to the
    journal, releases the lock, then waits until the journal has it on disk."""

    def __init__(self, on_last_release: Callable[[], Callable[[], None] | None]) -> None:
        self._lock = threading.RLock()
        self._depth = 0  # changed only by the thread holding the lock
        self._on_last_release = on_last_release

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        acquired = self._lock.acquire(blocking, timeout)
        if acquired:
            self._depth += 1
        return acquired

    def release(self) -> None:
        wait_durable = None
        try:
            if self._depth == 1:
                wait_durable = self._on_last_release()
        finally:
            self._depth -= 1
            self._lock.release()
        if wait_durable is not None:  # outside the lock: other requests go on meanwhile
            wait_durable()

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *exc_info: object) -> None:
        self.release()


_MISSING = object()
_COUNTER = ("meta", "counter")
_CLEAR = "clear"


class _Journal:
    """The state file: one row per entry (namespace, pickled key) -> pickled value.

    What changed is decided under the store's lock (so changes queue in the order they
    happened); one writer thread commits whatever has queued in one fsynced transaction
    (group commit), and each request waits for the commit that holds its changes, and
    any before them, before it answers.
    """

    def __init__(self, path: str) -> None:
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")  # fsync at every commit
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS state ("
            "namespace TEXT NOT NULL, key BLOB NOT NULL, value BLOB NOT NULL, "
            "PRIMARY KEY (namespace, key))"
        )
        self._digests: dict[tuple[str, bytes], bytes] = {}
        self._changed = threading.Condition()
        self._queue: list[tuple[str, list[Any], list[Any]]] = []
        self._queued = 0  # sequence number of the newest queued change
        self._durable = 0  # ... and of the newest one committed
        self._failure: BaseException | None = None
        self._closing = False
        self._writer = threading.Thread(target=self._write_forever, name="sim-journal", daemon=True)

    def load(self) -> list[tuple[str, Any, Any]]:
        rows = self._db.execute("SELECT namespace, key, value FROM state").fetchall()
        for namespace, key, value in rows:
            self._digests[(namespace, key)] = _digest(value)
        self._writer.start()
        return [(ns, pickle.loads(key), pickle.loads(value)) for ns, key, value in rows]  # noqa: S301 (our own file)

    def save(self, entries: list[tuple[str, Any, Any]]) -> Callable[[], None]:
        """Queue the entries whose value changed (`_MISSING`: deleted); hold the store lock.

        Returns what waits until they (and every change before them) are on disk.
        """
        upserts, deletes = [], []
        for namespace, key, value in entries:
            raw_key = pickle.dumps(key)
            if value is _MISSING:
                if self._digests.pop((namespace, raw_key), None) is not None:
                    deletes.append((namespace, raw_key))
                continue
            raw = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
            digest = _digest(raw)
            if self._digests.get((namespace, raw_key)) != digest:
                self._digests[(namespace, raw_key)] = digest
                upserts.append((namespace, raw_key, raw))
        if upserts or deletes:
            return self._enqueue("write", upserts, deletes)
        return self._wait_for(self._queued)  # answers only what is on disk already

    def clear(self) -> Callable[[], None]:
        self._digests.clear()
        return self._enqueue(_CLEAR, [], [])

    def _enqueue(self, kind: str, upserts: list[Any], deletes: list[Any]) -> Callable[[], None]:
        with self._changed:
            self._queue.append((kind, upserts, deletes))
            self._queued += 1
            self._changed.notify_all()
            return self._wait_for(self._queued)

    def _wait_for(self, sequence: int) -> Callable[[], None]:
        def wait() -> None:
            with self._changed:
                while self._durable < sequence and self._failure is None:
                    self._changed.wait()
                if self._failure is not None:
                    raise RuntimeError("the simulator's state file cannot be written") from (
                        self._failure
                    )

        return wait

    def _write_forever(self) -> None:
        while True:
            with self._changed:
                while not self._queue and not self._closing:
                    self._changed.wait()
                if not self._queue:
                    return
                batch, self._queue = self._queue, []
                last = self._queued
            try:
                self._commit(batch)
            except BaseException as exc:  # every waiter learns it; nothing is answered as saved
                with self._changed:
                    self._failure = exc
                    self._changed.notify_all()
                return
            with self._changed:
                self._durable = last
                self._changed.notify_all()

    def _commit(self, batch: list[tuple[str, list[Any], list[Any]]]) -> None:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            for kind, upserts, deletes in batch:
                if kind == _CLEAR:
                    self._db.execute("DELETE FROM state")
                    continue
                self._db.executemany(
                    "INSERT INTO state VALUES (?, ?, ?) ON CONFLICT (namespace, key) "
                    "DO UPDATE SET value = excluded.value",
                    upserts,
                )
                self._db.executemany("DELETE FROM state WHERE namespace = ? AND key = ?", deletes)
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    def close(self) -> None:
        with self._changed:
            self._closing = True
            self._changed.notify_all()
        if self._writer.is_alive():
            self._writer.join(timeout=30)
        self._db.close()


def _digest(raw: bytes) -> bytes:
    return hashlib.blake2b(raw, digest_size=16).digest()


class Store:
    def __init__(self) -> None:
        self.lock = _JournalLock(self._save_touched)
        self._journal: _Journal | None = None
        self._pending_clear = False
        self._touched: set[tuple[str, Any]] = set()
        self.reset()

    def attach(self, path: str) -> None:
        """Keep the state in this file from now on, starting from what it holds."""
        with self.lock:
            self._journal = _Journal(path)
            self._empty()
            for namespace, key, value in self._journal.load():
                if (namespace, key) == _COUNTER:
                    self._counter = value
                else:
                    self._namespace(namespace)[key] = value
            self._touched.clear()

    def close(self) -> None:
        with self.lock:
            if self._journal is not None:
                self._journal.close()
                self._journal = None

    def reset(self) -> None:
        with self.lock:
            self._empty()
            if self._journal is not None:
                self._pending_clear = True

    def _empty(self) -> None:
        self._touched.clear()
        self._charges: dict[tuple[str, str], ChargeRecord] = self._new_dict("charges")
        self._refunds: dict[tuple[str, str], RefundRecord] = self._new_dict("refunds")
        self._answers: dict[tuple[str, str], _SavedAnswer] = self._new_dict("answers")
        self._buckets: dict[str, dict[str, Any]] = {}
        self._counter = 0
        self._requests: collections.deque[RequestRecord] = collections.deque(
            maxlen=REQUEST_LOG_SIZE
        )

    def _new_dict(self, namespace: str) -> dict[Any, Any]:
        return _TrackedDict(namespace, self._touched) if self._journal is not None else {}

    def _namespace(self, namespace: str) -> dict[Any, Any]:
        if namespace.startswith("bucket:"):
            return self.bucket(namespace.removeprefix("bucket:"))
        namespaces: dict[str, dict[Any, Any]] = {
            "charges": self._charges,
            "refunds": self._refunds,
            "answers": self._answers,
        }
        return namespaces[namespace]

    def _save_touched(self) -> Callable[[], None] | None:
        if self._journal is None:
            return None
        if self._pending_clear:
            self._pending_clear = False
            self._journal.clear()
        entries = [
            (namespace, key, dict.get(self._namespace(namespace), key, _MISSING))
            if (namespace, key) != _COUNTER
            else (namespace, key, self._counter)
            for namespace, key in self._touched
        ]
        self._touched.clear()
        return self._journal.save(entries)

    def next_number(self) -> int:
        with self.lock:
            self._counter += 1
            self._touched.add(_COUNTER)
            return self._counter

    def bucket(self, name: str) -> dict[str, Any]:
        """A gateway's own objects (payment intents, cobs, tokens...), by id. Hold the lock."""
        with self.lock:
            found = self._buckets.get(name)
            if found is None:
                found = self._buckets[name] = self._new_dict(f"bucket:{name}")
            return found

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
            record = self._charges.get((gateway, charge_id))  # noted: saved if changed
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

    def update_refund(self, gateway: str, refund_id: str, **changes: Any) -> None:
        with self.lock:
            record = self._refunds.get((gateway, refund_id))  # noted: saved if changed
            if record is not None:
                for name, value in changes.items():
                    setattr(record, name, value)

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
