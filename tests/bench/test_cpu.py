"""bench.cpu: a process that ends between two snapshots keeps its CPU in the figures (a
PostgreSQL backend's seconds move to the postmaster that reaped it), except the bench's
own children, which are counted in their groups."""

import os
from pathlib import Path

from bench.cpu import TICK, cores_between, seconds_between, snapshot

GROUP = 4242


def _process(proc: Path, pid: int, comm: str, pgrp: int, own: int, reaped: int = 0) -> None:
    """A /proc/<pid>/stat with `own` and `reaped` (children's) ticks split over user and
    system time."""
    fields = ["S", "1", str(pgrp)] + ["0"] * 8
    fields += [str(own // 2), str(own - own // 2), str(reaped // 2), str(reaped - reaped // 2)]
    fields += ["0"] * 30
    (proc / str(pid)).mkdir(exist_ok=True)
    (proc / str(pid) / "stat").write_text(f"{pid} ({comm}) {' '.join(fields)}\n")


def _gone(proc: Path, pid: int) -> None:
    (proc / str(pid) / "stat").unlink()
    (proc / str(pid)).rmdir()


def test_a_backend_that_closes_between_snapshots_keeps_its_seconds(tmp_path: Path) -> None:
    _process(tmp_path, 100, "postgres", 100, own=10 * TICK, reaped=50 * TICK)  # postmaster
    _process(tmp_path, 101, "postgres", 100, own=3 * TICK)  # a backend
    before = snapshot({}, proc=tmp_path)
    # The backend works 2 s more, closes; the postmaster reaps it.
    _gone(tmp_path, 101)
    _process(tmp_path, 100, "postgres", 100, own=10 * TICK, reaped=55 * TICK)
    after = snapshot({}, proc=tmp_path)

    assert seconds_between(before, after)["postgresql"] == 2.0
    assert cores_between(before, after)["postgresql"] >= 0


def test_a_groups_ended_process_counts_in_its_group(tmp_path: Path) -> None:
    _process(tmp_path, GROUP, "gunicorn", GROUP, own=1 * TICK)
    _process(tmp_path, GROUP + 1, "gunicorn", GROUP, own=4 * TICK)
    before = snapshot({"api": GROUP}, proc=tmp_path)
    _gone(tmp_path, GROUP + 1)
    _process(tmp_path, GROUP, "gunicorn", GROUP, own=1 * TICK, reaped=5 * TICK)
    after = snapshot({"api": GROUP}, proc=tmp_path)

    assert seconds_between(before, after)["api"] == 1.0


def test_the_bench_does_not_take_its_childrens_seconds(tmp_path: Path) -> None:
    me = os.getpid()
    _process(tmp_path, me, "python", me, own=2 * TICK, reaped=0)
    before = snapshot({}, proc=tmp_path)
    _process(tmp_path, me, "python", me, own=3 * TICK, reaped=40 * TICK)  # a platform process
    after = snapshot({}, proc=tmp_path)

    assert seconds_between(before, after)["bench (load generator)"] == 1.0
