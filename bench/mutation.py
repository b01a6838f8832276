"""`python -m bench mutation`: do the tests fail when the money code breaks?

make mutation                                          # every module, four runs at once
python -m bench mutation --module payments/charges.py  # one (or more: repeat --module)
python -m bench mutation --label before                # bench/results/mutation_before.json

mutmut (requirements-mutation.txt) changes one small thing at a time in a module's
functions (a comparison flipped, an argument dropped or made None, a constant or a
string changed, an `and` made `or`, ...) and runs the module's own tests
(bench/mutation.toml) against each such mutant: a mutant is *killed* when a test fails,
*survived* when they all pass. Only the tests that call the mutated function run (mutmut
records which in a first run of them all), fastest first, stopping at the first failure.

Each module runs in its own mutmut work directory, `var/mutation/<module>/` (links to
the checkout; mutmut's copy of it, with the mutants, in `mutants/`; its log in
`mutmut.log`). Every test session uses the test database `test_<db>_mutation`, made once
per run (bench/mutation_pytest.py), and the Redis database and RabbitMQ virtual host of
REDIS_URL and CELERY_BROKER_URL: one mutant is tested at a time, so sessions never share
them. Everything a run starts runs in one process group, killed when the run ends.

The report (`bench/results/mutation[_<label>].json` and `.md`) gives per module the
mutants killed, survived, timed out, untested, the kill rate (killed and timed out over
all) and every survivor with its diff. A survivor listed in
bench/mutation_survivors.toml carries its reason (equivalent: no behaviour changes;
harmless: only what no contract promises changes); one that is not is *unexplained*.
A run of some modules (--module) rewrites their part of the report and keeps the others'.
"""

import argparse
import ast
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import threading
import time
import tomllib
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime
from fnmatch import fnmatch
from pathlib import Path
from queue import Queue
from typing import Any
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from bench import services

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "bench" / "mutation.toml"
SURVIVORS = ROOT / "bench" / "mutation_survivors.toml"
WORK = ROOT / "var" / "mutation"
RESULTS = ROOT / "bench" / "results"
SERVICE_URLS = ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL")
# What mutmut's work directory links to: the checkout (tests read docs/ too), less these.
NOT_LINKED = {".git", ".venv", "var"}
CAUGHT = ("killed", "timeout")

