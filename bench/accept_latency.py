"""Accept latency of POST /api/v1/payments: N sequential requests, percentiles as JSON.

python -m bench accept-latency --base-url http://127.0.0.1:8000 --count 1000
"""

import argparse
import json
import platform
import statistics
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from bench.stats import percentile

__all__ = ["main", "payment_body", "percentile", "run"]


def payment_body(index: int) -> dict[str, Any]:
    if index % 2:
        return {
            "amount": 1000 + index,
            "currency": "USD",
            "method": "card",
            "payer": {"name": "Load Test", "email": "load@example.com", "country": "US"},
            "card": {"token": "pm_card_visa"},
        }
    return {
        "amount": 1000 + index,
        "currency": "BRL",
        "method": "pix",
        "payer": {
            "name": "Ana Souza",
            "email": "ana@example.com",
            "tax_id": "12345678909",
            "country": "BR",
        },
    }


def run(base_url: str, username: str, password: str, count: int, warmup: int) -> dict[str, Any]:
    with httpx.Client(base_url=base_url, timeout=10) as http:
        token = http.post("/api/v1/auth/token", json={"username": username, "password": password})
        token.raise_for_status()
        http.headers["Authorization"] = f"Bearer {token.json()['access']}"
        latencies_ms: list[float] = []
        errors: dict[str, int] = {}
        for index in range(warmup + count):
            started = time.perf_counter()
            response = http.post(
                "/api/v1/payments",
                json=payment_body(index),
                headers={"Idempotency-Key": str(uuid.uuid4())},
            )
            elapsed_ms = (time.perf_counter() - started) * 1000
            if index < warmup:
                continue
            if response.status_code == 202:
                latencies_ms.append(elapsed_ms)
            else:
                errors[str(response.status_code)] = errors.get(str(response.status_code), 0) + 1
    latencies_ms.sort()
    return {
        "benchmark": "accept_latency_sequential",
        "at": datetime.now(UTC).isoformat(),
        "base_url": base_url,
        "host": platform.node(),
        "requests": count,
        "accepted": len(latencies_ms),
        "errors_by_status": errors,
        "latency_ms": {
            "p50": round(percentile(latencies_ms, 0.50), 2),
            "p95": round(percentile(latencies_ms, 0.95), 2),
            "p99": round(percentile(latencies_ms, 0.99), 2),
            "max": round(latencies_ms[-1], 2),
            "mean": round(statistics.fmean(latencies_ms), 2),
        },
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench accept-latency")
    parser.add_argument("--base-url", default="http://127.0.0.1:8000")
    parser.add_argument("--username", default="demo")
    parser.add_argument("--password", default="demo")
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--label", default="", help="what this run measured, e.g. postgresql")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    result = run(args.base_url, args.username, args.password, args.count, args.warmup)
    result["label"] = args.label
    out = args.out or Path("bench/results") / f"accept_latency_{args.label or 'run'}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
