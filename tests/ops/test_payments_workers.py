"""config.payments_workers: one payments worker process per core, started and stopped as a set.

The count (affinity, cgroup v2 quota, PAYWAVE_PAYMENTS_PROCESSES) from files the tests
write; then the launcher for real: two `celery worker` processes on the test's RabbitMQ,
answering `inspect ping` under their own names, the first alone serving the metrics port,
and no process left after SIGTERM, after one of them dies, or after the launcher is killed.
"""

import contextlib
import os
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from celery.utils.nodenames import gethostname

from config.celery_app import app as celery_app
from config.payments_workers import (
    available_cpus,
    cgroup_cpu_max_files,
    cpu_quota,
    process_count,
    worker_argv,
    worker_env,
)
from tests.processes import database_url, free_port, wait_for

REPO_ROOT = Path(__file__).resolve().parents[2]


def cpu_max(tmp_path: Path, text: str, name: str = "cpu.max") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


# --- How many ----------------------------------------------------------------------


def test_a_cgroup_quota_is_read_as_cpus(tmp_path: Path) -> None:
    assert cpu_quota(cpu_max(tmp_path, "150000 100000\n")) == 1.5
    assert cpu_quota(cpu_max(tmp_path, "50000 100000\n")) == 0.5


def test_no_quota_is_no_limit(tmp_path: Path) -> None:
    assert cpu_quota(cpu_max(tmp_path, "max 100000\n")) is None
    assert cpu_quota(tmp_path / "absent") is None  # cgroup v1, or the root cgroup


def test_the_cpus_are_the_affinity_bounded_by_every_quota_rounded_up(tmp_path: Path) -> None:
    pod = cpu_max(tmp_path, "250000 100000", "pod")
    node = cpu_max(tmp_path, "400000 100000", "node")
    unlimited = cpu_max(tmp_path, "max 100000", "unlimited")
    half = cpu_max(tmp_path, "50000 100000", "half")

    assert available_cpus(affinity=8, cpu_max_files=[pod, node, unlimited]) == 3
    assert available_cpus(affinity=2, cpu_max_files=[pod, node]) == 2
    assert available_cpus(affinity=8, cpu_max_files=[unlimited]) == 8
    assert available_cpus(affinity=8, cpu_max_files=[half]) == 1  # at least one


def test_without_a_quota_the_cpus_are_the_affinity() -> None:
    assert available_cpus(cpu_max_files=[]) == len(os.sched_getaffinity(0))


def test_the_quota_files_are_the_process_cgroups_and_its_parents(tmp_path: Path) -> None:
    proc = cpu_max(tmp_path, "12:memory:/ignored\n0::/kubepods/pod-1/container\n", "cgroup")
    root = tmp_path / "sys-fs-cgroup"

    files = cgroup_cpu_max_files(proc, root)

    assert files == [
        root / "kubepods/pod-1/container/cpu.max",
        root / "kubepods/pod-1/cpu.max",
        root / "kubepods/cpu.max",
        root / "cpu.max",
    ]
    namespaced = cpu_max(tmp_path, "0::/\n", "cgroup-ns")  # a container's own namespace
    assert cgroup_cpu_max_files(namespaced, root) == [root / "cpu.max"]
    assert cgroup_cpu_max_files(tmp_path / "absent", root) == []


def test_paywave_payments_processes_overrides_the_cpus() -> None:
    assert process_count({"PAYWAVE_PAYMENTS_PROCESSES": "3"}) == 3
    assert process_count({"PAYWAVE_PAYMENTS_PROCESSES": ""}) == available_cpus()
    assert process_count({}) == available_cpus()
    for wrong in ("0", "-1", "two"):
        with pytest.raises(SystemExit, match="PAYWAVE_PAYMENTS_PROCESSES"):
            process_count({"PAYWAVE_PAYMENTS_PROCESSES": wrong})


def test_each_worker_has_its_name_and_only_the_first_serves_metrics() -> None:
    argv = worker_argv(2, ["--quiet", "--concurrency", "16"])
    environ = {"PAYWAVE_WORKER_METRICS_PORT": "9808", "OTHER": "kept"}

    assert argv[1:] == [
        "-m", "celery", "-A", "config.celery_app", "--quiet", "worker",
        "--queues", "payments", "--pool", "threads", "--concurrency", "16",
        "--hostname", "payments2@%h",
    ]  # fmt: skip
    assert worker_env(1, environ) == environ
    assert worker_env(2, environ) == {"PAYWAVE_WORKER_METRICS_PORT": "", "OTHER": "kept"}


