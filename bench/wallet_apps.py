"""The wallet apps a run plays: log in, register a webhook endpoint, open wallets."""

import asyncio
import uuid
from dataclasses import dataclass, field

import httpx

from bench.loadgen import login
from bench.receiver import Receiver

FINAL_EVENTS = [
    "payment.awaiting_payment",
    "payment.succeeded",
    "payment.failed",
    "payment.canceled",
    "payment.expired",
]


@dataclass
class WalletApps:
    tokens: list[str]
    wallets: dict[tuple[int, str], str] = field(default_factory=dict)  # (app, currency) -> id
    webhooks: bool = False
    note: str = ""


async def wallet_apps_setup(
    http: httpx.AsyncClient,
    credentials: list[tuple[str, str]],
    *,
    receiver: Receiver | None,
    wallet_currencies: tuple[str, ...] = (),
) -> WalletApps:
    tokens = list(await asyncio.gather(*(login(http, u, p) for u, p in credentials)))
    apps = WalletApps(tokens=tokens)
    if receiver is not None:
        apps.webhooks, apps.note = await _register_webhooks(http, tokens, receiver)
    for app, token in enumerate(tokens):
        for currency in wallet_currencies:
            answer = await http.post(
                "/api/v1/wallets",
                json={"currency": currency},
                headers=_headers(token),
            )
            answer.raise_for_status()
            apps.wallets[(app, currency)] = answer.json()["id"]
    return apps


async def _register_webhooks(
    http: httpx.AsyncClient, tokens: list[str], receiver: Receiver
) -> tuple[bool, str]:
    """Every app's endpoint, or (False, why) to fall back to polling."""
    for app, token in enumerate(tokens):
        answer = await http.post(
            "/api/v1/webhook-endpoints",
            json={"url": receiver.url(app), "events": FINAL_EVENTS},
            headers=_headers(token),
        )
        if answer.status_code in (404, 405):
            return False, "POST /api/v1/webhook-endpoints not available: completion by polling"
        if answer.status_code != 201:
            return False, f"webhook endpoint refused ({answer.status_code}): completion by polling"
        receiver.secrets[app] = answer.json()["secret"]
    return True, "completion from webhooks (polling only for what did not arrive)"


def _headers(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "Idempotency-Key": f"bench-{uuid.uuid4()}"}