# Run in a module's work directory by the same interpreter: each mutant's diff, as JSON.
_DIFFS = """
import json, sys
from mutmut.mutation.diff_apply import get_diff_for_mutant
path, names = sys.argv[1], sys.argv[2:]
print(json.dumps({name: get_diff_for_mutant(name, path=path) for name in names}))
"""


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench mutation", description=__doc__)
    parser.add_argument(
        "--module", action="append", default=[], help="a path of bench/mutation.toml (repeat)"
    )
    parser.add_argument("--label", default="", help="writes mutation_<label>.json/.md")
    parser.add_argument(
        "--baseline",
        type=Path,
        default=RESULTS / "mutation_before.json",
        help="an earlier report whose kill rates the report shows beside its own",
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep mutmut's results in var/mutation (resume)"
    )
    parser.add_argument(
        "--module-timeout-s", type=float, help="stop a module's run past this (default: the toml's)"
    )
    parser.add_argument(
        "--jobs",
        type=int,
        default=4,
        help="runs at once (modules, or shards of one), each with a test database and a Redis "
        "of its own (the second on: a private redis-server, which must be on PATH). A test "
        "session waits on sockets a good part of its time: on 2 cores, two runs at once "
        "left a third of the CPU idle",
    )
    parser.add_argument(
        "--rerun-explained",
        action="store_true",
        help="test again the survivors bench/mutation_survivors.toml explains (by default they "
        "are reported as they were: equivalent or harmless, no test can kill them)",
    )
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="run nothing: report what the work directories in var/mutation hold",
    )
    parser.add_argument("--out-dir", type=Path, default=RESULTS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    missing = [name for name in SERVICE_URLS if not os.environ.get(name)]
    if missing:
        print("bench mutation: set " + ", ".join(missing) + " (the tests need the real services)")
        return 2
    config = tomllib.loads(CONFIG.read_text())
    modules = _selected(config["module"], args.module)
    explained = tomllib.loads(SURVIVORS.read_text()).get("survivor", [])
    signal.signal(signal.SIGTERM, _terminate)

    started = time.monotonic()
    started_at = datetime.now(UTC)
    run = {
        **config["run"],
        "module_timeout_s": args.module_timeout_s or config["run"]["module_timeout_s"],
    }
    # Longest first (by the last report), so that no long run starts last, alone.
    units = sorted(
        (unit for module in modules for unit in work_units(module)), key=lambda u: -u["cost"]
    )
    runs: dict[Path, dict[str, Any]] = {}
    if not args.report_only:
        with _slots(max(1, min(args.jobs, len(units)))) as slots:

            def test(unit: dict[str, Any]) -> None:
                env = slots.get()
                try:
                    if _STOPPING.is_set():
                        return
                    print(f"bench mutation: {unit['workdir'].name} started", flush=True)
                    skip = [] if args.rerun_explained else explained
                    runs[unit["workdir"]] = run_unit(
                        unit, run, env=env, keep=args.keep, explained=skip
                    )
                finally:
                    slots.put(env)
                print(f"bench mutation: {unit['workdir'].name} done", flush=True)

            pool = ThreadPoolExecutor(max_workers=slots.qsize())
            try:
                list(pool.map(test, units))
            except (KeyboardInterrupt, SystemExit):
                print("bench mutation: stopped; reporting what was tested", flush=True)
                _stop_runs()  # before waiting for the threads, whose runs it ends
            finally:
                pool.shutdown(cancel_futures=True)
    reports = []
    all_runs: list[dict[str, Any]] = []
    for module in modules:
        module_runs = [runs.get(unit["workdir"]) or _last_run(unit) for unit in work_units(module)]
        all_runs += module_runs
        report = module_report(module, module_runs)
        report["survivors"] = [_explain(s, explained, module["path"]) for s in report["survivors"]]
        print(f"bench mutation: {module['path']}: {_summary_line(report)}", flush=True)
        reports.append(report)

    duration_s = round(time.monotonic() - started, 1)
    if args.report_only:  # the runs' wall time: from the first start to the last end
        starts = [r["ended_at"] - r["duration_s"] for r in all_runs if r.get("ended_at")]
        stops = [r["ended_at"] for r in all_runs if r.get("ended_at")]
        duration_s = round(max(stops) - min(starts), 1) if stops else 0.0
        if starts:
            started_at = datetime.fromtimestamp(min(starts), UTC)
    result = {
        "tool": f"mutmut {_mutmut_version()}",
        "started_at": started_at.isoformat(timespec="seconds"),
        "duration_s": duration_s,
        "host": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "config": "bench/mutation.toml",
        "modules": reports,
        "total": _totals(reports),
    }
    for report in reports:
        report["started_at"] = result["started_at"]
    name = "mutation" + (f"_{args.label}" if args.label else "")
    previous = args.out_dir / f"{name}.json"
    if args.module and previous.exists():  # some modules: the others as the report had them
        order = [module["path"] for module in config["module"]]
        result = merged(result, json.loads(previous.read_text()), order, explained)
    baseline = _baseline(args.baseline, args.label)
    if baseline:
        result["baseline"] = baseline
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out_dir / f"{name}.md").write_text(markdown(result))
    print(f"bench mutation: {_summary_line(result['total'])} in {result['duration_s']:.0f} s")
    print(f"bench mutation: wrote {args.out_dir / name}.json and .md")
    return 0 if all(r["finished"] for r in reports) else 1


def merged(
    result: dict[str, Any],
    previous: dict[str, Any],
    order: list[str],
    explained: list[dict[str, Any]],
) -> dict[str, Any]:
    """`result` with the modules it did not run as `previous`, the report it replaces, had
    them (their survivors explained anew), in the toml's order; the total over them all."""
    ran = {report["module"] for report in result["modules"]}
    kept = [
        {
            **report,
            "started_at": report.get("started_at", previous["started_at"]),
            "survivors": [_explain(s, explained, report["module"]) for s in report["survivors"]],
        }
        for report in previous["modules"]
        if report["module"] not in ran and report["module"] in order
    ]
    if not kept:
        return result
    modules = sorted([*result["modules"], *kept], key=lambda report: order.index(report["module"]))
    return {**result, "modules": modules, "total": _totals(modules), "kept": len(kept)}


def _last_run(unit: dict[str, Any]) -> dict[str, Any]:
    """How the unit's last run went, as it wrote it down; never run: unfinished."""
    record = unit["workdir"] / "run.json"
    if record.exists():
        return json.loads(record.read_text())
    return {"finished": False, "duration_s": 0.0, "ended_at": None}


def _terminate(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)


