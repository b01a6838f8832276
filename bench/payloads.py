"""What the wallet apps send: a reproducible PIX/card mix, some payments into wallets."""

import random
from dataclasses import dataclass
from typing import Any

from bench.loadgen import RequestFactory

CPF = "12345678909"  # valid check digits


@dataclass(frozen=True)
class Mix:
    pix_share: float = 0.5  # the rest are cards
    decline_share: float = 0.0  # of the cards: a test card the simulator declines
    wallet_share: float = 0.0  # of all payments: credit a wallet of the paying app on success
    seed: int = 8
    # PIX exactly pix_share of every run of payments, evenly interleaved (else drawn at random)
    exact: bool = False


def _is_pix(index: int, mix: Mix, draw: float) -> bool:
    if mix.exact:  # index i is PIX when the running count of PIX steps up at i
        return int((index + 1) * mix.pix_share) > int(index * mix.pix_share)
    return draw < mix.pix_share


def payment_body(index: int, mix: Mix, rng: random.Random) -> tuple[dict[str, Any], str]:
    amount = 1000 + index % 9000
    if _is_pix(index, mix, rng.random()):
        return {
            "amount": amount,
            "currency": "BRL",
            "method": "pix",
            "description": f"bench {index}",
            "payer": {
                "name": "Ana Souza",
                "email": "ana@example.com",
                "tax_id": CPF,
                "country": "BR",
            },
        }, "pix"
    token = "pm_card_chargeDeclined" if rng.random() < mix.decline_share else "pm_card_visa"
    return {
        "amount": amount,
        "currency": "USD",
        "method": "card",
        "description": f"bench {index}",
        "payer": {"name": "Load Test", "email": "load@example.com", "country": "US"},
        "card": {"token": token},
    }, "card"


def payment_factory(
    mix: Mix, apps: int, wallets: dict[tuple[int, str], str] | None = None
) -> RequestFactory:
    """index -> (wallet app, body, kind); the same index always gives the same payment."""

    def make(index: int) -> tuple[int, dict[str, Any], str]:
        rng = random.Random(mix.seed * 1_000_003 + index)  # noqa: S311 (a reproducible mix)
        body, kind = payment_body(index, mix, rng)
        app = index % apps
        if wallets and rng.random() < mix.wallet_share:
            body["wallet_id"] = wallets[(app, body["currency"])]
        return app, body, kind

    return make
