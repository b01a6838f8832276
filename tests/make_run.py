"""`make run` as a test drives it: on its embedded defaults, free ports, its own var dir.

The run shares the repository's .venv and .env, which `make run` creates or tops up as
it would for anyone; everything else (database, broker, cache, metrics directories) is
under a temporary PAYWAVE_VAR_DIR. honcho starts each Procfile process in a session of
its own: MakeRun tells them by a marker in their environment (Linux) and by the process
groups of the descendants of `make` it sees while the run is up, and stops them all.
"""

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

REPO_ROOT = Path(__file__).resolve().parent.parent
STARTUP_TIMEOUT = 120.0
SHUTDOWN_TIMEOUT = 30.0
KILL_TIMEOUT = 10.0
MARKER = "PAYWAVE_MAKE_RUN_TEST"
# Variables that would take the run off the embedded defaults or out of its own ports
# and var dir; honcho lets the .env file override the environment for the Procfile.
ISOLATING = (
    "DATABASE_URL",
    "CELERY_BROKER_URL",
    "REDIS_URL",
    "DJANGO_SETTINGS_MODULE",
    "PAYWAVE_VAR_DIR",
    "PAYWAVE_API_PORT",
    "FLOWER_PORT",
    "PAYWAVE_SIMULATOR_PORT",
    "PAYWAVE_SIMULATOR_URL",
    "PAYWAVE_WORKER_METRICS_PORT",
)
REMOVED = (
    "DATABASE_URL",
    "CELERY_BROKER_URL",
    "REDIS_URL",
    "DJANGO_SETTINGS_MODULE",
    "PAYWAVE_SIMULATOR_URL",
)
# An outer `make test` must not pass its flags (-n, -j, jobserver) to `make run`.
MAKE_VARIABLES = ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES")


def read_dotenv(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    values = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            name, value = line.split("=", 1)
            values[name.removeprefix("export ").strip()] = value.strip().strip("'\"")
    return values


def free_ports(count: int) -> list[int]:
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def free_port_pair() -> int:
    """A free port whose next port is free too (the Procfile's two worker metrics ports)."""
    for _ in range(50):
        first = free_ports(1)[0]
        with contextlib.ExitStack() as stack:
            try:
                for port in (first, first + 1):
                    sock = stack.enter_context(socket.socket())
                    sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return first
    raise AssertionError("no two consecutive free ports")


def process_table() -> list[tuple[int, int, int, str, str]]:
    """(pid, ppid, pgid, state, command) of every process, from ps (Linux and macOS)."""
    out = subprocess.run(
        ["ps", "-A", "-o", "pid=", "-o", "ppid=", "-o", "pgid=", "-o", "stat=", "-o", "args="],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    table = []
    for line in out.splitlines():
        fields = line.split(None, 4)
        if len(fields) >= 4:
            pid, ppid, pgid = (int(field) for field in fields[:3])
            table.append((pid, ppid, pgid, fields[3], fields[4] if len(fields) > 4 else ""))
    return table


def marked_pids(marker: bytes) -> set[int]:
    """Processes whose environment holds the marker (needs /proc; empty elsewhere)."""
    proc = Path("/proc")
    if not proc.is_dir():
        return set()
    found = set()
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if marker in environ.split(b"\0"):
            found.add(int(entry.name))
    return found


class MakeRun:
    def __init__(
        self, tmp_path: Path, api_port: int, flower_port: int, sim_port: int, metrics_port: int
    ) -> None:
        self.var_dir = tmp_path / "var"
        self.log_path = tmp_path / "make-run.log"
        self.api = f"http://127.0.0.1:{api_port}"
        self.flower = f"http://127.0.0.1:{flower_port}"
        self.simulators = f"http://127.0.0.1:{sim_port}"
        # The payments worker serves its metrics on this port, the other worker on the next.
        self.payments_metrics = f"http://127.0.0.1:{metrics_port}/metrics"
        self.worker_metrics = f"http://127.0.0.1:{metrics_port + 1}/metrics"
        token = uuid.uuid4().hex
        self.marker = f"{MARKER}={token}".encode()
        env = {
            name: value
            for name, value in os.environ.items()
            if name not in REMOVED and name not in MAKE_VARIABLES
        }
        env.update(
            PAYWAVE_API_PORT=str(api_port),
            FLOWER_PORT=str(flower_port),
            PAYWAVE_SIMULATOR_PORT=str(sim_port),
            PAYWAVE_WORKER_METRICS_PORT=str(metrics_port),
            PAYWAVE_VAR_DIR=str(self.var_dir),
            PYTHONUNBUFFERED="1",
            **{MARKER: token},
        )
        self.log: IO[bytes] = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            ["make", "run"],
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.pgid = self.proc.pid  # session and group leader
        self.pgids = {self.pgid}

    def tail(self, lines: int = 80) -> str:
        if not self.log.closed:
            self.log.flush()
        text = self.log_path.read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def explain(self, what: str) -> str:
        return f"{what}\n--- last lines of {self.log_path} ---\n{self.tail()}"

    def track(self) -> None:
        """Remember the process groups of `make` and everything below it."""
        table = process_table()
        children: dict[int, list[tuple[int, int]]] = {}
        for pid, ppid, pgid, _, _ in table:
            children.setdefault(ppid, []).append((pid, pgid))
        todo = [self.proc.pid]
        while todo:
            for pid, pgid in children.get(todo.pop(), []):
                self.pgids.add(pgid)
                todo.append(pid)

    def alive(self) -> list[str]:
        """Processes of the run still running (zombies waiting for a reaper do not count)."""
        marked = marked_pids(self.marker)
        return [
            f"{pid} (pgid {pgid}, {state}) {command}"
            for pid, _, pgid, state, command in process_table()
            if (pgid in self.pgids or pid in marked) and not state.startswith("Z")
        ]

    def wait_gone(self, timeout: float) -> list[str]:
        deadline = time.monotonic() + timeout
        while (left := self.alive()) and time.monotonic() < deadline:
            time.sleep(0.3)
        return left

    def signal_all(self, signum: int) -> None:
        marked = marked_pids(self.marker)
        for pid, _, pgid, state, _ in process_table():
            if (pgid in self.pgids or pid in marked) and not state.startswith("Z"):
                for kill, target in ((os.killpg, pgid), (os.kill, pid)):
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        kill(target, signum)

    def stop(self) -> list[str]:
        """Ctrl-C the run; what was still running after it (killed since) is returned."""
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            self.track()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pgid, signal.SIGINT)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=SHUTDOWN_TIMEOUT)
        left_after_ctrl_c = self.wait_gone(KILL_TIMEOUT)
        for signum in (signal.SIGTERM, signal.SIGKILL):
            if not self.wait_gone(0):
                break
            self.signal_all(signum)
            self.wait_gone(KILL_TIMEOUT)
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=KILL_TIMEOUT)
        self.log.close()
        return left_after_ctrl_c

    def wait_until_up(self, url: str, deadline: float) -> httpx.Response:
        """The first HTTP answer from url; fails if make exits or the deadline passes."""
        while True:
            self.track()
            try:
                return httpx.get(url, timeout=2.0)
            except httpx.TransportError:
                pass
            if self.proc.poll() is not None:
                pytest.fail(self.explain(f"make run exited with {self.proc.returncode}"))
            if time.monotonic() > deadline:
                pytest.fail(self.explain(f"{url} did not answer within {STARTUP_TIMEOUT:.0f} s"))
            time.sleep(0.5)


