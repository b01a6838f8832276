"""`python -m bench load`: PayWave's intake and charging beside the bare stack, in one run.

python -m bench load --scenario latency0            # starts its own platform (see README)
python -m bench load --scenario latency200 --label after-fix
python -m bench load --base-url http://127.0.0.1:8000 --simulator-url http://127.0.0.1:8900 \\
    --username demo --password demo                 # against `make run`

Phases (scenarios.toml): the bare DRF insert at max rate, payments at max rate
(completions followed through webhooks), payments at max rate with charging paused
then the backlog charged, payments at half of that rate, the bare Celery no-op drained
by the payments worker, and the floor (bench/floor.py: the parts charging cannot
avoid, measured in process). The result JSON and PNG go to
bench/results/load_<scenario>[_<label>].{json,png}.
"""

import argparse
import asyncio
import json
import os
import platform as host_platform
import signal
import subprocess
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from bench import cpu, profiling, scenarios
from bench.completion import Tracker
from bench.figures import accept_figures, accept_series, completion_figures, completion_series
from bench.floor import (
    charging_cpu_per_payment,
    cpu_per_payment_ratio,
    floor_run,
    intake_ratio_bound,
    services_extra_ms,
)
from bench.loadgen import Generator, LoadShape, RequestFactory, http_client
from bench.noop import noop_drain, pause_consumers, resume_consumers
from bench.payloads import Mix, payment_factory
from bench.plot import plot
from bench.receiver import Receiver
from bench.stats import rate, ratio
from bench.supervisor import (
    APP_PASSWORD,
    ROOT,
    Platform,
    PlatformSettings,
    add_resource_arguments,
    resource_settings,
)
from bench.wallet_apps import WalletApps, wallet_apps_setup

RESULTS = ROOT / "bench" / "results"
GATEWAYS = ("stripe", "mercadopago", "gerencianet")


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench load",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--scenario", default="latency0", help=", ".join(scenarios.names("load")))
    parser.add_argument("--label", default="", help="appended to the result file names")
    parser.add_argument("--base-url", help="an already running platform (else start one)")
    parser.add_argument("--simulator-url", default="http://127.0.0.1:8900")
    parser.add_argument("--username", default="demo", help="with --base-url: the wallet app")
    parser.add_argument("--password", default="demo")
    parser.add_argument("--duration", type=float, help="seconds per phase (overrides)")
    parser.add_argument("--count", type=int, help="requests per phase (overrides)")
    parser.add_argument("--clients", type=int, help="concurrent connections (overrides)")
    parser.add_argument(
        "--rate", type=float, help="fixed rate of the half phase (default: half max)"
    )
    parser.add_argument("--latency-ms", type=int, help="simulator latency (overrides)")
    parser.add_argument(
        "--payments-workers", type=int, help="payments worker processes (overrides)"
    )
    parser.add_argument(
        "--phases", help="comma-separated subset of baseline,max,intake,half,noop,floor"
    )
    parser.add_argument("--profile", action="store_true", help="py-spy the API and payments worker")
    parser.add_argument("--out-dir", type=Path, default=RESULTS)
    add_resource_arguments(parser)
    return parser.parse_args(argv)


def settings_of(args: argparse.Namespace) -> dict[str, Any]:
    config = scenarios.scenario("load", args.scenario)
    for key, value in {
        "duration_s": args.duration,
        "count": args.count,
        "clients": args.clients,
        "simulator_latency_ms": args.latency_ms,
        "payments_workers": args.payments_workers,
    }.items():
        if value is not None:
            config[key] = value
    if args.phases:
        config["phases"] = args.phases.split(",")
    return config


