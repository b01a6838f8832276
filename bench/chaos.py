"""`python -m bench chaos`: thousands of payments through kills, restarts and gateway faults.

python -m bench chaos --scenario smoke               # 2,000 payments, no RabbitMQ restart
python -m bench chaos --scenario full --rabbitmq     # 10,000, RabbitMQ stopped and started too

It starts its own platform (two payments workers), posts `count` payments at `rate`/s
from many wallet apps (half into wallets), pays a share of the PIX charges at the
simulator (the callback settles them), and meanwhile SIGKILLs payments workers,
makes gateways fail or time out, restarts the simulators (on their state file) and,
with --rabbitmq, the broker's app. Then it lets the platform drain (sweeps and
reconciliation shortened through the scenario's env) and checks the invariants
(bench/invariants.py). Exit status 1 if anything was lost, charged twice or the
ledger does not balance. Results: bench/results/chaos_<scenario>[_<label>].{json,png}.
"""

import argparse
import asyncio
import hashlib
import json
import os
import platform as host_platform
import random
import signal
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg

from bench import invariants, outage, scenarios, services
from bench.completion import Tracker
from bench.figures import accept_figures, accept_series
from bench.load import RESULTS, platform_settings
from bench.loadgen import Generator, LoadShape, Sample, http_client
from bench.payloads import Mix, payment_factory
from bench.plot import plot
from bench.receiver import Receiver
from bench.stats import latency_per_second, per_second, summary
from bench.supervisor import (
    APP_PASSWORD,
    ROOT,
    Platform,
    add_resource_arguments,
    resource_settings,
)
from bench.wallet_apps import wallet_apps_setup

GATEWAYS = ("stripe", "mercadopago", "gerencianet")


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench chaos",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--scenario", default="smoke", help=", ".join(scenarios.names("chaos")))
    parser.add_argument("--label", default="")
    parser.add_argument("--count", type=int, help="payments (overrides)")
    parser.add_argument("--rate", type=float, help="payments per second (overrides)")
    parser.add_argument("--rabbitmq", action="store_true", help="also restart RabbitMQ's app")
    parser.add_argument("--seed", type=int, default=8)
    parser.add_argument("--out-dir", type=Path, default=RESULTS)
    add_resource_arguments(parser)
    return parser.parse_args(argv)


@dataclass
class ChaosRun:
    config: dict[str, Any]
    platform: Platform
    rabbitmq: bool
    rng: random.Random
    origin: float = field(default_factory=time.time)
    events: list[dict[str, Any]] = field(default_factory=list)
    faults: dict[str, dict[str, Any]] = field(default_factory=dict)  # applied now, per gateway
    # Every fault applied: {gateway, settings, start, end} (epoch seconds; end None while on).
    fault_windows: list[dict[str, Any]] = field(default_factory=list)
    simulator_up: asyncio.Event = field(default_factory=asyncio.Event)
    broker_stopped: bool = False
    # The gateway whose charge each PIX payment showed its payer: the one they pay.
    shown: dict[str, str] = field(default_factory=dict)
    paid: set[str] = field(default_factory=set)  # the simulator answered the payment
    # Found paid after a pay request that got no answer (simulator killed mid-request):
    # its callback may never have been sent, and the simulators do not retry callbacks.
    paid_unanswered: set[str] = field(default_factory=set)
    # PayWave answered 200 to the gateway's callback: settling them is PayWave's job.
    callback_taken: set[str] = field(default_factory=set)
    callback_retry: dict[str, tuple[int, float]] = field(default_factory=dict)  # id, since
    callback_lost: set[str] = field(default_factory=set)  # forgotten, or 10 min refused
    pay_failures: dict[str, int] = field(default_factory=dict)
    paying: int = 0  # pay requests under way

    def event(self, label: str, short: str = "") -> None:
        """`label` for the result file and the console, `short` for the plot."""
        moment = time.time() - self.origin
        self.events.append({"t": round(moment, 2), "label": label, "short": short or label})
        print(f"bench: chaos t={moment:6.1f}s {label}", flush=True)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    config = scenarios.scenario("chaos", args.scenario)
    if args.count:
        config["count"] = args.count
    if args.rate:
        config["rate"] = args.rate
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    name = f"chaos_{config['name']}" + (f"_{args.label}" if args.label else "")
    run_dir = ROOT / "var" / "bench" / f"{name}-{stamp}"
    config.setdefault("phases", [])
    platform = Platform(
        platform_settings(
            config, run_dir, simulator_state_file=True, resources=resource_settings(args)
        )
    )

    def terminate(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, terminate)
    run: ChaosRun | None = None
    try:
        with platform:
            print(f"bench: preparing the platform (logs in {run_dir / 'logs'})", flush=True)
            platform.prepare()
            _set_gateway_timeouts(platform, config.get("gateway_timeout_ms", {}))
            platform.start()
            run = ChaosRun(config, platform, args.rabbitmq, random.Random(args.seed))  # noqa: S311
            result = asyncio.run(_run(run))
    finally:
        if run is not None and run.broker_stopped:
            services.rabbitmq_ensure_running(platform.settings.amqp_url)
    result["label"] = args.label
    result["run_dir"] = str(run_dir.relative_to(ROOT))
    return _write(result, args.out_dir, name)


