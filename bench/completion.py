"""When each accepted payment reached a final state: from webhooks, or by polling the API.

"Completed" means charged or refused: the payment left `pending`/`processing`
(`awaiting_payment` counts: the PIX charge is issued and the payer can pay).
The moment is the server's `updated_at` of that change (from the webhook's
document or a GET), so neither delivery lag nor polling cadence blurs it; the
arrival of the webhook is kept too (what the wallet app experienced).
"""

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx

from bench.loadgen import Sample
from bench.receiver import Delivery

IN_PROGRESS = frozenset({"pending", "processing"})


@dataclass
class Completion:
    status: str
    created_at: float  # server clock, epoch seconds
    completed_at: float  # server clock: updated_at of the final change
    observed_at: float  # our clock: webhook arrival or poll answer
    via: str  # webhook | poll


def epoch(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


class Tracker:
    def __init__(self) -> None:
        self.accepted: dict[str, Sample] = {}
        self.done: dict[str, Completion] = {}
        self.latest: dict[str, dict[str, Any]] = {}  # newest document seen per payment
        self.early: dict[str, Delivery] = {}  # webhooks that beat the 202 to us
        self.on_complete: Callable[[dict[str, Any]], None] | None = None  # the final document

    def accept(self, sample: Sample) -> None:
        assert sample.payment_id is not None
        self.accepted[sample.payment_id] = sample
        early = self.early.pop(sample.payment_id, None)
        if early is not None:
            self.delivery(early)

    def delivery(self, delivery: Delivery) -> None:
        document = delivery.event.get("data") or {}
        payment_id = document.get("id")
        if not delivery.event.get("type", "").startswith("payment.") or not payment_id:
            return
        if payment_id not in self.accepted:
            self.early[payment_id] = delivery
            return
        self._document(document, delivery.arrived, "webhook")

    def _document(self, document: dict[str, Any], observed: float, via: str) -> None:
        payment_id = document["id"]
        previous = self.latest.get(payment_id)
        if previous is None or previous.get("updated_at", "") <= document.get("updated_at", ""):
            self.latest[payment_id] = document
        if document["status"] in IN_PROGRESS or payment_id in self.done:
            return
        self.done[payment_id] = Completion(
            status=document["status"],
            created_at=epoch(document["created_at"]),
            completed_at=epoch(document["updated_at"]),
            observed_at=observed,
            via=via,
        )
        if self.on_complete is not None:
            self.on_complete(document)

    def missing(self) -> list[str]:
        return [payment_id for payment_id in self.accepted if payment_id not in self.done]

    async def wait(
        self,
        http: httpx.AsyncClient,
        tokens: list[str],
        *,
        timeout: float,
        quiet_before_poll: float,
        webhooks: bool,
    ) -> None:
        """Until every accepted payment completed or `timeout`; polls what webhooks left out
        (at once without webhooks, else after `quiet_before_poll` s without a new one)."""
        deadline = time.monotonic() + timeout
        last_count, last_change = len(self.done), time.monotonic()
        while self.missing() and time.monotonic() < deadline:
            if len(self.done) != last_count:
                last_count, last_change = len(self.done), time.monotonic()
            if not webhooks or time.monotonic() - last_change > quiet_before_poll:
                await self.poll(http, tokens, self.missing())
            await asyncio.sleep(1)

    async def poll(self, http: httpx.AsyncClient, tokens: list[str], ids: list[str]) -> None:
        limit = asyncio.Semaphore(8)

        async def one(payment_id: str) -> None:
            token = tokens[self.accepted[payment_id].app]
            async with limit:
                try:
                    answer = await http.get(
                        f"/api/v1/payments/{payment_id}",
                        headers={"Authorization": f"Bearer {token}"},
                    )
                except httpx.HTTPError:
                    return
            if answer.status_code == 200:
                self._document(answer.json(), time.time(), "poll")

        await asyncio.gather(*(one(payment_id) for payment_id in ids))
