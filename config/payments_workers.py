"""Payments worker processes, one per core: `python -m config.payments_workers [options]`.

One Celery worker process runs Python on at most about one core (the GIL): its threads
wait on gateways, they do not add CPU (docs/SCALING.md, "Workers per core"). This starts
N workers on the `payments` queue, each

    celery -A config.celery_app worker --queues payments --pool threads [options]
        --hostname payments<i>@%h

with the options given here (`--concurrency`, `--loglevel`, ...; given after the ones
above, they win, as `--queues` and `--pool` do from the chart; `--quiet` is Celery's
global option and goes before `worker`). N is PAYWAVE_PAYMENTS_PROCESSES if set, else the
CPUs this process may use: its affinity, rounded down to the cgroup v2 `cpu.max` quota
(rounded up) of its cgroup or any parent, at least 1.

Metrics: the workers share one PROMETHEUS_MULTIPROC_DIR (a temporary one, removed at exit,
when none is set) and only the first serves PAYWAVE_WORKER_METRICS_PORT: its registry is
the sum of all of them. The others get the variable empty (no server).

SIGTERM and SIGINT are passed on to every worker (Celery's warm shutdown; a second one is
passed on too) and the launcher waits for them all. A worker that exits on its own stops
the others, and the launcher exits non-zero, so that honcho, Docker or Kubernetes restart
the set. The workers run in process groups of their own (a signal sent to the launcher's
group reaches them once, through the launcher) and are killed if the launcher dies.
"""

import contextlib
import ctypes
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from types import FrameType

PROCESSES_ENV = "PAYWAVE_PAYMENTS_PROCESSES"
CGROUP_ROOT = Path("/sys/fs/cgroup")
PROC_SELF_CGROUP = Path("/proc/self/cgroup")
FORWARDED_SIGNALS = (signal.SIGTERM, signal.SIGINT)
_PR_SET_PDEATHSIG = 1


def cpu_quota(cpu_max: Path) -> float | None:
    """The CPUs a cgroup v2 `cpu.max` file allows ("<quota> <period>"), None if unlimited."""
    try:
        fields = cpu_max.read_text().split()
    except OSError:
        return None
    if len(fields) != 2 or fields[0] == "max":
        return None
    quota, period = int(fields[0]), int(fields[1])
    return quota / period if quota > 0 and period > 0 else None


def cgroup_cpu_max_files(
    proc_cgroup: Path = PROC_SELF_CGROUP, root: Path = CGROUP_ROOT
) -> list[Path]:
    """The `cpu.max` files of this process's cgroup v2 and of its parents."""
    try:
        lines = proc_cgroup.read_text().splitlines()
    except OSError:
        return []
    relative = next((line[3:] for line in lines if line.startswith("0::")), None)
    if relative is None:
        return []
    cgroup = root / relative.strip().lstrip("/")
    inside = [cgroup, *(parent for parent in cgroup.parents if root in (parent, *parent.parents))]
    return [directory / "cpu.max" for directory in inside]


def available_cpus(affinity: int | None = None, cpu_max_files: Iterable[Path] | None = None) -> int:
    """CPUs this process may use: its affinity, bounded by any cgroup quota (rounded up)."""
    cpus = len(os.sched_getaffinity(0)) if affinity is None else affinity
    for path in cgroup_cpu_max_files() if cpu_max_files is None else cpu_max_files:
        quota = cpu_quota(path)
        if quota is not None:
            cpus = min(cpus, math.ceil(quota))
    return max(1, cpus)


def process_count(environ: Mapping[str, str]) -> int:
    """PAYWAVE_PAYMENTS_PROCESSES if set (a positive integer), else available_cpus()."""
    value = environ.get(PROCESSES_ENV, "").strip()
    if not value:
        return available_cpus()
    if not value.isdigit() or int(value) < 1:
        raise SystemExit(f"{PROCESSES_ENV} must be a positive integer, not {value!r}")
    return int(value)


def worker_argv(index: int, options: Sequence[str]) -> list[str]:
    """The command of worker `index` (from 1)."""
    quiet = ["--quiet"] if "--quiet" in options else []
    rest = [option for option in options if option != "--quiet"]
    return [
        *(sys.executable, "-m", "celery", "-A", "config.celery_app", *quiet, "worker"),
        *("--queues", "payments", "--pool", "threads", *rest, "--hostname", f"payments{index}@%h"),
    ]


def worker_env(index: int, environ: Mapping[str, str]) -> dict[str, str]:
    env = dict(environ)
    if index > 1:  # the first one serves the directory's sum
        env["PAYWAVE_WORKER_METRICS_PORT"] = ""
    return env


def _die_with_parent() -> None:
    # Runs in the child before exec: killed if the launcher is (SIGKILL, a crash).
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def run(options: Sequence[str], environ: Mapping[str, str]) -> int:
    """Run the workers until they have all exited; the launcher's exit status."""
    count = process_count(environ)
    env = dict(environ)
    own_dir = None
    if not env.get("PROMETHEUS_MULTIPROC_DIR"):
        own_dir = tempfile.mkdtemp(prefix="paywave-payments-metrics-")
        env["PROMETHEUS_MULTIPROC_DIR"] = own_dir
    workers: dict[int, int] = {}  # pid: index, until reaped
    # Kept referenced: a collected Popen would be reaped by subprocess, not by os.wait here.
    started: list[subprocess.Popen[bytes]] = []
    status = 0
    stopping = False

    def stop(signum: int) -> None:
        nonlocal stopping
        stopping = True
        for pid in workers:
            _send(pid, signum)

    def forward(signum: int, _: FrameType | None) -> None:
        stop(signum)

    previous = {signum: signal.signal(signum, forward) for signum in FORWARDED_SIGNALS}
    try:
        for index in range(1, count + 1):
            child = subprocess.Popen(  # noqa: S603 - our own command line
                worker_argv(index, options),
                env=worker_env(index, env),
                process_group=0,
                preexec_fn=_die_with_parent,  # the launcher runs no threads
            )
            started.append(child)
            workers[child.pid] = index
            if stopping:  # a signal came while starting: this one has not seen it
                _send(child.pid, signal.SIGTERM)
        while workers:
            pid, wait_status = os.wait()
            index = workers.pop(pid)
            code = os.waitstatus_to_exitcode(wait_status)
            _mark_dead(pid, env["PROMETHEUS_MULTIPROC_DIR"])
            if not stopping:  # exited on its own: the set restarts
                _log(f"payments{index}@ exited ({code}): stopping the others")
                status = code if code > 0 else 1
                stop(signal.SIGTERM)
            elif code != 0 and status == 0:
                status = code if code > 0 else 1
    finally:
        for pid in workers:  # only if the launcher itself fails
            _send(pid, signal.SIGKILL)
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if own_dir:
            shutil.rmtree(own_dir, ignore_errors=True)
    return status


def _log(message: str) -> None:
    # One JSON line, in the shape of the workers' own (paywave.observability.log_format).
    record = {"level": "ERROR", "logger_name": "config.payments_workers", "message": message}
    print(json.dumps(record), file=sys.stderr, flush=True)


def _send(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # exited, not reaped yet
        os.kill(pid, signum)


def _mark_dead(pid: int, multiproc_dir: str) -> None:
    # A dead process's live gauges leave the sum (its counters stay, as they must).
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid, multiproc_dir)


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:], os.environ))