# --- The launcher, for real ----------------------------------------------------------


def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            stat = (entry / "stat").read_text()
        except (OSError, ValueError):
            continue
        if entry.name.isdigit() and int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def environ_of(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode().split("=", 1) for item in raw if b"=" in item)


class Launcher:
    def __init__(self, env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "config.payments_workers", "--concurrency", "2",
             "--without-gossip", "--without-mingle", "--loglevel", "WARNING"],
            cwd=REPO_ROOT, env=env, start_new_session=True,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        self.workers: list[int] = []

    def wait_for_workers(self, count: int) -> list[int]:
        self.workers = wait_for(
            lambda: len(pids := children_of(self.process.pid)) == count and pids,
            60,
            f"{count} worker processes",
        )
        return self.workers

    def stderr(self) -> str:
        assert self.process.stderr is not None
        return self.process.stderr.read()

    def cleanup(self) -> None:
        for pid in [*self.workers, *children_of(self.process.pid), self.process.pid]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.process.wait(timeout=10)


@pytest.fixture
def start_launcher(tmp_path: Path) -> Iterator[Callable[[], Launcher]]:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": database_url(),
        "PAYWAVE_PAYMENTS_PROCESSES": "2",
        "PAYWAVE_WORKER_METRICS_ADDR": "127.0.0.1",
        "PAYWAVE_WORKER_METRICS_PORT": str(free_port()),
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prometheus"),
    }
    started: list[Launcher] = []

    def start() -> Launcher:
        started.append(Launcher(env))
        return started[-1]

    yield start
    for launcher in started:
        launcher.cleanup()


def ping(names: list[str]) -> set[str]:
    replies = celery_app.control.ping(destination=names, timeout=1.0) or []
    return {name for reply in replies for name in reply}


@pytest.mark.services
@pytest.mark.django_db  # a starting worker runs Django's system checks, which read the schema
def test_the_workers_answer_under_their_names_and_all_stop_on_sigterm(
    start_launcher: Callable[[], Launcher],
) -> None:
    launcher = start_launcher()
    first, second = launcher.wait_for_workers(2)
    names = [f"payments1@{gethostname()}", f"payments2@{gethostname()}"]

    assert wait_for(lambda: ping(names) == set(names), 90, "both workers to answer a ping")
    port = environ_of(launcher.process.pid)["PAYWAVE_WORKER_METRICS_PORT"]
    envs = {environ_of(pid)["PAYWAVE_WORKER_METRICS_PORT"] for pid in (first, second)}
    assert envs == {"", port}  # the first serves the directory's sum, the other nothing
    direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    assert direct.open(f"http://127.0.0.1:{port}/metrics", timeout=5).status == 200
    assert os.getpgid(first) != os.getpgid(launcher.process.pid)  # signals reach them once

    launcher.process.send_signal(signal.SIGTERM)

    assert launcher.process.wait(timeout=60) == 0, launcher.stderr()
    assert not running(first)
    assert not running(second)


@pytest.mark.services
@pytest.mark.django_db
def test_a_worker_that_dies_stops_the_others_and_the_launcher_fails(
    start_launcher: Callable[[], Launcher],
) -> None:
    launcher = start_launcher()
    first, second = launcher.wait_for_workers(2)
    names = [f"payments1@{gethostname()}", f"payments2@{gethostname()}"]
    wait_for(lambda: ping(names) == set(names), 90, "both workers to answer a ping")

    os.kill(second, signal.SIGKILL)

    assert launcher.process.wait(timeout=60) != 0
    assert not running(first)
    assert "stopping the others" in launcher.stderr()


@pytest.mark.services
@pytest.mark.django_db
def test_a_killed_launcher_takes_its_workers_with_it(
    start_launcher: Callable[[], Launcher],
) -> None:
    launcher = start_launcher()
    workers = launcher.wait_for_workers(2)

    launcher.process.kill()
    launcher.process.wait(timeout=10)

    wait_for(lambda: not any(map(running, workers)), 30, "the workers to be killed")