# Runs in flight (killed whole if the bench is stopped) and whether it is being stopped.
_RUNNING: set[subprocess.Popen[Any]] = set()
_RUNNING_LOCK = threading.Lock()
_STOPPING = threading.Event()


@contextmanager
def _slots(jobs: int) -> Iterator[Queue[dict[str, str]]]:
    """One environment per concurrent run: its own test database and Redis.

    The first uses REDIS_URL; each other one a redis-server of its own on a Unix socket
    (no persistence), stopped at the end. Every test flushes its Redis database, so two
    runs must never share one.
    """
    WORK.mkdir(parents=True, exist_ok=True)
    servers: list[subprocess.Popen[Any]] = []
    vhosts: list[str] = []
    slots: Queue[dict[str, str]] = Queue()
    try:
        for index in range(jobs):
            # A suffix already set keeps two checkouts' runs apart on one PostgreSQL.
            suffix = os.environ.get("PAYWAVE_MUTATION_DB_SUFFIX", "") + (
                f"_{index}" if index else ""
            )
            env = {**os.environ, "PAYWAVE_MUTATION_DB_SUFFIX": suffix}
            if index:
                socket = WORK / f"redis{suffix}.sock"  # two runs in one checkout: two names
                servers.append(_redis_server(socket))
                env["REDIS_URL"] = f"unix://{socket}"
                env["CELERY_BROKER_URL"] = _own_vhost(os.environ["CELERY_BROKER_URL"], suffix)
                vhosts.append(env["CELERY_BROKER_URL"])
            print(f"bench mutation: preparing test database {index + 1} of {jobs}", flush=True)
            _prepare_database(env)
            slots.put(env)
        yield slots
    finally:
        _stop_runs()
        for server in servers:
            _kill_group(server)
        for url in vhosts:
            services.delete_vhost(url, urlsplit(url).path.lstrip("/"))


def _stop_runs() -> None:
    _STOPPING.set()
    with _RUNNING_LOCK:
        running = list(_RUNNING)
    for process in running:
        _kill_group(process)


def _own_vhost(amqp_url: str, suffix: str) -> str:
    """The broker URL with a RabbitMQ virtual host of the run's own, made empty now: tests
    purge and read the payments queue, so two runs must not share one."""
    parts = urlsplit(amqp_url)
    vhost = (unquote(parts.path.lstrip("/")) or "default").replace("/", "") + f"_mutation{suffix}"
    base = urlunsplit(parts._replace(path=""))
    services.recreate_vhost(base, vhost)
    return urlunsplit(parts._replace(path="/" + quote(vhost, safe="")))


def _redis_server(socket: Path) -> subprocess.Popen[Any]:
    socket.unlink(missing_ok=True)
    options = ["--port", "0", "--unixsocket", str(socket), "--unixsocketperm", "700"]
    options += ["--save", "", "--appendonly", "no", "--dir", str(socket.parent)]
    server = subprocess.Popen(  # noqa: S603
        ["redis-server", *options],  # noqa: S607 (the one on PATH, as the docs say)
        stdout=subprocess.DEVNULL,
        start_new_session=True,
    )
    for _ in range(100):
        if socket.exists():
            return server
        time.sleep(0.05)
    _kill_group(server)
    raise SystemExit(f"bench mutation: redis-server did not open {socket}")


def _selected(modules: list[dict[str, Any]], wanted: list[str]) -> list[dict[str, Any]]:
    known = {module["path"] for module in modules}
    unknown = [path for path in wanted if path not in known]
    if unknown:
        raise SystemExit(f"bench mutation: not in bench/mutation.toml: {', '.join(unknown)}")
    if not wanted:
        return modules
    by_path = {module["path"]: module for module in modules}
    return [by_path[path] for path in dict.fromkeys(wanted)]  # in the order asked


