"""Charging throughput: N payments through a running platform, with simulator faults.

python -m bench processing --count 500 --latency-ms 200 --label latency200

Posts the payments (PIX and card alternately) from a few client threads, sets
the simulators' faults first, then polls each payment until it leaves
`pending`/`processing`. Throughput is completed payments over the span from
the first `created_at` to the last `updated_at` the API reports, so polling
cadence does not blur it.
"""

import argparse
import json
import platform
import statistics
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from bench.accept_latency import payment_body, percentile

IN_PROGRESS = {"pending", "processing"}


def _token(http: httpx.Client, username: str, password: str) -> str:
    response = http.post("/api/v1/auth/token", json={"username": username, "password": password})
    response.raise_for_status()
    return response.json()["access"]


def _post_all(base_url: str, token: str, count: int, clients: int) -> list[str]:
    local = threading.local()  # one keep-alive connection per client thread

    def post(index: int) -> str:
        if not hasattr(local, "http"):
            local.http = httpx.Client(
                base_url=base_url, timeout=30, headers={"Authorization": f"Bearer {token}"}
            )
        response = local.http.post(
            "/api/v1/payments",
            json=payment_body(index),
            headers={"Idempotency-Key": str(uuid.uuid4())},
        )
        response.raise_for_status()
        return response.json()["id"]

    with ThreadPoolExecutor(clients) as pool:
        return list(pool.map(post, range(count)))


def _wait_final(http: httpx.Client, ids: list[str], timeout: float) -> dict[str, dict[str, Any]]:
    documents: dict[str, dict[str, Any]] = {}
    pending = list(ids)
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        still = []
        for payment_id in pending:
            document = http.get(f"/api/v1/payments/{payment_id}").json()
            documents[payment_id] = document
            if document["status"] in IN_PROGRESS:
                still.append(payment_id)
        pending = still
        if pending:
            time.sleep(0.5)
    return documents


def _when(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def run(args: argparse.Namespace) -> dict[str, Any]:
    control = httpx.Client(base_url=args.simulator_url + "/_sim", timeout=10)
    control.delete("/faults").raise_for_status()
    for gateway in ("stripe", "mercadopago", "gerencianet"):
        control.put(f"/faults/{gateway}", json={"latency_ms": args.latency_ms,
                                               "error_rate": args.error_rate})  # fmt: skip
    with httpx.Client(base_url=args.base_url, timeout=30) as http:
        token = _token(http, args.username, args.password)
        http.headers["Authorization"] = f"Bearer {token}"
        started = time.monotonic()
        ids = _post_all(args.base_url, token, args.count, args.clients)
        accepted_s = time.monotonic() - started
        documents = _wait_final(http, ids, args.timeout)
    control.delete("/faults").raise_for_status()
    final = [d for d in documents.values() if d["status"] not in IN_PROGRESS]
    first_created = min(_when(d["created_at"]) for d in documents.values())
    last_updated = max(_when(d["updated_at"]) for d in final) if final else first_created
    span = (last_updated - first_created).total_seconds() or float("nan")
    completion_ms = sorted(
        (_when(d["updated_at"]) - _when(d["created_at"])).total_seconds() * 1000 for d in final
    )
    by_status: dict[str, int] = {}
    for document in documents.values():
        by_status[document["status"]] = by_status.get(document["status"], 0) + 1
    return {
        "benchmark": "processing_throughput",
        "at": datetime.now(UTC).isoformat(),
        "host": platform.node(),
        "label": args.label,
        "simulator": {"latency_ms": args.latency_ms, "error_rate": args.error_rate},
        "payments": args.count,
        "clients": args.clients,
        "accepted_per_s": round(args.count / accepted_s, 1),
        "completed": len(final),
        "not_completed": args.count - len(final),
        "by_status": by_status,
        "completed_per_s": round(len(final) / span, 1),
        "completion_latency_ms": {
            "p50": round(percentile(completion_ms, 0.50)),
            "p95": round(percentile(completion_ms, 0.95)),
            "p99": round(percentile(completion_ms, 0.99)),
            "max": round(completion_ms[-1]),
            "mean": round(statistics.fmean(completion_ms)),
        }
        if completion_ms
        else None,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench processing")
    parser.add_argument("--base-url", default="http://127.0.0.1:8000")
    parser.add_argument("--simulator-url", default="http://127.0.0.1:8900")
    parser.add_argument("--username", default="demo")
    parser.add_argument("--password", default="demo")
    parser.add_argument("--count", type=int, default=500)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--latency-ms", type=int, default=0)
    parser.add_argument("--error-rate", type=float, default=0.0)
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument("--label", default="")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    result = run(args)
    out = args.out or Path("bench/results") / f"processing_{args.label or 'run'}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
