"""CPU seconds per process group and per service, from /proc: who used the cores in a phase."""

import os
import time
from pathlib import Path

import psycopg

TICK = os.sysconf("SC_CLK_TCK")
SERVICES = {"postgres": "postgresql", "beam.smp": "rabbitmq", "redis-server": "redis"}


def _stat(pid_dir: Path) -> tuple[str, int, float, float] | None:
    """The command, process group, CPU seconds of its own and of its children it reaped."""
    try:
        raw = (pid_dir / "stat").read_text()
    except OSError:
        return None
    comm = raw[raw.index("(") + 1 : raw.rindex(")")]
    fields = raw[raw.rindex(")") + 2 :].split()
    # After the command: state, ppid, pgrp, ..., utime (14th field) and stime (15th), then
    # cutime and cstime: the children that ended and were waited for.
    own = (int(fields[11]) + int(fields[12])) / TICK
    reaped = (int(fields[13]) + int(fields[14])) / TICK
    return comm, int(fields[2]), own, reaped


def process_cpu_seconds(pid: int) -> float | None:
    """The CPU seconds a process has used so far (its own), or None if it cannot be read."""
    found = _stat(Path("/proc") / str(pid))
    return None if found is None else found[2]


def _machine() -> tuple[float, float]:
    """CPU seconds of the whole machine so far: (busy, stolen by the hypervisor)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    steal = fields[7] if len(fields) > 7 else 0
    return (sum(fields[:8]) - idle - steal) / TICK, steal / TICK


def snapshot(groups: dict[str, int], proc: Path = Path("/proc")) -> tuple[float, dict[str, float]]:
    """(monotonic time, CPU seconds so far) per named process group, service and this process,
    and of the whole machine (`machine`: everything, other sessions' work included).

    A group's or a service's seconds include what its processes' children that ended had
    used (a PostgreSQL backend that closed, counted in the postmaster's): otherwise a
    process ending between two snapshots takes its seconds out of the difference. Not
    the bench's own: its children are the platform's processes, counted in their groups."""
    by_group = {pgid: name for name, pgid in groups.items()}
    busy, steal = _machine()
    used: dict[str, float] = {"machine": busy, "machine steal": steal}
    me = os.getpid()
    for pid_dir in proc.iterdir():
        if not pid_dir.name.isdigit():
            continue
        found = _stat(pid_dir)
        if found is None:
            continue
        comm, pgrp, own, reaped = found
        seconds = own + reaped
        if int(pid_dir.name) == me:
            name, seconds = "bench (load generator)", own
        elif pgrp in by_group:
            name = by_group[pgrp]
        elif comm in SERVICES:
            name = SERVICES[comm]
        else:
            continue
        used[name] = used.get(name, 0.0) + seconds
    return time.monotonic(), used


def cores_between(
    before: tuple[float, dict[str, float]], after: tuple[float, dict[str, float]]
) -> dict[str, float]:
    """Cores each one used on average between two snapshots (1.0 = one core busy)."""
    elapsed = after[0] - before[0]
    if elapsed <= 0:
        return {}
    cores = {
        name: round((seconds - before[1].get(name, 0.0)) / elapsed, 2)
        for name, seconds in after[1].items()
    }
    machine = {k: cores.pop(k) for k in ("machine", "machine steal") if k in cores}
    ordered = dict(sorted(cores.items(), key=lambda item: -item[1]))
    ordered["total (ours)"] = round(sum(cores.values()), 2)
    ordered["machine (all processes)"] = machine.get("machine", 0.0)
    ordered["machine steal"] = machine.get("machine steal", 0.0)
    return ordered


def seconds_between(
    before: tuple[float, dict[str, float]], after: tuple[float, dict[str, float]]
) -> dict[str, float]:
    """CPU seconds each one used between two snapshots, and the seconds between them."""
    used = {
        name: round(seconds - before[1].get(name, 0.0), 3) for name, seconds in after[1].items()
    }
    return {**used, "elapsed": round(after[0] - before[0], 3)}


def pg_sessions(database_url: str) -> int:
    """Sessions (connections) opened on the database so far (PostgreSQL 14+)."""
    with psycopg.connect(database_url) as db:
        row = db.execute(
            "SELECT sessions FROM pg_stat_database WHERE datname = current_database()"
        ).fetchone()
    return int(row[0]) if row else 0