def _set_gateway_timeouts(platform: Platform, timeouts: dict[str, int]) -> None:
    """The scenario's `gateway_timeout_ms` on the Gateway rows (what an operator sets in
    the admin), before any process reads them."""
    with psycopg.connect(platform.settings.database_url) as db:
        for code, timeout_ms in timeouts.items():
            changed = db.execute(
                "UPDATE gateways_gateway SET timeout_ms = %s WHERE code = %s", (timeout_ms, code)
            ).rowcount
            if changed != 1:
                raise SystemExit(f"gateway_timeout_ms: no gateway {code!r}")


async def _run(run: ChaosRun) -> dict[str, Any]:
    config, platform = run.config, run.platform
    run.simulator_up.set()
    http = http_client(platform.base_url, config["clients"], timeout=30)
    receiver = Receiver()
    await receiver.start()
    tracker = Tracker()
    receiver.on_delivery = tracker.delivery
    try:
        credentials = [(f"bench-app-{i}", APP_PASSWORD) for i in range(config["apps"])]
        apps = await wallet_apps_setup(
            http, credentials, receiver=receiver, wallet_currencies=("BRL", "USD")
        )
        mix = Mix(
            config["pix_share"],
            config["decline_share"],
            config["wallet_share"],
            exact=config.get("exact_mix", False),
        )
        factory = payment_factory(mix, len(apps.tokens), apps.wallets)
        await _apply_faults(run)
        generator = Generator(http, "/api/v1/payments", apps.tokens, factory)
        payer_queue: asyncio.Queue[str] = asyncio.Queue()
        generator.on_accepted = tracker.accept
        _watch_awaiting(tracker, payer_queue, config.get("pay_pix_share", 0.0), run.shown)
        shape = LoadShape(
            "rate",
            config["clients"],
            rate=config["rate"],
            count=config["count"],
            retry_for=config.get("retry_for_s", 120),
        )
        run.origin = time.time()
        posting_s = config["count"] / config["rate"]
        payers = [asyncio.create_task(_payer(run, payer_queue)) for _ in range(4)]
        payers.append(asyncio.create_task(_callback_retrier(run)))
        chaos = asyncio.create_task(_chaos(run, posting_s))
        samples = await generator.run(shape)
        posted = time.time()
        run.event(f"posting done: {len(tracker.accepted)} acknowledged", "posted")
        await chaos
        drained = await _drain(run, payer_queue, payers)
        if drained:  # whatever the last callbacks started, finished
            await asyncio.sleep(5)
            drained = await _drain(run, payer_queue, payers)
        # Only now: a payer's retry still waiting to be queued would otherwise never run,
        # and the second drain would wait for it until its timeout.
        for task in payers:
            task.cancel()
        report = await asyncio.to_thread(
            invariants.check,
            platform.settings.database_url,
            platform.simulator_url,
            set(tracker.accepted),
            check_ledger=lambda: _check_ledger(platform),
        )
    finally:
        await http.aclose()
        await receiver.stop()
    return _result(run, samples, posted, drained, report, receiver)