def scrape(run: MakeRun, url: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    response = httpx.get(url, timeout=10.0)
    assert response.status_code == 200, run.explain(f"{url}: {response.status_code}")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def counted(metrics: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str,
            **labels: str) -> float:  # fmt: skip
    """The sum of the samples of `name` that carry these labels (others may differ)."""
    return sum(
        value
        for (sample, sample_labels), value in metrics.items()
        if sample == name and set(labels.items()) <= sample_labels
    )


def make_run_isolation_problem() -> str | None:
    """Why `make run` cannot run on its own defaults here, or None."""
    if shutil.which("make") is None:
        return "make is not installed"
    overriding = [name for name in ISOLATING if name in read_dotenv(REPO_ROOT / ".env")]
    if overriding:
        return (
            f".env sets {', '.join(overriding)}: honcho would let it override the test's "
            "environment, so the run would not be on its own embedded defaults"
        )
    return None


def wait_healthy(run: MakeRun) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while (health := run.wait_until_up(f"{run.api}/healthz", deadline)).status_code != 200:
        if time.monotonic() > deadline:
            pytest.fail(run.explain(f"/healthz answers {health.status_code}: {health.text}"))
        time.sleep(0.5)


def api_auth(run: MakeRun) -> dict[str, str]:
    """The seeded demo wallet app's bearer token header."""
    token = httpx.post(
        f"{run.api}/api/v1/auth/token",
        json={"username": "demo", "password": "demo"},
        timeout=10.0,
    )
    assert token.status_code == 200, run.explain(f"auth/token: {token.status_code} {token.text}")
    access = token.json().get("access")
    assert access, run.explain(f"auth/token gave no access token: {token.text}")
    return {"Authorization": f"Bearer {access}"}


@contextlib.contextmanager
def make_run(tmp_path: Path) -> Iterator[MakeRun]:
    """A running `make run`, stopped (and checked gone) on the way out."""
    problem = make_run_isolation_problem()
    if problem:
        pytest.skip(problem)
    run = MakeRun(tmp_path, *free_ports(3), free_port_pair())
    try:
        yield run
    finally:
        left = run.stop()
    assert not left, run.explain(
        "still running after Ctrl-C (SIGINT to make's process group), killed since:\n"
        + "\n".join(left)
    )
    assert not run.alive(), run.explain("still running after SIGKILL:\n" + "\n".join(run.alive()))
