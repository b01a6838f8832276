"""`python -m bench history`: does the cost of a payment grow with the payments stored?

python -m bench history                      # 1,000,000 payments of history (scenario "1m")
python -m bench history --scenario smoke     # 20,000, to try the harness

One platform, warmed up (`warmup_s` of intake, not measured), then two rounds of the
same measurements: on an empty database, then after
`history` payments were written straight into PostgreSQL (with their status event,
gateway attempt and Idempotency-Key row each, spread over the wallet apps and the
last 24 hours, then VACUUM ANALYZE). Each round:

1. intake: POST /api/v1/payments at max rate (closed loop), the payments worker
   paused, so the API and the database are all that is measured;
2. get (cached): GET /api/v1/payments/{id} of the payments just accepted, as a wallet
   app polls them (served from Redis);
   (`get_clients` at a time, below saturation);
3. get (database): the same after the cache is flushed, half of them random stored
   payments in the second round (an index lookup in the full table);
4. list: GET /api/v1/payments?status=pending, the first page per wallet app.

The result carries each round's figures and `*_ratio`s of history over empty: within
10 % of 1.0 is the target (issue: "cost does not grow with history").
"""

import argparse
import asyncio
import json
import os
import platform as host_platform
import random
import signal
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg
import redis

from bench import scenarios
from bench.figures import accept_figures
from bench.load import RESULTS, platform_settings
from bench.loadgen import Generator, LoadShape, http_client
from bench.noop import pause_consumers, resume_consumers
from bench.payloads import Mix, payment_factory
from bench.stats import ratio, summary
from bench.supervisor import (
    APP_PASSWORD,
    ROOT,
    Platform,
    add_resource_arguments,
    resource_settings,
)
from bench.wallet_apps import wallet_apps_setup

# Columns the copies of the template rows get values of their own ({apps}, {spacing}:
# filled in per run; %(clients)s: a query parameter).
_PAYMENT_OVERRIDES = {
    "id": "gen_random_uuid()",
    "client_id": "(%(clients)s::uuid[])[1 + mod(g, {apps})]",
    "status": "(ARRAY['succeeded','awaiting_payment','expired','failed'])[1 + mod(g, 4)]",
    "created_at": "now() - make_interval(secs => g * {spacing})",
    "updated_at": "now() - make_interval(secs => g * {spacing})",
    "next_attempt_at": "now() - make_interval(secs => g * {spacing})",
    "dispatch_token": "gen_random_uuid()",
}


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench history",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--scenario", default="1m", help=", ".join(scenarios.names("history")))
    parser.add_argument("--label", default="")
    parser.add_argument("--out-dir", type=Path, default=RESULTS)
    add_resource_arguments(parser)
    return parser.parse_args(argv)


def _terminate(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    config = scenarios.scenario("history", args.scenario)
    signal.signal(signal.SIGTERM, _terminate)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    name = f"history_{config['name']}" + (f"_{args.label}" if args.label else "")
    run_dir = ROOT / "var" / "bench" / f"{name}-{stamp}"
    platform = Platform(platform_settings(config, run_dir, resources=resource_settings(args)))
    with platform:
        print(f"bench: preparing the platform (logs in {run_dir / 'logs'})", flush=True)
        platform.prepare()
        platform.start()
        result = asyncio.run(run(config, platform))
    result["label"] = args.label
    args.out_dir.mkdir(parents=True, exist_ok=True)
    path = args.out_dir / f"{name}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(
        json.dumps(
            {
                k: v
                for k, v in result.items()
                if k.endswith(
                    ("_ratio", "_ms_empty", "_ms_history", "_per_s_empty", "_per_s_history")
                )
            },
            indent=2,
        )
    )
    print(f"bench: wrote {path}")


async def run(config: dict[str, Any], platform: Platform) -> dict[str, Any]:
    s = platform.settings
    http = http_client(platform.base_url, config["clients"])
    credentials = [(f"bench-app-{i}", APP_PASSWORD) for i in range(config["apps"])]
    result: dict[str, Any] = {
        "benchmark": "history",
        "scenario": config["name"],
        "at": datetime.now(UTC).isoformat(),
        "host": host_platform.node(),
        "machine": {"cpus": os.cpu_count()},
        "history_payments": config["history"],
        "clients": config["clients"],
        "wallet_apps": config["apps"],
        "rounds": {},
    }
    workers = await asyncio.to_thread(pause_consumers, s.broker_url)
    try:
        apps = await wallet_apps_setup(http, credentials, receiver=None)
        await _warm_up(config, http, apps.tokens)
        for round_name in ("empty", "history"):
            if round_name == "history":
                await http.aclose()  # its kept-alive connections would not outlive the seeding
                started = time.monotonic()
                print(f"bench: writing {config['history']:,} payments of history", flush=True)
                counts = await asyncio.to_thread(seed_history, s.database_url, config["history"])
                result["seeding"] = {**counts, "seconds": round(time.monotonic() - started, 1)}
                http = http_client(platform.base_url, config["clients"])
            print(f"bench: round {round_name}", flush=True)
            result["rounds"][round_name] = await _round(config, platform, http, apps.tokens)
    finally:
        await http.aclose()
        await asyncio.to_thread(resume_consumers, s.broker_url, workers)
    _ratios(result)
    return result