def _terminate(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # unwinds through `with platform`, which stops every process


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    config = settings_of(args)
    signal.signal(signal.SIGTERM, _terminate)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    name = f"load_{config['name']}" + (f"_{args.label}" if args.label else "")
    run_dir = ROOT / "var" / "bench" / f"{name}-{stamp}"
    if args.base_url:
        result = asyncio.run(
            run(config, args, args.base_url, args.simulator_url, None, run_dir=run_dir)
        )
    else:
        platform = Platform(platform_settings(config, run_dir, resources=resource_settings(args)))
        with platform:
            print(f"bench: preparing the platform (logs in {run_dir / 'logs'})", flush=True)
            platform.prepare()
            platform.start()
            result = asyncio.run(
                run(config, args, platform.base_url, platform.simulator_url, platform, run_dir)
            )
    result["label"] = args.label
    write(result, args.out_dir, name)


def platform_settings(
    config: dict[str, Any],
    run_dir: Path,
    *,
    simulator_state_file: bool = False,
    resources: dict[str, Any] | None = None,
) -> PlatformSettings:
    """The scenario's platform; `resources`: its own database, vhost, Redis db (CLI)."""
    return PlatformSettings(
        **(resources or {}),
        simulator_state_file=simulator_state_file,
        run_dir=run_dir,
        api_workers=config["api_workers"],
        api_threads=config["api_threads"],
        payments_workers=config["payments_workers"],
        payment_concurrency=config["payment_concurrency"],
        worker_nice=config["worker_nice"],
        simulator_nice=config["simulator_nice"],
        apps=config["apps"],
        log_level=config["log_level"],
        env={k: str(v) for k, v in config.get("env", {}).items()},
    )


async def set_faults(simulator_url: str, config: dict[str, Any]) -> None:
    async with httpx.AsyncClient(base_url=simulator_url + "/_sim", timeout=10) as control:
        (await control.delete("/faults")).raise_for_status()
        for gateway in GATEWAYS:
            settings = {"latency_ms": config["simulator_latency_ms"]}
            settings.update(config.get("faults", {}).get(gateway, {}))
            (await control.put(f"/faults/{gateway}", json=settings)).raise_for_status()


@dataclass
class LoadRun:
    """What every phase of one run shares."""

    config: dict[str, Any]
    args: argparse.Namespace
    http: httpx.AsyncClient
    apps: WalletApps
    factory: RequestFactory
    receiver: Receiver
    platform: Platform | None
    run_dir: Path
    origin: float  # wall clock of the run's start: the plot's zero
    result: dict[str, Any]
    series: dict[str, Any] = field(default_factory=lambda: {"phases": [], "lines": {}})


async def run(
    config: dict[str, Any],
    args: argparse.Namespace,
    base_url: str,
    simulator_url: str,
    platform: Platform | None,
    run_dir: Path,
) -> dict[str, Any]:
    clients = config["clients"]
    if platform is not None:
        credentials = [(f"bench-app-{i}", APP_PASSWORD) for i in range(config["apps"])]
    else:
        credentials = [(args.username, args.password)]
    http = http_client(base_url, clients)
    receiver = Receiver()
    await receiver.start()
    try:
        apps = await wallet_apps_setup(http, credentials, receiver=receiver)
        await set_faults(simulator_url, config)
        mix = Mix(pix_share=config["pix_share"], decline_share=config["decline_share"])
        load = LoadRun(
            config=config,
            args=args,
            http=http,
            apps=apps,
            factory=payment_factory(mix, len(apps.tokens)),
            receiver=receiver,
            platform=platform,
            run_dir=run_dir,
            origin=time.time(),
            result=_header(config, base_url, platform, apps),
        )
        await _phases(load)
    finally:
        await http.aclose()
        await receiver.stop()
    _note_throttled(load.result)
    _ratios(load.result, config)
    load.result["series"] = load.series
    load.result["_plot_title"] = (
        f"PayWave load: {config['name']} (simulator latency {config['simulator_latency_ms']} ms, "
        f"{clients} clients, {host_platform.node()})"
    )
    return load.result


def _header(
    config: dict[str, Any], base_url: str, platform: Platform | None, apps: WalletApps
) -> dict[str, Any]:
    return {
        "benchmark": "load",
        "scenario": config["name"],
        "at": datetime.now(UTC).isoformat(),
        "host": host_platform.node(),
        "machine": {"cpus": os.cpu_count()},
        "base_url": base_url,
        "platform": _platform_figures(platform),
        "simulator_latency_ms": config["simulator_latency_ms"],
        "wallet_apps": len(apps.tokens),
        "clients": config["clients"],
        "completion_source": apps.note,
        "phases": {},
        "cpu_cores": {},
        "notes": [],
    }


async def _phases(load: LoadRun) -> None:
    config, result = load.config, load.result
    phases: list[str] = config["phases"]
    clients, duration, count = config["clients"], config["duration_s"], config.get("count", 0)
    flat_out = LoadShape("max", clients, duration=duration, count=count)
    if "baseline" in phases:
        await _baseline(load, flat_out)
    if "max" in phases:
        await _payments_phase(load, "max", flat_out)
    if "intake" in phases:
        await _intake_phase(load, flat_out)
    if "half" in phases:
        max_rate = result["phases"].get("max", {}).get("accepted_per_s")
        half_rate = load.args.rate or (max_rate / 2 if max_rate else None)
        if half_rate:
            shape = LoadShape("rate", clients, rate=half_rate, duration=duration, count=count)
            await _payments_phase(load, "half", shape)
        else:
            result["notes"].append("half phase skipped: no max rate measured and no --rate")
    if "noop" in phases:
        platform = load.platform
        broker = platform.settings.broker_url if platform else os.environ.get("CELERY_BROKER_URL")
        if broker:
            before = _cpu(platform)
            result["phases"]["noop"] = await asyncio.to_thread(
                noop_drain, broker, config["noop_tasks"]
            )
            result["cpu_cores"]["noop"] = _cpu_delta(platform, before)
        else:
            result["notes"].append("noop phase skipped: CELERY_BROKER_URL not set")
    if "floor" in phases:
        await _floor_phase(load)


async def _floor_phase(load: LoadRun) -> None:
    """Last: its scratch rows, cache entries and queue come after every other measurement,
    on a platform at rest, with the database as big as the run made it."""
    platform = load.platform
    if platform is None:
        load.result["notes"].append("floor phase skipped: it runs with the platform's settings")
        return
    print("bench: floor: measuring the parts of a charge in process", flush=True)
    # The gateways answer at once: what is measured is CPU, not the scenario's latency.
    await set_faults(
        platform.simulator_url, {**load.config, "simulator_latency_ms": 0, "faults": {}}
    )
    try:
        floor = await asyncio.to_thread(floor_run, platform, load.config, load.run_dir)
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
        load.result["notes"].append(f"floor phase failed: {exc}")
        return
    finally:
        await set_faults(platform.simulator_url, load.config)
    load.result["phases"]["floor"] = floor


async def _intake_floor(load: LoadRun) -> None:
    """An accept's floor, measured right after the bare insert it is set beside: this
    machine's speed drifts within a run, and the bound divides one by the other."""
    if load.platform is None:
        return
    try:
        floor = await asyncio.to_thread(
            floor_run, load.platform, load.config, load.run_dir, "intake"
        )
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
        load.result["notes"].append(f"intake floor failed: {exc}")
        return
    load.result["phases"]["baseline"]["intake_floor"] = floor


async def _baseline(load: LoadRun, shape: LoadShape) -> None:
    probe = await load.http.post(
        "/bench/bare-insert",
        json=load.factory(0)[1],
        headers={"Authorization": f"Bearer {load.apps.tokens[0]}"},
    )
    if probe.status_code == 404:
        load.result["notes"].append(
            "baseline skipped: /bench/bare-insert is off (PAYWAVE_BENCH_BASELINES=true enables it)"
        )
        return
    generator = Generator(load.http, "/bench/bare-insert", load.apps.tokens, load.factory)
    before, started = _cpu(load.platform), time.time()
    samples = await generator.run(shape)
    ended = time.time()
    load.result["phases"]["baseline"] = accept_figures(samples, ended - started)
    load.result["cpu_cores"]["baseline"] = _cpu_delta(load.platform, before)
    if "intake" in load.config["phases"]:  # the bound is on the intake phase's ratio
        await _intake_floor(load)
    lines = accept_series(samples, load.origin)
    load.series["phases"].append(
        {"name": "bare insert (max)", "start": started - load.origin, "end": ended - load.origin}
    )
    load.series["lines"].setdefault("throughput", {})["bare insert req/s"] = lines["per_s"]
    load.series["lines"].setdefault("accept latency", {})["bare insert p99"] = lines["p99"]


def _note_throttled(result: dict[str, Any]) -> None:
    """Say which phases the throttle refused requests in: they measured its rate
    (PAYWAVE_THROTTLE_RATE per wallet app and minute), not the API's."""
    for phase, figures in result["phases"].items():
        refused = figures.get("errors_by_status", {}).get("429", 0)
        if refused:
            message = (
                f"{phase}: {refused} requests refused by the throttle (429); its rate is "
                "the throttle's, not the API's (raise PAYWAVE_THROTTLE_RATE)"
            )
            result["notes"].append(message)
            print(f"bench: {message}", flush=True)


async def _payments_phase(load: LoadRun, phase: str, shape: LoadShape) -> None:
    tracker = Tracker()
    load.receiver.on_delivery = tracker.delivery
    generator = Generator(load.http, "/api/v1/payments", load.apps.tokens, load.factory)
    generator.on_accepted = tracker.accept
    profilers = _start_profiling(load, phase, shape)
    before, started = _cpu(load.platform), time.time()
    samples = await generator.run(shape)
    ended = time.time()
    cpu_during_load = _cpu_delta(load.platform, before)
    print(
        f"bench: {phase}: {len(tracker.accepted)} accepted in {ended - started:.1f} s; "
        "waiting for completions",
        flush=True,
    )
    await _await_completions(load, tracker)
    figures = accept_figures(samples, ended - started)
    if shape.mode == "rate":
        figures["target_rate_per_s"] = round(shape.rate, 1)
    figures["completion"] = completion_figures(tracker)
    load.result["phases"][phase] = figures
    load.result["cpu_cores"][phase] = cpu_during_load
    if profilers:
        load.result.setdefault("profile", {})[phase] = _finish_profiling(profilers)
    label = "payments at max rate" if phase == "max" else f"payments at {shape.rate:.0f}/s"
    load.series["phases"].append(
        {"name": label, "start": started - load.origin, "end": ended - load.origin}
    )
    accepted = accept_series(samples, load.origin)
    completed = completion_series(tracker, load.origin)
    lines = load.series["lines"]
    lines.setdefault("throughput", {})[f"accepted/s ({phase})"] = accepted["per_s"]
    lines["throughput"][f"completed/s ({phase})"] = completed["per_s"]
    lines.setdefault("accept latency", {})[f"accept p50 ({phase})"] = accepted["p50"]
    lines["accept latency"][f"accept p99 ({phase})"] = accepted["p99"]
    lines.setdefault("completion latency", {})[f"created→final p50 ({phase})"] = completed["p50_s"]


async def _await_completions(load: LoadRun, tracker: Tracker) -> None:
    """Until every accepted payment of the phase completed (webhooks, then polling)."""
    await tracker.wait(
        load.http,
        load.apps.tokens,
        timeout=load.config["drain_timeout_s"],
        quiet_before_poll=20,
        webhooks=load.apps.webhooks,
    )


async def _intake_phase(load: LoadRun, shape: LoadShape) -> None:
    """Payments at max rate with the payments workers paused: the API's own ceiling.
    Then the workers resume on the backlog: charging's own ceiling, with no intake."""
    platform = load.platform
    if platform is None:
        load.result["notes"].append("intake phase skipped: it pauses the bench's own workers")
        return
    broker = platform.settings.broker_url
    workers = await asyncio.to_thread(pause_consumers, broker)
    tracker = Tracker()
    load.receiver.on_delivery = tracker.delivery
    generator = Generator(load.http, "/api/v1/payments", load.apps.tokens, load.factory)
    generator.on_accepted = tracker.accept
    try:
        before, started = _cpu(platform), time.time()
        samples = await generator.run(shape)
        ended = time.time()
        cpu_intake = _cpu_delta(platform, before)
    finally:
        await asyncio.to_thread(resume_consumers, broker, workers)
    resumed, before = time.time(), _cpu(platform)
    await _await_completions(load, tracker)
    after = cpu.snapshot(_groups(platform))
    figures = accept_figures(samples, ended - started)
    backlog = completion_figures(tracker)
    last = max((c.completed_at for c in tracker.done.values()), default=resumed)
    backlog["completed_per_s_from_resume"] = rate(len(tracker.done), last - resumed)
    # From the resume until every payment of the backlog was completed (and notified).
    backlog["cpu_s"] = cpu.seconds_between(before[0], after)
    backlog["cpu_ms_per_payment"] = charging_cpu_per_payment(backlog["cpu_s"], len(tracker.done))
    figures["completion"] = backlog
    load.result["phases"]["intake"] = figures
    load.result["cpu_cores"]["intake"] = cpu_intake
    load.result["cpu_cores"]["backlog"] = _cpu_delta(platform, before, after)
    load.series["phases"].append(
        {"name": "intake only", "start": started - load.origin, "end": ended - load.origin}
    )
    accepted = accept_series(samples, load.origin)
    completed = completion_series(tracker, load.origin)
    lines = load.series["lines"]
    lines.setdefault("throughput", {})["accepted/s (intake only)"] = accepted["per_s"]
    lines["throughput"]["completed/s (backlog)"] = completed["per_s"]
    lines.setdefault("accept latency", {})["accept p99 (intake only)"] = accepted["p99"]


Profilers = dict[str, tuple[subprocess.Popen[bytes], Path]]


def _start_profiling(load: LoadRun, phase: str, shape: LoadShape) -> Profilers:
    if not load.args.profile or load.platform is None or phase != "max":
        return {}
    if not profiling.available():
        print("py-spy is missing: .venv/bin/pip install -r requirements-bench.txt")
        return {}
    seconds = int(shape.duration or 30)
    out = load.run_dir / "profiles"
    out.mkdir(parents=True, exist_ok=True)
    started: Profilers = {}
    for name in ("api", "payments1", "worker"):
        process = load.platform.processes.get(name)
        if process is not None and process.pid:
            path = out / f"{name}.txt"
            started[name] = (profiling.record(process.pid, seconds, path), path)
    return started


def _finish_profiling(profilers: Profilers) -> dict[str, Any]:
    summaries = {}
    for name, (process, path) in profilers.items():
        process.wait(timeout=120)
        summaries[name] = profiling.summarize(path)
    return summaries


def _cpu(platform: Platform | None) -> Any:
    sessions = cpu.pg_sessions(platform.settings.database_url) if platform else None
    return cpu.snapshot(_groups(platform)), sessions


def _cpu_delta(platform: Platform | None, before: Any, after: Any = None) -> dict[str, float]:
    """Cores per process during the phase (until `after`, a snapshot, or now), and how many
    PostgreSQL sessions were opened (a backend process each: their CPU is gone with them
    when they end within the phase, so the machine's total is the figure to trust)."""
    snapshot, sessions = before
    after = after or cpu.snapshot(_groups(platform))
    cores: dict[str, Any] = cpu.cores_between(snapshot, after)
    if platform is not None and sessions is not None:
        opened = cpu.pg_sessions(platform.settings.database_url) - sessions
        cores["postgresql sessions opened"] = opened
        cores["postgresql sessions opened per s"] = round(
            opened / (time.monotonic() - snapshot[0]), 1
        )
    return cores


def _groups(platform: Platform | None) -> dict[str, int]:
    if platform is None:
        return {}
    return {name: p.pid for name, p in platform.processes.items() if p.alive() and p.pid}


def _platform_figures(platform: Platform | None) -> dict[str, Any]:
    if platform is None:
        return {"started_by_bench": False}
    s = platform.settings
    return {
        "started_by_bench": True,
        "api": f"gunicorn {s.api_workers} workers x {s.api_threads} threads",
        "payments_workers": s.payments_workers,
        "payment_concurrency": s.payment_concurrency,
        "worker_nice": s.worker_nice,
        "simulator_nice": s.simulator_nice,
        "log_level": s.log_level,
        "database": s.database,
        "broker_vhost": s.vhost,
        "redis_db": s.redis_db,
    }


def _ratios(result: dict[str, Any], config: dict[str, Any]) -> None:
    phases = result["phases"]
    accepted = phases.get("max", {}).get("accepted_per_s")
    bare = phases.get("baseline", {}).get("accepted_per_s")
    completed = phases.get("max", {}).get("completion", {}).get("completed_per_s")
    noop = phases.get("noop", {}).get("tasks_per_s")
    concurrency = config["payment_concurrency"] * config["payments_workers"]
    latency_s = config["simulator_latency_ms"] / 1000
    bound = round(concurrency / latency_s, 1) if latency_s else None
    half = phases.get("half", {})
    intake = phases.get("intake", {})
    backlog = intake.get("completion", {}).get("completed_per_s_from_resume")
    charging = intake.get("completion", {}).get("cpu_ms_per_payment")
    lean_floor_ms = phases.get("floor", {}).get("lean_floor_ms")
    intake_floor_ms = phases.get("baseline", {}).get("intake_floor", {}).get("intake_floor_ms")
    bare_machine_cores = result["cpu_cores"].get("baseline", {}).get("machine (all processes)")
    services_ms = services_extra_ms(result["cpu_cores"], bare, intake.get("accepted_per_s"))
    result.update(
        {
            "intake_only_accepted_per_s": intake.get("accepted_per_s"),
            "intake_only_accept_ratio": ratio(intake.get("accepted_per_s"), bare),
            "backlog_completed_per_s": backlog,
            # Like for like with the no-op (a backlog drained, nothing else running):
            "backlog_completion_ratio": ratio(backlog, noop),
            "backlog_latency_bound_ratio": ratio(backlog, bound),
            "accepted_per_s": accepted,
            "bare_insert_per_s": bare,
            "accept_ratio": ratio(accepted, bare),
            "half_rate_per_s": half.get("target_rate_per_s"),
            "p99_accept_latency_half_rate_ms": (half.get("accept_latency_ms") or {}).get("p99"),
            "completed_per_s": completed,
            "noop_tasks_per_s": noop,
            "completion_ratio": ratio(completed, noop),
            "worker_concurrency": concurrency,
            "latency_bound_per_s": bound,
            "latency_bound_ratio": ratio(completed, bound),
            "lean_floor_ms": lean_floor_ms,
            # Payments workers and webhook worker, CPU ms per payment of the backlog:
            "backlog_charging_cpu_ms": charging["total"] if charging else None,
            "cpu_per_payment_ratio": cpu_per_payment_ratio(charging, lean_floor_ms),
            "intake_floor_ms": intake_floor_ms,
            "intake_services_extra_ms": services_ms,
            "intake_ratio_bound": intake_ratio_bound(
                bare, bare_machine_cores, intake_floor_ms, services_ms
            ),
        }
    )


HEADLINE = [
    "accepted_per_s",
    "bare_insert_per_s",
    "accept_ratio",
    "half_rate_per_s",
    "p99_accept_latency_half_rate_ms",
    "completed_per_s",
    "noop_tasks_per_s",
    "completion_ratio",
    "latency_bound_per_s",
    "latency_bound_ratio",
    "intake_only_accepted_per_s",
    "intake_only_accept_ratio",
    "backlog_completed_per_s",
    "backlog_completion_ratio",
    "backlog_latency_bound_ratio",
    "lean_floor_ms",
    "backlog_charging_cpu_ms",
    "cpu_per_payment_ratio",
    "intake_floor_ms",
    "intake_services_extra_ms",
    "intake_ratio_bound",
]


def write(result: dict[str, Any], out_dir: Path, name: str) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    series = result.pop("series")
    title = result.pop("_plot_title")
    png = plot(series, title, out_dir / f"{name}.png")
    if png is not None:
        result["plot"] = str(png.relative_to(ROOT)) if png.is_relative_to(ROOT) else str(png)
    ordered = {k: result[k] for k in ("benchmark", "scenario", "label", "at") if k in result}
    ordered.update({k: result.get(k) for k in HEADLINE})
    ordered.update({k: v for k, v in result.items() if k not in ordered})
    path = out_dir / f"{name}.json"
    path.write_text(json.dumps(ordered, indent=2) + "\n")
    print(json.dumps({k: ordered[k] for k in HEADLINE}, indent=2))
    for note in ordered.get("notes", []):
        print("note:", note)
    print(f"bench: wrote {path}" + (f" and {png}" if png else ""))