def _prepare_database(env: dict[str, str]) -> None:
    subprocess.run(
        [sys.executable, "-c", "import bench.mutation_pytest as m; m.prepare_database()"],
        cwd=ROOT,
        env={**env, "DJANGO_SETTINGS_MODULE": "config.settings.test"},
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def work_units(module: dict[str, Any]) -> list[dict[str, Any]]:
    """A module's mutmut runs: one, or `shards` that split its functions between them.

    A shard is a run of its own (work directory, stats, clean run) over the mutants of
    some of the module's functions, so the shards of a long module can run at once.
    """
    path = module["path"]
    name = path.removesuffix(".py").replace("/", ".")
    shards = int(module.get("shards", 1))
    functions = in_scope(module)
    if shards <= 1:
        scoped = bool(module.get("functions"))
        patterns = [f"{name}.{function}__mutmut_*" for function in functions] if scoped else []
        cost = sum(_function_costs(path, functions).values())
        return [{"module": module, "workdir": WORK / name, "patterns": patterns, "cost": cost}]
    costs = _function_costs(path, functions)
    bins: list[list[str]] = [[] for _ in range(shards)]
    weights = [0.0] * shards
    for function, cost in sorted(costs.items(), key=lambda item: -item[1]):
        lightest = weights.index(min(weights))
        bins[lightest].append(f"{name}.{function}__mutmut_*")
        weights[lightest] += cost
    return [
        {
            "module": module,
            "workdir": WORK / f"{name}.shard{index}",
            "patterns": patterns,
            "cost": weights[index],
        }
        for index, patterns in enumerate(bins)
        if patterns
    ]


def _function_costs(path: str, functions: dict[str, int]) -> dict[str, float]:
    """What testing each function's mutants costs, to balance a module's shards: the
    seconds the last report (bench/results/mutation.json) measured, where it has them;
    otherwise (a new function, no report) its length in lines, scaled to seconds by the
    functions that have both."""
    measured: dict[str, float] = {}
    per_line = 1.0
    try:
        report = json.loads((RESULTS / "mutation.json").read_text())
        [module] = [m for m in report["modules"] if m["module"] == path]
        measured = module.get("seconds_by_function", {})
        # Without per-function seconds, the module's seconds spread over its lines.
        per_line = module["duration_s"] / max(1, sum(functions.values()))
    except (OSError, ValueError, KeyError):
        pass
    known = {f: measured[_readable(f)] for f in functions if _readable(f) in measured}
    known_lines = sum(functions[f] for f in known)
    if known_lines:
        per_line = sum(known.values()) / known_lines
    return {f: known.get(f, lines * per_line) for f, lines in functions.items()}


def in_scope(module: dict[str, Any]) -> dict[str, int]:
    """The functions of the module that are mutated (mutmut's names, and their lengths):
    the toml's `functions` (`name`, or `Class.method`), or all of them."""
    found = _functions(module["path"])
    wanted = module.get("functions")
    if not wanted:
        return found
    chosen = {mangled: lines for mangled, lines in found.items() if _readable(mangled) in wanted}
    missing = set(wanted) - {_readable(mangled) for mangled in chosen}
    if missing:
        raise SystemExit(f"bench mutation: {module['path']} has no {', '.join(sorted(missing))}")
    return chosen


def _readable(mangled: str) -> str:
    """`x_f` -> `f`; `xǁCǁm` -> `C.m`."""
    if mangled.startswith("x_"):
        return mangled[2:]
    return mangled.removeprefix("xǁ").replace("ǁ", ".")  # not strip(): `_pix` ends in an x


def _functions(path: str) -> dict[str, int]:
    """mutmut's name for each function and method of the module, and its length in lines."""
    found = {}
    for node in ast.parse((ROOT / path).read_text()).body:
        members = [(node, "")] if isinstance(node, ast.FunctionDef) else []
        if isinstance(node, ast.ClassDef):
            members = [(m, node.name) for m in node.body if isinstance(m, ast.FunctionDef)]
        for function, owner in members:
            mangled = f"xǁ{owner}ǁ{function.name}" if owner else f"x_{function.name}"
            found[mangled] = (function.end_lineno or function.lineno) - function.lineno + 1
    return found


def run_unit(
    unit: dict[str, Any],
    run: dict[str, Any],
    *,
    env: dict[str, str],
    keep: bool,
    explained: list[dict[str, Any]],
) -> dict[str, Any]:
    """One mutmut run in its work directory; how long it took and whether it finished.

    Survivors `explained` (mutation_survivors.toml) are not tested again: each runs every
    test of its function, the bulk of a run's time, to survive as it did.
    """
    workdir = unit["workdir"]
    if workdir.exists() and not keep:
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    linked = _link_checkout(workdir)
    (workdir / "setup.cfg").write_text(_mutmut_config(unit["module"], run, linked))
    # A fresh test database: what earlier runs left in it (rows of a run stopped mid-test,
    # a migration's seed a transactional test emptied) must not fail this one's tests.
    _prepare_database(env)
    started = time.monotonic()
    log_path = workdir / "mutmut.log"
    path = unit["module"]["path"]
    module_explained = [entry for entry in explained if entry["module"] == path]
    names = _untested_less_explained(unit, module_explained, env=env, keep=keep)
    patterns = unit["patterns"] if names is None else names
    finished = names == []  # nothing left to test
    for _ in range(0 if finished or _STOPPING.is_set() else 2):  # flaky first run: again
        finished = _run_mutmut(
            workdir, log_path, patterns, env=env, timeout_s=run["module_timeout_s"]
        )
        tested = {s for s in _statuses(workdir, path).values()} - {"not checked"}
        if finished or tested or _STOPPING.is_set():
            break
        print(f"bench mutation: {workdir.name} failed before any mutant; once more", flush=True)
    run = {
        "finished": finished,
        "duration_s": round(time.monotonic() - started, 1),
        "ended_at": time.time(),
    }
    (workdir / "run.json").write_text(json.dumps(run))  # what --report-only reports later
    return run


def _untested_less_explained(
    unit: dict[str, Any], explained: list[dict[str, Any]], *, env: dict[str, str], keep: bool
) -> list[str] | None:
    """The names of the unit's mutants to test: all of them (or, resuming, those not tested
    yet) but the survivors `explained` names, which are recorded as survived untested.
    None: test them all (nothing is explained, or the mutants could not be made).

    mutmut makes its mutants (and records which tests reach each function) in a first
    run that tests none of them: its filter matches no mutant.
    """
    if not explained:
        return None
    workdir, path = unit["workdir"], unit["module"]["path"]
    dotted = path.removesuffix(".py").replace("/", ".")
    with (workdir / "mutmut-generate.log").open("w") as log, _RUNNING_LOCK:
        process = subprocess.Popen(  # noqa: S603 (our venv's mutmut)
            [str(Path(sys.executable).with_name("mutmut")), "run", f"{dotted}.no_such_mutant"],
            cwd=workdir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        _RUNNING.add(process)
    try:
        process.wait()  # it ends when its filter matched nothing
    finally:
        _kill_group(process)
        with _RUNNING_LOCK:
            _RUNNING.discard(process)
    statuses = _statuses(workdir, path)
    if not statuses:
        return None
    wanted = [
        name
        for name in statuses
        if not unit["patterns"] or any(fnmatch(name, pattern) for pattern in unit["patterns"])
    ]
    diffs = _diffs(workdir, path, wanted)
    source = (ROOT / path).read_text()
    skipped = [
        name
        for name in wanted
        if _explain(_survivor(name, "survived", diffs.get(name, ""), source), explained, path)[
            "kind"
        ]
        != "unexplained"
    ]
    meta_path = workdir / "mutants" / f"{path}.meta"
    meta = json.loads(meta_path.read_text())
    for name in skipped:
        meta["exit_code_by_key"][name] = 0  # survived, as mutation_survivors.toml says
    meta_path.write_text(json.dumps(meta))
    (workdir / "not_rerun.json").write_text(json.dumps(skipped))
    return [
        name
        for name in wanted
        if name not in skipped and (not keep or statuses[name] == "not checked")
    ]


def module_report(module: dict[str, Any], runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The module's results, merged from the work directories of its runs."""
    path = module["path"]
    units = work_units(module)
    scope = set(map(_readable, in_scope(module))) if module.get("functions") else None
    statuses: dict[str, str] = {}
    for unit in units:
        for name, status in _statuses(unit["workdir"], path).items():
            if scope is not None and _function_name(name) not in scope:
                continue  # a function the toml leaves out: never run
            if status != "not checked" or name not in statuses:
                statuses[name] = status
    seconds: Counter[str] = Counter()
    for unit in units:
        for name, duration in _durations(unit["workdir"]).items():
            seconds[_function_name(name)] += duration
    counts = Counter(statuses.values())
    not_caught = sorted(
        (name for name, status in statuses.items() if status not in (*CAUGHT, "not checked")),
        key=_mutant_order,
    )
    not_rerun = {
        name
        for unit in units
        if (unit["workdir"] / "not_rerun.json").exists()
        for name in json.loads((unit["workdir"] / "not_rerun.json").read_text())
        if name in statuses
    }
    diffs = _diffs(units[0]["workdir"], path, not_caught)
    source = (ROOT / path).read_text()
    total = len(statuses)
    tested = total - counts["not checked"]  # all of them, unless the run was cut short
    caught = sum(counts[status] for status in CAUGHT)
    return {
        "module": path,
        "functions": sorted(scope) if scope is not None else "all",
        "tests": module["tests"],
        "finished": all(r["finished"] for r in runs) and counts["not checked"] == 0 and total > 0,
        "logs": [str((u["workdir"] / "mutmut.log").relative_to(ROOT)) for u in units],
        "runs": len(units),
        "duration_s": round(sum(r["duration_s"] for r in runs), 1),
        "mutants": total,
        **{status.replace(" ", "_"): counts[status] for status in _STATUSES},
        "kill_rate": round(caught / tested, 4) if tested else None,
        "not_rerun": len(not_rerun),
        # What balances the shards of the next run (work_units).
        "seconds_by_function": {
            function: round(total, 1) for function, total in sorted(seconds.items())
        },
        "survivors": [
            _survivor(
                name,
                "survived earlier, not re-run" if name in not_rerun else statuses[name],
                diffs.get(name, ""),
                source,
            )
            for name in not_caught
        ],
    }


_STATUSES = ("killed", "timeout", "survived", "no tests", "suspicious", "segfault", "not checked")


def _link_checkout(workdir: Path) -> list[str]:
    linked = []
    for entry in sorted(ROOT.iterdir()):
        if entry.name in NOT_LINKED or entry.name.startswith("."):
            continue
        link = workdir / entry.name
        if not link.is_symlink():
            link.symlink_to(os.path.relpath(entry, workdir))
        linked.append(entry.name)
    return linked


def _mutmut_config(module: dict[str, Any], run: dict[str, Any], linked: list[str]) -> str:
    def lines(values: list[str]) -> str:
        return "".join(f"\n    {value}" for value in values)

    copied = [name for name in linked if name not in ("tests", "pyproject.toml")]
    return (
        "[mutmut]\n"
        f"source_paths = {module['path']}\n"
        f"also_copy ={lines(copied)}\n"
        f"pytest_add_cli_args_test_selection ={lines(module['tests'])}\n"
        f"pytest_add_cli_args ={lines(run['pytest_args'])}\n"
        f"do_not_mutate_patterns ={lines(run['do_not_mutate_patterns'])}\n"
        f"timeout_multiplier = {run['timeout_multiplier']}\n"
        f"timeout_constant = {run['timeout_constant']}\n"
        # Fork each mutant's session from a process that never ran a test (no connection,
        # thread or socket of an earlier session is inherited).
        "process_isolation = forkserver\n"
        "use_git_change_detection = false\n"
        "use_setproctitle = false\n"
    )


def _run_mutmut(
    workdir: Path, log_path: Path, patterns: list[str], *, env: dict[str, str], timeout_s: float
) -> bool:
    """mutmut in a process group of its own, killed whole when it ends or fails."""
    mutmut = Path(sys.executable).with_name("mutmut")
    if _STOPPING.is_set():  # the run is being stopped: start nothing more
        return False
    with log_path.open("w") as log, _RUNNING_LOCK:
        process = subprocess.Popen(  # noqa: S603 (our venv's mutmut)
            [str(mutmut), "run", "--max-children", "1", *patterns],
            cwd=workdir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        _RUNNING.add(process)
    try:
        return process.wait(timeout=timeout_s) == 0
    except subprocess.TimeoutExpired:
        print(f"bench mutation: stopped after {timeout_s:.0f} s (see {log_path})", flush=True)
        return False
    finally:
        _kill_group(process)
        with _RUNNING_LOCK:
            _RUNNING.discard(process)


def _kill_group(process: subprocess.Popen[Any]) -> None:
    """Stop mutmut and whatever it forked or started (the group outlives its leader)."""
    for sig, grace_s in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 0.0)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline:
            process.poll()  # reap the leader, or it counts as alive
            if not _group_alive(process.pid):
                break
            time.sleep(0.1)
    process.wait()


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def _statuses(workdir: Path, path: str) -> dict[str, str]:
    from mutmut.stats import status_by_exit_code

    meta = workdir / "mutants" / f"{path}.meta"
    if not meta.exists():
        return {}
    exit_codes = json.loads(meta.read_text())["exit_code_by_key"]
    return {name: status_by_exit_code[code] for name, code in exit_codes.items()}


def _durations(workdir: Path) -> dict[str, float]:
    """Seconds each mutant's test session took (bench.mutation_pytest writes them)."""
    from bench.mutation_pytest import DURATIONS_FILE

    recorded = workdir / "mutants" / DURATIONS_FILE
    if not recorded.exists():
        return {}
    lines = recorded.read_text().splitlines()
    return {entry["mutant"]: entry["seconds"] for entry in map(json.loads, lines) if entry}


def _diffs(workdir: Path, path: str, names: list[str]) -> dict[str, str]:
    if not names or not (workdir / "mutants").exists():
        return {}
    out = subprocess.run(  # noqa: S603 (our own script)
        [sys.executable, "-c", _DIFFS, path, *names],
        cwd=workdir,
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode:
        print(f"bench mutation: no diffs from {workdir}: {out.stderr.strip()[-500:]}")
        return {}
    return json.loads(out.stdout)


def _mutant_order(name: str) -> tuple[str, int]:
    function, _, number = name.rpartition("__mutmut_")
    return function, int(number)


def _survivor(name: str, status: str, diff: str, source: str) -> dict[str, Any]:
    removed = [line[1:] for line in diff.splitlines()[2:] if line.startswith("-")]
    added = [line[1:] for line in diff.splitlines()[2:] if line.startswith("+")]
    function = _function_name(name)
    return {
        "mutant": name,
        "status": status,
        "function": function,
        "line": _line_number(source, function, removed[0] if removed else "", _hunk_offset(diff)),
        "original": "\n".join(line.strip() for line in removed),
        "mutated": "\n".join(line.strip() for line in added),
        "diff": diff,
    }


def _function_name(mutant: str) -> str:
    """`payments.x_f__mutmut_3` -> `f`; `payments.xǁCǁm__mutmut_1` -> `C.m`."""
    return _readable(mutant.rpartition("__mutmut_")[0].rpartition(".")[2])


def _hunk_offset(diff: str) -> int | None:
    """Where the first changed line of mutmut's diff is, counted from its function's first
    line (0: that line): its diffs number lines from the function's start."""
    lines = diff.splitlines()
    for index, line in enumerate(lines):
        if line.startswith("@@ -"):
            start = int(line[4:].split(",")[0].split(" ")[0])
            for ahead, changed in enumerate(lines[index + 1 :]):
                if changed.startswith("-"):
                    return start - 1 + ahead
            return None
    return None


def _line_number(
    source: str, function: str, original: str, offset: int | None = None
) -> int | None:
    """The line of `original` inside `function` in the module's source: the one `offset`
    (from the diff) points at when it holds `original`, else the first that does (a line
    written twice in one function would otherwise always read as its first copy)."""
    tree = ast.parse(source)
    nodes: list[ast.AST] = list(tree.body)
    owner, _, name = function.rpartition(".")
    for node in nodes:
        if owner and isinstance(node, ast.ClassDef) and node.name == owner:
            nodes.extend(node.body)
        if isinstance(node, ast.FunctionDef) and node.name == name:
            lines = source.splitlines()
            if offset is not None:
                pointed = node.lineno + offset
                if 0 < pointed <= len(lines) and lines[pointed - 1].strip() == original.strip():
                    return pointed
            for number in range(node.lineno, (node.end_lineno or node.lineno) + 1):
                if lines[number - 1].strip() == original.strip():
                    return number
            return node.lineno
    return None


def _explain(
    survivor: dict[str, Any], explained: list[dict[str, Any]], module: str
) -> dict[str, Any]:
    for entry in explained:
        if (
            entry["module"] == module
            and entry["function"] == survivor["function"]
            and _same(entry["original"], survivor["original"])
            and _same(entry["mutated"], survivor["mutated"])
        ):
            return {**survivor, "kind": entry["kind"], "why": entry["why"]}
    return {**survivor, "kind": "unexplained", "why": ""}


def _same(a: str, b: str) -> bool:
    return " ".join(a.split()) == " ".join(b.split())


def _totals(reports: list[dict[str, Any]]) -> dict[str, Any]:
    keys = ["mutants", *(status.replace(" ", "_") for status in _STATUSES)]
    total = {key: sum(report[key] for report in reports) for key in keys}
    caught = total["killed"] + total["timeout"]
    tested = total["mutants"] - total["not_checked"]
    total["kill_rate"] = round(caught / tested, 4) if tested else None
    total["duration_s"] = round(sum(report["duration_s"] for report in reports), 1)
    return total


def _baseline(path: Path, label: str) -> dict[str, Any] | None:
    if label or not path.exists():
        return None
    before = json.loads(path.read_text())
    return {
        "report": str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path),
        "kill_rates": {report["module"]: report["kill_rate"] for report in before["modules"]},
        "mutants": {report["module"]: report["mutants"] for report in before["modules"]},
        "total_kill_rate": before["total"]["kill_rate"],
        "duration_s": before["duration_s"],
    }


def _summary_line(counts: dict[str, Any]) -> str:
    rate = counts["kill_rate"]
    left = f" ({counts['not_checked']} not run)" if counts["not_checked"] else ""
    return (
        f"{counts['mutants']} mutants{left}, {counts['killed']} killed, "
        f"{counts['timeout']} timed out, "
        f"{counts['survived']} survived, {counts['no_tests']} untested"
        + (f", kill rate {rate:.1%}" if rate is not None else "")
    )


def _percent(rate: float | None) -> str:
    return "-" if rate is None else f"{rate:.1%}"


def markdown(result: dict[str, Any]) -> str:
    baseline = result.get("baseline")
    head = "| module | mutants | not run | killed | timeout | survived | untested | kill rate |"
    rule = "|---|---:|---:|---:|---:|---:|---:|---:|"
    if baseline:
        head += " before |"
        rule += "---:|"
    head += " time |"
    rule += "---:|"
    if result.get("kept"):
        head += " run |"
        rule += "---|"
    rows = []
    for report in [*result["modules"], {"module": "**total**", **result["total"]}]:
        row = (
            f"| {report['module']} | {report['mutants']} | {report['not_checked']} | "
            f"{report['killed']} | "
            f"{report['timeout']} | {report['survived']} | {report['no_tests']} | "
            f"{_percent(report['kill_rate'])} |"
        )
        if baseline:
            before = (
                baseline["total_kill_rate"]
                if report["module"] == "**total**"
                else baseline["kill_rates"].get(report["module"])
            )
            row += f" {_percent(before)} |"
        minutes = report["duration_s"] / 60
        row += f" {minutes:.1f} min |" if minutes else " - |"
        if result.get("kept"):
            row += f" {report.get('started_at', '')[:16].replace('T', ' ')} |"
        rows.append(row)
    lines = [
        "# Mutation testing",
        "",
        f"{result['tool']}, {result['started_at']}, "
        + (f"{result['duration_s'] / 60:.1f} min in all " if result["duration_s"] else "")
        + f"({result['host']['cpus']} CPUs). Modules and their tests: {result['config']}; "
        "how to run it: bench/README.md. Kill rate: killed and timed out over the mutants "
        "tested (*not run*: left when a run was cut short)."
        + (
            " The modules this run left out are as earlier runs reported them (*run*: "
            "when each module's run started)."
            if result.get("kept")
            else ""
        ),
        "",
        head,
        rule,
        *rows,
        "",
    ]
    if baseline:
        lines += [
            f"*before*: {baseline['report']} ({baseline['duration_s'] / 60:.1f} min), "
            "before the tests written for its survivors.",
            "",
        ]
    not_rerun = sum(report.get("not_rerun", 0) for report in result["modules"])
    if not_rerun:
        lines += [
            f"{not_rerun} survivors that bench/mutation_survivors.toml explains were not tested "
            "again (`--rerun-explained` tests them): they count as survived.",
            "",
        ]
    scoped = [r for r in result["modules"] if r.get("functions", "all") != "all"]
    if scoped:
        lines += ["Modules mutated in part (bench/mutation.toml `functions`), and the part:", ""]
        lines += [f"- {r['module']}: {', '.join(r['functions'])}" for r in scoped]
        lines.append("")
    lines += ["## Survivors", ""]
    for report in result["modules"]:
        survivors = report["survivors"]
        if not report["finished"]:
            logs = ", ".join(report["logs"])
            lines += [f"**{report['module']}: the run did not finish** (see {logs}).", ""]
        if not survivors:
            continue
        lines += [f"### {report['module']} ({len(survivors)})", ""]
        for survivor in survivors:
            where = f"`{survivor['function']}`" + (
                f", line {survivor['line']}" if survivor["line"] else ""
            )
            lines.append(
                f"- {where} ({survivor['status']}, **{survivor['kind']}**)"
                + (f": {survivor['why']}" if survivor["why"] else "")
            )
            original, mutated = (
                survivor[key].replace("\n", " ⏎ ") for key in ("original", "mutated")
            )
            lines.append(f"  - `{original}` → `{mutated}`")
        lines.append("")
    return "\n".join(lines)


def _mutmut_version() -> str:
    from importlib.metadata import version

    return version("mutmut")