async def _warm_up(config: dict[str, Any], http: httpx.AsyncClient, tokens: list[str]) -> None:
    """Intake for `warmup_s`, not measured: the first requests of fresh processes (imports,
    connections, caches) would otherwise count against the empty round only."""
    mix = Mix(pix_share=config["pix_share"], decline_share=0.0)
    generator = Generator(http, "/api/v1/payments", tokens, payment_factory(mix, len(tokens)))
    await generator.run(LoadShape("max", config["clients"], duration=config["warmup_s"]))


async def _round(
    config: dict[str, Any], platform: Platform, http: httpx.AsyncClient, tokens: list[str]
) -> dict[str, Any]:
    mix = Mix(pix_share=config["pix_share"], decline_share=0.0)
    generator = Generator(http, "/api/v1/payments", tokens, payment_factory(mix, len(tokens)))
    shape = LoadShape("max", config["clients"], duration=config["duration_s"])
    started = time.time()
    samples = await generator.run(shape)
    figures: dict[str, Any] = {"intake": accept_figures(samples, time.time() - started)}
    accepted = [(s.app, s.payment_id) for s in samples if s.payment_id]
    rng = random.Random(7)  # noqa: S311 (which payments to read, not a secret)
    reads = rng.sample(accepted, min(config["gets"], len(accepted)))
    figures["get_cached"] = await _gets(http, tokens, reads, config)
    _flush_cache(platform)
    stored = await asyncio.to_thread(_stored_sample, platform, tokens, len(reads) // 2, rng)
    cold = reads[: len(reads) - len(stored)] + stored
    rng.shuffle(cold)
    figures["get_database"] = await _gets(http, tokens, cold, config)
    figures["list"] = await _lists(http, tokens, config)
    return figures


async def _gets(
    http: httpx.AsyncClient,
    tokens: list[str],
    targets: list[tuple[int, str]],
    config: dict[str, Any],
) -> dict[str, Any]:
    """GET each target once, `get_clients` at a time (below saturation, so the latency is
    the service's, not a queue's): latency and answers per second."""
    queue = list(targets)
    latencies: list[float] = []
    errors: dict[str, int] = {}

    async def client() -> None:
        while queue:
            app, payment_id = queue.pop()
            begun = time.perf_counter()
            try:
                answer = await http.get(
                    f"/api/v1/payments/{payment_id}",
                    headers={"Authorization": f"Bearer {tokens[app]}"},
                )
            except httpx.TransportError as exc:  # e.g. a kept-alive connection closed
                errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
                continue
            if answer.status_code == 200:
                latencies.append((time.perf_counter() - begun) * 1000)
            else:
                errors[str(answer.status_code)] = errors.get(str(answer.status_code), 0) + 1

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(config["get_clients"])))
    elapsed = time.perf_counter() - started
    return {
        "requests": len(targets),
        "per_s": round(len(latencies) / elapsed, 1) if elapsed else None,
        "latency_ms": summary(latencies),
        "errors_by_status": errors,
    }


async def _lists(
    http: httpx.AsyncClient, tokens: list[str], config: dict[str, Any]
) -> dict[str, Any]:
    targets = [(app, "") for app in range(len(tokens))] * config["list_rounds"]
    latencies: list[float] = []
    for app, _ in targets:
        begun = time.perf_counter()
        answer = await http.get(
            "/api/v1/payments",
            params={"status": "pending"},
            headers={"Authorization": f"Bearer {tokens[app]}"},
        )
        answer.raise_for_status()
        latencies.append((time.perf_counter() - begun) * 1000)
    return {"requests": len(targets), "latency_ms": summary(latencies)}


def _flush_cache(platform: Platform) -> None:
    s = platform.settings
    redis.Redis.from_url(f"{s.redis_url}/{s.redis_db}").flushdb()


def _stored_sample(
    platform: Platform, tokens: list[str], count: int, rng: random.Random
) -> list[tuple[int, str]]:
    """Up to `count` random payments of the history (none before it is written)."""
    with psycopg.connect(platform.settings.database_url) as conn:
        clients = _client_ids(conn)
        rows = conn.execute(
            "SELECT id, client_id FROM payments_payment TABLESAMPLE SYSTEM (1) "
            "WHERE status <> 'pending' LIMIT %s",
            (count,),
        ).fetchall()
    index = {client: app for app, client in enumerate(clients)}
    return [(index[str(client)], str(pid)) for pid, client in rows if str(client) in index]


