"""The platform the bench starts, supervises and always stops: API, workers, beat, simulators.

The processes are the Procfile's (same commands, same pools), pointed at the real
services through a dedicated database, RabbitMQ virtual host and Redis database,
so a run can SIGKILL and restart any of them and start from a clean slate.
Each process runs in its own session (process group): a kill reaches its children.
"""

import argparse
import contextlib
import os
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from cryptography.fernet import Fernet

from bench import services

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


@dataclass(frozen=True)
class PlatformSettings:
    run_dir: Path
    database: str = "paywave_bench"
    vhost: str = "paywave_bench"
    redis_db: int = 4
    pg_url: str = "postgres://root@127.0.0.1:5432"
    amqp_url: str = "amqp://guest:guest@127.0.0.1:5672"
    redis_url: str = "redis://127.0.0.1:6379"
    api_workers: int = 2
    api_threads: int = 4
    payments_workers: int = 1
    payment_concurrency: int = 16
    default_concurrency: int = 8
    # The Celery processes run at this CPU niceness, as the Procfile starts them: on one
    # machine the API (what wallet apps wait on) is served first, charging takes the rest.
    worker_nice: int = 10
    simulator_nice: int = 15
    baselines: bool = True
    # The simulators keep their state in a file (chaos: they are restarted); load runs
    # use them as `make run` does, in memory.
    simulator_state_file: bool = False
    log_level: str = "INFO"
    apps: int = 16  # wallet apps: bench-app-0 ... with password APP_PASSWORD
    env: dict[str, str] = field(default_factory=dict)  # PAYWAVE_* overrides for this run

    @property
    def database_url(self) -> str:
        return f"{self.pg_url}/{self.database}"

    @property
    def broker_url(self) -> str:
        return f"{self.amqp_url}/{self.vhost}"

    @property
    def cache_url(self) -> str:
        return f"{self.redis_url}/{self.redis_db}"


APP_PASSWORD = "bench-password"  # noqa: S105 (local bench accounts on a throwaway database)


def add_resource_arguments(parser: argparse.ArgumentParser) -> None:
    """--database, --vhost, --redis-db: resources of a run's own, beside others' runs."""
    defaults = PlatformSettings(run_dir=Path())
    group = parser.add_argument_group("the run's own resources (dropped and recreated)")
    group.add_argument("--database", default=defaults.database, help="PostgreSQL database")
    group.add_argument("--vhost", default=defaults.vhost, help="RabbitMQ virtual host")
    group.add_argument("--redis-db", type=int, default=defaults.redis_db, help="Redis database")


def resource_settings(args: argparse.Namespace) -> dict[str, Any]:
    """PlatformSettings fields from add_resource_arguments' options."""
    return {"database": args.database, "vhost": args.vhost, "redis_db": args.redis_db}


def in_process_parser(
    prog: str, description: str | None, out: Path, resources: dict[str, Any]
) -> argparse.ArgumentParser:
    """The options of a bench run in this process (footprint, prepared): `--out` and the
    run's own resources, `resources` by default."""
    parser = argparse.ArgumentParser(
        prog=prog, description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=out)
    add_resource_arguments(parser)
    parser.set_defaults(**resources)
    return parser


def in_process_platform(args: argparse.Namespace, name: str, **environ: str) -> "Platform":
    """A platform of one wallet app on the run's own resources, prepared (migrated and
    seeded), and Django set up in this process on it (with `environ` besides)."""
    stamp = datetime.now(UTC)
    platform = Platform(
        PlatformSettings(
            run_dir=ROOT / "var" / "bench" / f"{name}-{stamp:%Y%m%dT%H%M%S}",
            apps=1,
            baselines=False,
            log_level="WARNING",
            **resource_settings(args),
        )
    )
    print(f"bench: preparing {args.database}, vhost {args.vhost}, Redis db {args.redis_db}")
    platform.prepare()
    os.environ.update(platform.env)
    os.environ.update(environ)
    import django

    django.setup()
    return platform


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Process:
    name: str
    command: list[str]
    env: dict[str, str]
    log: Path
    popen: subprocess.Popen[bytes] | None = None
    restarts: int = 0

    @property
    def pid(self) -> int | None:
        return self.popen.pid if self.popen is not None else None

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None


