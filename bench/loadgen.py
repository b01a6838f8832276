"""The load generator: many wallet-app clients POSTing payments, on asyncio and httpx.

Two shapes:
- closed loop ("max"): `clients` connections, each sends its next request as soon as
  the previous one was answered: as fast as the server takes them;
- open loop ("rate"): request i is due at start + i / rate whatever the answers; its
  latency counts from when it was due, so a stalled server shows as latency instead
  of silently slowing the generator down (no coordinated omission).

Both stop after `count` requests or `duration` seconds, whichever comes first. A
wallet app retries what it could not get an answer to (transport error, 5xx, 429)
with the same Idempotency-Key when `retry_for` > 0, as the chaos runs do.
"""

import asyncio
import itertools
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

RequestFactory = Callable[[int], tuple[int, dict[str, Any], str]]  # index -> (app, body, kind)
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


@dataclass
class Sample:
    index: int
    app: int
    kind: str
    due: float  # wall clock (time.time()) the request was due
    latency_ms: float  # from due to the final answer (all tries)
    status: int  # the final answer's status; 0: no answer at all
    payment_id: str | None
    tries: int
    error: str = ""


@dataclass(frozen=True)
class LoadShape:
    mode: str  # "max" or "rate"
    clients: int
    rate: float = 0.0
    duration: float = 0.0  # 0: no time limit
    count: int = 0  # 0: no count limit
    retry_for: float = 0.0  # seconds a wallet app keeps retrying one request; 0: never

    def __post_init__(self) -> None:
        if self.mode not in ("max", "rate"):
            raise ValueError("mode is max or rate")
        if not self.duration and not self.count:
            raise ValueError("a load needs a duration or a count")
        if self.mode == "rate" and self.rate <= 0:
            raise ValueError("a fixed-rate load needs rate > 0")


async def login(http: httpx.AsyncClient, username: str, password: str) -> str:
    answer = await http.post(
        "/api/v1/auth/token", json={"username": username, "password": password}
    )
    answer.raise_for_status()
    return answer.json()["access"]


class Generator:
    def __init__(
        self, http: httpx.AsyncClient, path: str, tokens: list[str], factory: RequestFactory
    ) -> None:
        self.http = http
        self.path = path
        self.tokens = tokens
        self.factory = factory
        self.samples: list[Sample] = []
        self.on_accepted: Callable[[Sample], None] | None = None

    async def run(self, shape: LoadShape) -> list[Sample]:
        started = time.monotonic()
        deadline = started + shape.duration if shape.duration else float("inf")
        if shape.mode == "max":
            counter = itertools.count()
            await asyncio.gather(
                *(self._closed_loop(counter, shape, deadline) for _ in range(shape.clients))
            )
        else:
            await self._open_loop(shape, started, deadline)
        return self.samples

    async def _closed_loop(
        self, counter: itertools.count, shape: LoadShape, deadline: float
    ) -> None:
        # A client of its own, one connection, as each wallet app's server has: in a pool
        # shared by all the loops httpcore checks every idle connection's socket on every
        # request and every answer, which took the generator a whole core against a fast
        # endpoint (the bare insert) and capped what it measured.
        async with http_client(str(self.http.base_url), 1, timeout=self.http.timeout) as http:
            while time.monotonic() < deadline:
                index = next(counter)
                if shape.count and index >= shape.count:
                    return
                await self._one(http, index, time.time(), shape.retry_for)

    async def _open_loop(self, shape: LoadShape, started: float, deadline: float) -> None:
        in_flight: set[asyncio.Task[None]] = set()
        wall_start = time.time()
        for index in itertools.count():
            if shape.count and index >= shape.count:
                break
            offset = index / shape.rate
            if started + offset >= deadline:
                break
            delay = started + offset - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            task = asyncio.create_task(
                self._one(self.http, index, wall_start + offset, shape.retry_for)
            )
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)
        if in_flight:
            await asyncio.gather(*in_flight)

    async def _one(self, http: httpx.AsyncClient, index: int, due: float, retry_for: float) -> None:
        app, body, kind = self.factory(index)
        headers = {
            "Authorization": f"Bearer {self.tokens[app]}",
            "Idempotency-Key": f"bench-{uuid.uuid4()}",
        }
        give_up = time.time() + retry_for
        tries, status, error, payment_id = 0, 0, "", None
        pause = 0.5
        while True:
            tries += 1
            try:
                answer = await http.post(self.path, json=body, headers=headers)
                status, error = answer.status_code, ""
                if status in (200, 201, 202):
                    payment_id = answer.json().get("id")
            except httpx.HTTPError as exc:
                status, error = 0, type(exc).__name__
            retryable = status == 0 or status in RETRY_STATUSES
            if not retryable or time.time() + pause > give_up:
                break
            await asyncio.sleep(pause)
            pause = min(pause * 2, 5.0)
        sample = Sample(
            index=index,
            app=app,
            kind=kind,
            due=due,
            latency_ms=(time.time() - due) * 1000,
            status=status,
            payment_id=payment_id,
            tries=tries,
            error=error,
        )
        self.samples.append(sample)
        if payment_id and self.on_accepted is not None:
            self.on_accepted(sample)


# Below gunicorn's keep-alive (2 s, the Procfile's): a connection idle for longer may be
# closing at the server's end as the next request goes out on it, which then fails with
# a ReadError instead of an answer (as one wallet app's setup call did on a busy machine).
KEEPALIVE_EXPIRY_S = 1.5


def http_client(
    base_url: str, clients: int, timeout: float | httpx.Timeout = 30
) -> httpx.AsyncClient:
    limits = httpx.Limits(
        max_connections=clients,
        max_keepalive_connections=clients,
        keepalive_expiry=KEEPALIVE_EXPIRY_S,
    )
    return httpx.AsyncClient(base_url=base_url, timeout=timeout, limits=limits)