def _client_ids(conn: psycopg.Connection) -> list[str]:
    """The wallet apps' ids in the order of their names (bench-app-0, 1, ...)."""
    rows = conn.execute(
        "SELECT name, id FROM paywave_apiclient WHERE name LIKE 'bench-app-%%'"
    ).fetchall()
    by_number = sorted((int(name.rsplit("-", 1)[1]), str(pk)) for name, pk in rows)
    return [pk for _, pk in by_number]


def seed_history(database_url: str, count: int, batch: int = 100_000) -> dict[str, int]:
    """Write `count` payments, each with an event, an attempt and an Idempotency-Key row,
    as copies of the newest stored payment (its ciphertexts included: they decrypt)."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        clients = _client_ids(conn)
        template = conn.execute(
            "SELECT id FROM payments_payment ORDER BY created_at DESC LIMIT 1"
        ).fetchone()
        if template is None:
            raise RuntimeError("no payment to copy: the empty round stores some first")
        columns = [
            row[0]
            for row in conn.execute(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_name = 'payments_payment' ORDER BY ordinal_position"
            )
        ]
        spacing = 86_400 / max(count, 1)  # spread over the last 24 hours
        expressions = ", ".join(
            _PAYMENT_OVERRIDES[c].format(apps=len(clients), spacing=spacing)
            if c in _PAYMENT_OVERRIDES
            else f"t.{c}"
            for c in columns
        )
        for first in range(1, count + 1, batch):
            last = min(first + batch - 1, count)
            with conn.transaction():
                conn.execute("CREATE TEMP TABLE seeded (id uuid, client_id uuid, g int)")
                conn.execute(
                    f"WITH made AS (INSERT INTO payments_payment ({', '.join(columns)}) "  # noqa: S608
                    f"SELECT {expressions} FROM generate_series(%(first)s::int, %(last)s::int) g, "
                    "(SELECT * FROM payments_payment WHERE id = %(template)s) t "
                    "RETURNING id, client_id, created_at) "
                    "INSERT INTO seeded SELECT id, client_id, "
                    "row_number() OVER () FROM made",
                    {"clients": clients, "first": first, "last": last, "template": template[0]},
                )
                conn.execute(
                    "INSERT INTO payments_paymentevent "
                    "(payment_id, from_status, to_status, reason, actor, created_at) "
                    "SELECT id, '', 'pending', 'accepted', 'client:' || client_id, now() "
                    "FROM seeded"
                )
                conn.execute(
                    "INSERT INTO payments_paymentattempt (payment_id, gateway, number, "
                    "idempotency_key, outcome, error_class, error_message, gateway_reference, "
                    "request_summary, response_summary, latency_ms, created_at) "
                    "SELECT id, 'stripe', 1, 'paywave-' || id || '-stripe', 'succeeded', '', "
                    "'', 'pi_' || md5(id::text), '{}', '{}', 20, now() FROM seeded"
                )
                conn.execute(
                    "INSERT INTO paywave_idempotencykey (client_id, key, fingerprint, state, "
                    "locked_at, expires_at, response_status, response_body, response_headers) "
                    "SELECT client_id, 'history-' || id, md5(id::text), 'completed', now(), "
                    "now() + interval '24 hours', 202, NULL, '{}' FROM seeded"
                )
                conn.execute("DROP TABLE seeded")
            print(f"bench: {last:,} of {count:,} written", flush=True)
        conn.execute("VACUUM ANALYZE")
        # The seeding's dirty pages are written now, not by a checkpoint during the round.
        conn.execute("CHECKPOINT")
        counts = {
            table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # noqa: S608
            for table in (
                "payments_payment",
                "payments_paymentevent",
                "payments_paymentattempt",
                "paywave_idempotencykey",
            )
        }
    return counts


def _ratios(result: dict[str, Any]) -> None:
    empty, history = result["rounds"].get("empty"), result["rounds"].get("history")
    if not empty or not history:
        return

    def p99(round_figures: dict[str, Any], part: str) -> float | None:
        latency = round_figures[part].get("latency_ms") or {}
        return latency.get("p99")

    result["accepted_per_s_empty"] = empty["intake"]["accepted_per_s"]
    result["accepted_per_s_history"] = history["intake"]["accepted_per_s"]
    result["accept_ratio"] = ratio(
        history["intake"]["accepted_per_s"], empty["intake"]["accepted_per_s"]
    )
    for part in ("get_cached", "get_database", "list"):
        result[f"{part}_p99_ms_empty"] = p99(empty, part)
        result[f"{part}_p99_ms_history"] = p99(history, part)
        result[f"{part}_p99_ratio"] = ratio(p99(history, part), p99(empty, part))