class Platform:
    """with Platform(settings) as platform: ... (everything stopped on the way out)."""

    def __init__(self, settings: PlatformSettings) -> None:
        self.settings = settings
        self.run_dir = settings.run_dir
        self.api_port = free_port()
        self.sim_port = free_port()
        self.processes: dict[str, Process] = {}
        self.env = self._environment()
        self._stopped = False

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def simulator_url(self) -> str:
        return f"http://127.0.0.1:{self.sim_port}"

    @property
    def payments_processes(self) -> list[str]:
        return [name for name in self.processes if name.startswith("payments")]

    def _environment(self) -> dict[str, str]:
        s = self.settings
        var = self.run_dir / "var"
        var.mkdir(parents=True, exist_ok=True)
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("PAYWAVE_", "DJANGO_", "SIM_", "CELERY_", "JWT_"))
        }
        env.update(
            {
                "DJANGO_SETTINGS_MODULE": "config.settings.local",
                "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
                "PAYWAVE_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
                "PAYWAVE_BLIND_INDEX_KEY": secrets.token_urlsafe(32),
                "PAYWAVE_JWT_SIGNING_KEY": secrets.token_urlsafe(50),
                "DATABASE_URL": s.database_url,
                "CELERY_BROKER_URL": s.broker_url,
                "REDIS_URL": s.cache_url,
                "PAYWAVE_VAR_DIR": str(var),
                "PAYWAVE_SANDBOX": "true",
                "PAYWAVE_SIMULATOR_URL": self.simulator_url,
                "PAYWAVE_API_PORT": str(self.api_port),
                "PAYWAVE_PAYMENT_CONCURRENCY": str(s.payment_concurrency),
                "PAYWAVE_BENCH_BASELINES": "true" if s.baselines else "false",
                # The bench logs in once per wallet app and run; runs can be long.
                "PAYWAVE_TOKEN_THROTTLE_RATE": "1000/min",
                "JWT_ACCESS_MINUTES": "240",
                "LOG_LEVEL": s.log_level,
                "PYTHONUNBUFFERED": "1",
            }
        )
        for gateway in ("stripe", "mercadopago", "gerencianet"):
            env[f"SIM_{gateway.upper()}_WEBHOOK_URL"] = f"{self.base_url}/webhooks/{gateway}"
        env.update(s.env)
        return env

    # --- lifecycle -----------------------------------------------------------

    def prepare(self) -> None:
        """A fresh database, virtual host and Redis database; migrated; wallet apps seeded."""
        s = self.settings
        services.check_reachable(s)
        services.recreate_database(s.pg_url, s.database)
        services.recreate_vhost(s.amqp_url, s.vhost)
        services.flush_redis(s.cache_url)
        self.manage("migrate", "--noinput", "-v", "0")
        self.manage(
            "shell",
            "-c",
            "from paywave.services import api_client_ensure\n"
            f"for i in range({s.apps}):\n"
            f"    api_client_ensure(name=f'bench-app-{{i}}', password={APP_PASSWORD!r})\n",
        )

    def manage(self, *arguments: str) -> str:
        done = subprocess.run(  # noqa: S603 (our own manage.py)
            [str(BIN / "python"), "manage.py", *arguments],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        if done.returncode != 0:
            raise RuntimeError(f"manage.py {arguments[0]} failed:\n{done.stderr[-4000:]}")
        return done.stdout

    def start(self) -> None:
        """The Procfile's processes (no Flower), one or more payments workers."""
        s = self.settings
        (self.run_dir / "logs").mkdir(parents=True, exist_ok=True)
        bin_dir, run_dir = shlex.quote(str(BIN)), shlex.quote(str(self.run_dir))
        celery = f"{bin_dir}/celery -A config.celery_app"
        level = f"--loglevel {s.log_level}"
        state = f"--state-file {run_dir}/sim.sqlite3" if s.simulator_state_file else ""
        # The simulators stand in for gateways, whose CPU is not on PayWave's machines:
        # niced below PayWave's own processes, so they disturb what is measured least.
        simulators = f"nice -n {s.simulator_nice} " if s.simulator_nice else ""
        commands = {
            "simulators": f"{simulators}{bin_dir}/python -m gateways.simulators --host 127.0.0.1 "
            f"--port {self.sim_port} {state} --log-level WARNING",
            "api": f"{bin_dir}/gunicorn config.wsgi:application --bind 127.0.0.1:{self.api_port} "
            f"--workers {s.api_workers} --threads {s.api_threads} "
            "--no-control-socket --config python:config.gunicorn",
        }
        worker = f"nice -n {s.worker_nice} {celery} worker" if s.worker_nice else f"{celery} worker"
        for index in range(1, s.payments_workers + 1):
            commands[f"payments{index}"] = (
                f"{worker} --queues payments --pool threads "
                f"--concurrency {s.payment_concurrency} --hostname payments{index}@%h {level}"
            )
        commands["worker"] = (
            f"{worker} --queues default,notifications,callbacks --pool threads "
            f"--concurrency {s.default_concurrency} --hostname default@%h {level}"
        )
        commands["beat"] = f"{celery} beat --schedule {run_dir}/var/celerybeat-schedule {level}"
        for name, command in commands.items():
            self._define(name, shlex.split(command))
        for name in self.processes:
            self.start_process(name)
        self.wait_ready()

    def _define(self, name: str, command: list[str]) -> None:
        self.processes[name] = Process(
            name, command, self.env, self.run_dir / "logs" / f"{name}.log"
        )

    def start_process(self, name: str) -> None:
        process = self.processes[name]
        with process.log.open("ab") as log:
            log.write(f"\n=== bench: start {name} at {time.time():.3f}\n".encode())
            log.flush()
            process.popen = subprocess.Popen(  # noqa: S603 (our own commands)
                process.command,
                cwd=ROOT,
                env=process.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        process = self.processes[name]
        if process.popen is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.popen.pid, sig)
        try:
            process.popen.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.popen.pid, signal.SIGKILL)
            process.popen.wait(timeout=15)

    def wait_ready(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        checks = {
            "api": lambda: _http_ok(self.base_url + "/healthz"),
            "simulators": lambda: _http_ok(self.simulator_url + "/_sim/health"),
        }
        for name in self.processes:
            if name not in checks and name != "beat":
                checks[name] = lambda name=name: self._celery_ready(name)
        waiting = dict(checks)
        while waiting:
            for name, check in list(waiting.items()):
                if not self.processes[name].alive():
                    raise RuntimeError(f"{name} exited; see {self.processes[name].log}")
                if check():
                    del waiting[name]
            if time.monotonic() > deadline:
                raise RuntimeError(f"not ready after {timeout:.0f} s: {sorted(waiting)}")
            time.sleep(0.2)

    def wait_process_ready(self, name: str, timeout: float = 60) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if name == "simulators" and _http_ok(self.simulator_url + "/_sim/health"):
                return True
            if name == "api" and _http_ok(self.base_url + "/healthz"):
                return True
            if name not in ("api", "simulators") and self._celery_ready(name):
                return True
            time.sleep(0.2)
        return False

    def _celery_ready(self, name: str) -> bool:
        """The worker's log says `ready.` since its latest start."""
        text = self.processes[name].log.read_bytes()
        latest = text.rsplit(b"=== bench: start", 1)[-1]
        return b" ready." in latest

    def stop(self) -> None:
        """Every process this platform started: SIGTERM, then SIGKILL what is left."""
        if self._stopped:
            return
        self._stopped = True
        running = [p for p in self.processes.values() if p.popen is not None]
        for process in running:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.popen.pid, signal.SIGTERM)  # type: ignore[union-attr]
        deadline = time.monotonic() + 15
        for process in running:
            assert process.popen is not None
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.popen.wait(timeout=max(0.1, deadline - time.monotonic()))
            # The group too: gunicorn's and celery's children must not outlive the run.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.popen.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.popen.wait(timeout=5)

    def __enter__(self) -> "Platform":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def _http_ok(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False
