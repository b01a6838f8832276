"""Transfer throughput: N clients posting transfers between a few wallets of one wallet app.

python -m bench transfers --base-url http://127.0.0.1:8000 --clients 8 --count 4000 \\
    --wallets 16 --label postgresql

Talks HTTP to a running server. The wallets are opened over the API; their
money can only come in through the ledger, so the bench credits each one in
process, as a succeeded payment would (`wallet_credit_for_payment`): run it
with the server's DATABASE_URL and settings in the environment. Then the
clients post transfers between random pairs of wallets (both directions,
small amounts, a fresh Idempotency-Key each), each client on its own
keep-alive connection. Throughput is completed transfers (201) over the wall
time of the run; afterwards the wallets' balances must still add up and
`check_ledger`'s invariants must hold.
"""

import argparse
import json
import logging
import os
import platform
import random
import statistics
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from bench.accept_latency import percentile


def _token(http: httpx.Client, username: str, password: str) -> str:
    response = http.post("/api/v1/auth/token", json={"username": username, "password": password})
    response.raise_for_status()
    return response.json()["access"]


def _django() -> None:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
    django.setup()
    logging.getLogger("httpx").setLevel(logging.WARNING)  # Django's logging says every request


def _fund(wallet_ids: list[str], amount: int) -> None:
    """Credit each wallet `amount` through the ledger, as a succeeded payment does."""
    _django()
    from payments.models import Payment, PaymentMethod, PaymentStatus
    from wallets.models import Wallet
    from wallets.services import wallet_credit_for_payment

    for wallet in Wallet.objects.filter(pk__in=wallet_ids):
        payment = Payment.objects.create(
            client_id=wallet.client_id,
            amount=amount,
            currency=wallet.currency,
            method=PaymentMethod.CARD,
            card_token="pm_card_visa",  # noqa: S106 (a simulator's test token)
            payer_name="Bench Funding",
            payer_country="BR",
            status=PaymentStatus.SUCCEEDED,
            gateway="bench",
            wallet_id=wallet.pk,
            description="bench transfers: funding",
        )
        wallet_credit_for_payment(payment)


def _ledger_problems() -> list[str]:
    _django()
    from wallets.integrity import ledger_problems

    return ledger_problems()


def run(args: argparse.Namespace) -> dict[str, Any]:
    with httpx.Client(base_url=args.base_url, timeout=30) as http:
        token = _token(http, args.username, args.password)
        http.headers["Authorization"] = f"Bearer {token}"
        wallet_ids = []
        for _ in range(args.wallets):
            response = http.post(
                "/api/v1/wallets",
                json={"currency": "BRL"},
                headers={"Idempotency-Key": str(uuid.uuid4())},
            )
            response.raise_for_status()
            wallet_ids.append(response.json()["id"])
        _fund(wallet_ids, args.funds)

        local = threading.local()  # one keep-alive connection per client thread
        rng = random.Random(args.seed)  # noqa: S311 (a reproducible plan, not a secret)
        plan = [
            (*rng.sample(wallet_ids, 2), rng.randint(1, args.max_amount)) for _ in range(args.count)
        ]

        def transfer(step: tuple[str, str, int]) -> tuple[int, str, float]:
            if not hasattr(local, "http"):
                local.http = httpx.Client(
                    base_url=args.base_url, timeout=30, headers={"Authorization": f"Bearer {token}"}
                )
            source, target, amount = step
            started = time.perf_counter()
            response = local.http.post(
                "/api/v1/transfers",
                json={
                    "from_wallet": source,
                    "to_wallet": target,
                    "amount": amount,
                    "currency": "BRL",
                    "description": "bench",
                },
                headers={"Idempotency-Key": str(uuid.uuid4())},
            )
            elapsed_ms = (time.perf_counter() - started) * 1000
            code = "" if response.status_code == 201 else response.json()["error"]["code"]
            return response.status_code, code, elapsed_ms

        started = time.monotonic()
        with ThreadPoolExecutor(args.clients) as pool:
            results = list(pool.map(transfer, plan))
        elapsed_s = time.monotonic() - started

        balances = [http.get(f"/api/v1/wallets/{w}").json()["balance"] for w in wallet_ids]

    by_answer: dict[str, int] = {}
    for status, code, _ in results:
        key = f"{status} {code}".strip()
        by_answer[key] = by_answer.get(key, 0) + 1
    completed_ms = sorted(ms for status, _, ms in results if status == 201)
    completed = len(completed_ms)
    problems = _ledger_problems()
    return {
        "benchmark": "transfers_throughput",
        "at": datetime.now(UTC).isoformat(),
        "base_url": args.base_url,
        "host": platform.node(),
        "label": args.label,
        "clients": args.clients,
        "wallets": args.wallets,
        "transfers": args.count,
        "answers": by_answer,
        "completed": completed,
        "elapsed_s": round(elapsed_s, 2),
        "transfers_per_s": round(completed / elapsed_s, 1),
        "latency_ms": {
            "p50": round(percentile(completed_ms, 0.50), 2),
            "p95": round(percentile(completed_ms, 0.95), 2),
            "p99": round(percentile(completed_ms, 0.99), 2),
            "max": round(completed_ms[-1], 2),
            "mean": round(statistics.fmean(completed_ms), 2),
        }
        if completed_ms
        else None,
        "balances_conserved": sum(balances) == args.funds * args.wallets,
        "no_negative_balance": min(balances) >= 0,
        "ledger_problems": len(problems),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench transfers")
    parser.add_argument("--base-url", default="http://127.0.0.1:8000")
    parser.add_argument("--username", default="demo")
    parser.add_argument("--password", default="demo")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--count", type=int, default=4000, help="transfers to post in all")
    parser.add_argument("--wallets", type=int, default=16)
    parser.add_argument("--funds", type=int, default=10_000_000, help="per wallet, minor units")
    parser.add_argument("--max-amount", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=6)
    parser.add_argument("--label", default="", help="what this run measured, e.g. postgresql")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    result = run(args)
    out = args.out or Path("bench/results") / f"transfers_{args.label or 'run'}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