def _watch_awaiting(
    tracker: Tracker, queue: asyncio.Queue[str], share: float, shown: dict[str, str]
) -> None:
    """A share of the PIX charges issued get paid (chosen by payment id, reproducibly):
    the charge the payment shows, at its gateway (not one a fallback left behind)."""

    def completed(document: dict[str, Any]) -> None:
        if document["status"] == "awaiting_payment" and _chosen(document["id"], share):
            if document.get("gateway"):
                shown[document["id"]] = document["gateway"]
            queue.put_nowait(document["id"])

    tracker.on_complete = completed


def _chosen(payment_id: str, share: float) -> bool:
    return int(hashlib.sha256(payment_id.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF < share


async def _payer(run: ChaosRun, queue: asyncio.Queue[str]) -> None:
    """The payer pays the PIX charge at the simulator, which calls PayWave back."""
    async with httpx.AsyncClient(base_url=run.platform.simulator_url, timeout=10) as sim:
        while True:
            payment_id = await queue.get()
            await run.simulator_up.wait()
            run.paying += 1
            try:
                paid = await _pay(sim, run, payment_id)
            finally:
                run.paying -= 1
            if not paid:
                tries = run.pay_failures[payment_id] = run.pay_failures.get(payment_id, 0) + 1
                if tries < 20:
                    asyncio.get_running_loop().call_later(3, queue.put_nowait, payment_id)


async def _pay(sim: httpx.AsyncClient, run: ChaosRun, payment_id: str) -> bool:
    try:
        charges = (await sim.get("/_sim/charges", params={"reference": payment_id})).json()
        if payment_id in run.shown:  # the payer holds that code only
            charges = [c for c in charges if c["gateway"] == run.shown[payment_id]]
        pending = [c for c in charges if c["status"] in ("pending", "ATIVA")]
        if not pending:
            paid = any(c["status"] in ("approved", "CONCLUIDA") for c in charges)
            if paid and payment_id in run.pay_failures and payment_id not in run.paid:
                run.paid_unanswered.add(payment_id)
            return paid
        charge = pending[0]
        answer = await sim.post(
            f"/_sim/pix/{charge['id']}/pay", params={"gateway": charge["gateway"]}
        )
        if answer.status_code != 200:
            return False
        run.paid.add(payment_id)
        callback = answer.json()["callback"]
        if callback.get("delivered") and callback.get("status") == 200:
            run.callback_taken.add(payment_id)
        else:  # the gateway retries it (_callback_retrier), as real gateways do
            run.callback_retry[payment_id] = (callback["id"], time.time())
        return True
    except (httpx.HTTPError, KeyError, ValueError):
        return False


async def _callback_retrier(run: ChaosRun) -> None:
    """Redeliver every callback PayWave did not answer 200, every 5 s, for up to 10 min.

    A delivery the simulators forgot (they were restarted) cannot be sent again: such a
    payment is settled by reconciliation when its charge expires.
    """
    async with httpx.AsyncClient(base_url=run.platform.simulator_url, timeout=15) as sim:
        while True:
            await asyncio.sleep(5)
            await run.simulator_up.wait()
            for payment_id, (delivery_id, since) in list(run.callback_retry.items()):
                try:
                    answer = await sim.post(f"/_sim/callbacks/deliveries/{delivery_id}/redeliver")
                except httpx.HTTPError:
                    continue
                if answer.status_code == 404 or time.time() - since > 600:
                    run.callback_retry.pop(payment_id, None)
                    run.callback_lost.add(payment_id)
                    continue
                try:
                    result = answer.json()
                except ValueError:
                    continue  # not an answer to read: try again in 5 s
                result = result.get("callback", result)
                if result.get("delivered") and result.get("status") == 200:
                    run.callback_retry.pop(payment_id, None)
                    run.callback_taken.add(payment_id)


# --- chaos --------------------------------------------------------------------------


async def _chaos(run: ChaosRun, posting_s: float) -> None:
    config = run.config
    actions: list[tuple[float, Any]] = []
    for _ in range(config.get("worker_kills", 0)):
        actions.append((run.rng.uniform(0.05, 0.95) * posting_s, _kill_worker))
    for fault in config.get("gateway_faults", []):
        actions.append((fault["at"] * posting_s, lambda run, f=fault: _gateway_fault(run, f)))
    for at in config.get("simulator_restarts", []):
        actions.append((at * posting_s, _restart_simulator))
    if run.rabbitmq:
        for at in config.get("rabbitmq_restarts", []):
            actions.append((at * posting_s, _restart_rabbitmq))
    tasks = []
    for at, action in sorted(actions, key=lambda item: item[0]):
        delay = run.origin + at - time.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(action(run)))
    await asyncio.gather(*tasks)


async def _kill_worker(run: ChaosRun) -> None:
    name = run.rng.choice(run.platform.payments_processes)
    if not run.platform.processes[name].alive():
        return
    run.event(f"SIGKILL {name}", f"kill {name}")
    await asyncio.to_thread(run.platform.kill, name, signal.SIGKILL)
    await asyncio.sleep(run.rng.uniform(*run.config.get("worker_down_s", [1, 4])))
    await asyncio.to_thread(run.platform.start_process, name)
    run.platform.processes[name].restarts += 1
    run.event(f"restarted {name}", f"{name} up")


async def _gateway_fault(run: ChaosRun, fault: dict[str, Any]) -> None:
    """A gateway's faults for `duration_s`. A later fault on the same gateway replaces
    them at once (no calm in between); the end lifts only a fault still applied."""
    gateway, settings = fault["gateway"], fault["settings"]
    run.event(
        f"{gateway} faults {json.dumps(settings, separators=(',', ':'))}", f"{gateway} faults"
    )
    run.faults[gateway] = settings
    await _apply_faults(run)
    _end_windows(run, gateway)
    run.fault_windows.append(
        {"gateway": gateway, "settings": settings, "start": time.time(), "end": None}
    )
    await asyncio.sleep(fault["duration_s"])
    if run.faults.get(gateway) is not settings:
        return  # replaced by a later fault
    run.faults.pop(gateway)
    await _apply_faults(run)
    _end_windows(run, gateway)
    run.event(f"{gateway} calm", f"{gateway} ok")


def _end_windows(run: ChaosRun, gateway: str | None = None) -> None:
    """Faults end (and start) once the simulators have their new settings."""
    for window in run.fault_windows:
        if window["end"] is None and gateway in (None, window["gateway"]):
            window["end"] = time.time()


async def _apply_faults(run: ChaosRun) -> None:
    latency = run.config["simulator_latency_ms"]
    async with httpx.AsyncClient(base_url=run.platform.simulator_url, timeout=10) as sim:
        for gateway in GATEWAYS:
            settings = {"latency_ms": latency, **run.faults.get(gateway, {})}
            try:
                answer = await sim.put(f"/_sim/faults/{gateway}", json=settings)
            except httpx.HTTPError:
                continue  # down: applied again once it is back
            if answer.status_code != 200:  # a scenario's typo must not run as calm
                raise RuntimeError(f"faults {settings} for {gateway} refused: {answer.text}")


async def _restart_simulator(run: ChaosRun) -> None:
    run.event("SIGKILL simulators", "kill sim")
    run.simulator_up.clear()
    await asyncio.to_thread(run.platform.kill, "simulators", signal.SIGKILL)
    # Deliveries live in the simulators' memory (their ids start again at 1): forgotten.
    run.callback_lost |= set(run.callback_retry)
    run.callback_retry.clear()
    await asyncio.sleep(run.config.get("simulator_down_s", 3))
    await asyncio.to_thread(run.platform.start_process, "simulators")
    await asyncio.to_thread(run.platform.wait_process_ready, "simulators")
    await _apply_faults(run)  # faults are not kept in the state file
    run.simulator_up.set()
    run.event("simulators back (same state file)", "sim up")


async def _restart_rabbitmq(run: ChaosRun) -> None:
    run.event("rabbitmqctl stop_app", "rabbitmq stop")
    run.broker_stopped = True
    try:
        await asyncio.to_thread(services.rabbitmq_stop_app)
        await asyncio.sleep(run.config.get("rabbitmq_down_s", 10))
    finally:
        await asyncio.to_thread(services.rabbitmq_start_app)
        run.broker_stopped = False
    run.event("rabbitmqctl start_app", "rabbitmq start")


# --- drain and report -------------------------------------------------------------


async def _drain(
    run: ChaosRun, payer_queue: asyncio.Queue[str], helpers: list[asyncio.Task[None]]
) -> bool:
    """Every payment final or parked (or, with `drain_parked`, final), the paid PIX
    settled and every orphan withdrawn, absent or refunded, or the drain timeout.

    A payer or the callback retrier that died would leave work nobody does: that ends
    the drain as failed at once, with its error, instead of waiting for the timeout.
    """
    run.faults.clear()
    await _apply_faults(run)
    _end_windows(run)
    for name, process in run.platform.processes.items():
        if not process.alive():  # a process that died by itself is a finding, not a pause
            run.event(f"{name} was not running at the drain: started again")
            run.platform.start_process(name)
    deadline = time.time() + run.config["drain_timeout_s"]
    database = run.platform.settings.database_url
    wait_parked = run.config.get("drain_parked", False)
    waiting: dict[str, int] = {}
    while time.time() < deadline:
        dead = [t for t in helpers if t.done() and not t.cancelled() and t.exception()]
        if dead:
            run.event(f"the harness failed: {dead[0].exception()!r}", "harness failed")
            return False
        # Every paid PIX must settle: by its callback, or, for one the simulators lost when
        # they were killed, by reconciliation's look at the waiting charge
        # (PAYWAVE_PIX_CHECK_FIRST_SECONDS, shortened in the scenarios' env).
        # The invariants are checked once no orphan is open: one may still be live.
        paid = sorted(run.paid | run.paid_unanswered | run.callback_taken)
        left = await asyncio.to_thread(invariants.outstanding, database, paid)
        waiting = {k: n for k, n in left.items() if n and (k != "parked" or wait_parked)}
        if not waiting and payer_queue.empty() and not run.paying and not run.callback_retry:
            await asyncio.sleep(5)  # the last callbacks
            run.event("drained")
            return True
        await asyncio.sleep(3)
    run.event(f"drain timeout, still {json.dumps(waiting)}", "drain timeout")
    return False


def _check_ledger(platform: Platform) -> list[str] | None:
    try:
        platform.manage("check_ledger")
    except RuntimeError as exc:
        text = str(exc)
        if "Unknown command" in text:
            return None
        return [line for line in text.splitlines()[1:] if line.strip()]
    return []


def _result(
    run: ChaosRun,
    samples: list[Sample],
    posted: float,
    drained: bool,
    report: dict[str, Any],
    receiver: Receiver,
) -> dict[str, Any]:
    config = run.config
    not_settled = set(report["mismatches"]["paid_not_settled"])
    report["mismatch_counts"]["paid_not_settled_although_callback_taken"] = len(
        not_settled & run.callback_taken
    )
    report["mismatch_counts"]["paid_not_settled_callback_lost_in_simulator_restart"] = len(
        not_settled - run.callback_taken
    )
    completions = invariants.completion_times(run.platform.settings.database_url)
    outage_report = None
    if "outage" in config:
        outage_report = outage.report(
            run.platform.settings.database_url,
            run.platform.run_dir / "logs",
            run.fault_windows,
            run.origin,
            primary=config["outage"]["primary"],
            card_gateway=config["outage"]["card_gateway"],
        )
    outage_series = outage_report.pop("_series") if outage_report else {}
    accepted = accept_series(samples, run.origin)
    completed = per_second((done for _, done in completions), run.origin)
    completion_p50 = latency_per_second(
        ((done, done - made) for made, done in completions), run.origin, 0.50
    )
    return {
        "benchmark": "chaos",
        "scenario": config["name"],
        "at": datetime.now(UTC).isoformat(),
        "accepted": report["accepted"],
        "final": report["final"],
        "parked": report["parked"],
        "lost": report["lost"],
        "duplicate_charges": report["duplicate_charges"],
        "duplicate_payments": report["duplicate_payments"],
        "ledger_imbalance": report["ledger_imbalance"],
        "ledger_problems": report["ledger_problems"],
        "orphans": report["orphans"]["by_status"],
        "orphans_unresolved": report["orphans_unresolved"],
        "extra_payments_refunded": report["extra_payments_refunded"],
        "passed": _passed(report, drained=drained),
        "drained": drained,
        "host": host_platform.node(),
        "machine": {"cpus": os.cpu_count()},
        "payments_planned": config["count"],
        "rate_per_s": config["rate"],
        "posting_s": round(posted - run.origin, 1),
        "intake": accept_figures(samples, posted - run.origin),
        "completion_latency_ms": summary((done - made) * 1000 for made, done in completions),
        "pix_paid_at_simulator": len(run.paid),
        "pix_paid_unanswered": sorted(run.paid_unanswered),
        "pix_callbacks_taken": len(run.callback_taken),
        "pix_paid_callback_not_taken": sorted(run.paid - run.callback_taken)[:50],
        "pix_callbacks_lost_by_simulator": sorted(run.callback_lost)[:50],
        "webhooks": {
            "deliveries": receiver.deliveries,
            "duplicates": receiver.duplicates,
            "forged": receiver.forged,
        },
        **({"outage": outage_report} if outage_report else {}),
        "chaos": {
            "events": run.events,
            "fault_windows": [
                {
                    "gateway": w["gateway"],
                    "settings": w["settings"],
                    "start_s": round(w["start"] - run.origin, 2),
                    "end_s": round(w["end"] - run.origin, 2) if w["end"] else None,
                }
                for w in run.fault_windows
            ],
            "rabbitmq_restarted": run.rabbitmq,
            "restarts": {n: p.restarts for n, p in run.platform.processes.items() if p.restarts},
            "scenario": {k: v for k, v in config.items() if k not in ("env", "phases")},
            "env": config.get("env", {}),
            "resources": {
                "database": run.platform.settings.database,
                "vhost": run.platform.settings.vhost,
                "redis_db": run.platform.settings.redis_db,
            },
        },
        "invariants": report,
        "_series": {
            "phases": [
                {"name": "posting", "start": 0, "end": posted - run.origin},
                *(
                    {
                        "name": _fault_name(w),
                        "start": w["start"] - run.origin,
                        "end": (w["end"] or posted) - run.origin,
                    }
                    for w in run.fault_windows
                ),
            ],
            "events": run.events,
            "lines": {
                "throughput": {
                    "accepted/s": accepted["per_s"],
                    "final/s": [(t + 0.5, n) for t, n in enumerate(completed) if n],
                },
                "accept latency": {"accept p50": accepted["p50"], "accept p99": accepted["p99"]},
                "completion latency": {
                    "created→final p50": [
                        (t + 0.5, v) for t, v in enumerate(completion_p50) if v is not None
                    ],
                    **outage_series,
                },
            },
        },
    }


def _fault_name(window: dict[str, Any]) -> str:
    settings = window["settings"]
    if settings.get("down"):
        return f"{window['gateway']} {settings.get('down_mode', 'reset')}"
    return f"{window['gateway']} faults"


# Mismatches a reconciler must never find: money PayWave does not show, or shows wrongly.
FAILING_MISMATCHES = (
    "failed_with_live_charge",
    "charge_for_unknown_payment",
    "paid_not_settled_although_callback_taken",
    "paid_not_settled_callback_lost_in_simulator_restart",
)


def _passed(report: dict[str, Any], *, drained: bool) -> bool:
    return (
        drained
        and report["lost"] == 0
        and report["duplicate_charges"] == 0
        and report["duplicate_payments"] == 0
        and report["ledger_imbalance"] == 0
        and not report["ledger_problems"]
        and report["orphans_unresolved"] == 0
        and not any(report["mismatch_counts"].get(name) for name in FAILING_MISMATCHES)
    )


HEADLINE = [
    "accepted",
    "final",
    "parked",
    "lost",
    "duplicate_charges",
    "duplicate_payments",
    "ledger_imbalance",
    "orphans",
    "orphans_unresolved",
]


def _write(result: dict[str, Any], out_dir: Path, name: str) -> int:
    out_dir.mkdir(parents=True, exist_ok=True)
    series = result.pop("_series")
    title = f"PayWave chaos: {result['scenario']} ({result['payments_planned']} payments)"
    png = plot(series, title, out_dir / f"{name}.png")
    if png is not None:
        result["plot"] = str(png.relative_to(ROOT)) if png.is_relative_to(ROOT) else str(png)
    path = out_dir / f"{name}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    report = result["invariants"]
    print(json.dumps({k: result[k] for k in [*HEADLINE, "ledger_problems", "drained"]}, indent=2))
    print("mismatches:", json.dumps(report["mismatch_counts"]))
    print(f"bench: wrote {path}" + (f" and {png}" if png else ""))
    if not result["passed"]:
        print("bench: INVARIANTS BROKEN: see invariants.details in the result file")
    return 0 if result["passed"] else 1
