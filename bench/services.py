"""The real services a bench run uses: a fresh database, virtual host and Redis database.

Only the bench's own resources are recreated (`paywave_bench` by default); RabbitMQ is
shared with others, so it is stopped and started only when a chaos run is told to.
"""

import contextlib
import shutil
import subprocess
import time
from typing import Any
from urllib.parse import urlsplit

import psycopg
import redis
from kombu import Connection

RESTART_HINTS = {
    "postgresql": "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start",
    "redis": 'redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" '
    "--appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log",
    "rabbitmq": "rabbitmq-server -detached",
}


def check_reachable(settings: Any) -> None:
    problems = []
    try:
        with psycopg.connect(settings.pg_url + "/postgres", connect_timeout=3):
            pass
    except psycopg.Error as exc:
        problems.append(f"postgresql ({exc}): {RESTART_HINTS['postgresql']}")
    try:
        redis.Redis.from_url(settings.cache_url, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        problems.append(f"redis ({exc}): {RESTART_HINTS['redis']}")
    try:
        with Connection(settings.amqp_url + "//", connect_timeout=3) as connection:
            connection.connect()
    except Exception as exc:
        problems.append(f"rabbitmq ({exc}): {RESTART_HINTS['rabbitmq']}")
    if problems:
        raise RuntimeError("services down:\n  " + "\n  ".join(problems))


def recreate_database(pg_url: str, name: str) -> None:
    if not name.replace("_", "").isalnum():
        raise ValueError(f"unsafe database name {name!r}")
    with psycopg.connect(pg_url + "/postgres", autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{name}"')


def recreate_vhost(amqp_url: str, vhost: str) -> None:
    """An empty virtual host of our own (no queue of anyone else's is touched)."""
    if shutil.which("rabbitmqctl") is None:
        return  # a remote broker: the vhost must exist; its queues start as they are
    user = urlsplit(amqp_url).username or "guest"
    _rabbitmqctl("delete_vhost", vhost, check=False)
    _rabbitmqctl("add_vhost", vhost)
    _rabbitmqctl("set_permissions", "-p", vhost, user, ".*", ".*", ".*")


def delete_vhost(amqp_url: str, vhost: str) -> None:
    """Remove a virtual host recreate_vhost made (a remote broker's are left alone)."""
    if shutil.which("rabbitmqctl") is not None:
        _rabbitmqctl("delete_vhost", vhost, check=False)


def flush_redis(url: str) -> None:
    redis.Redis.from_url(url).flushdb()


def _rabbitmqctl(*arguments: str, check: bool = True, timeout: float = 60) -> str:
    done = subprocess.run(  # noqa: S603
        ["rabbitmqctl", "-q", *arguments],  # noqa: S607
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check and done.returncode != 0:
        raise RuntimeError(f"rabbitmqctl {' '.join(arguments)}: {done.stderr.strip()}")
    return done.stdout


def rabbitmq_stop_app() -> None:
    _rabbitmqctl("stop_app")


def rabbitmq_start_app() -> None:
    _rabbitmqctl("start_app")


def rabbitmq_ensure_running(amqp_url: str) -> bool:
    """Start the broker's app (or the server) if it is down; whether it answers now."""
    if _amqp_ok(amqp_url):
        return True
    with contextlib.suppress(Exception):
        _rabbitmqctl("start_app", check=False)
    if not _wait(lambda: _amqp_ok(amqp_url), 30):
        with contextlib.suppress(Exception):
            subprocess.run(["rabbitmq-server", "-detached"], timeout=30, check=False)  # noqa: S607
        return _wait(lambda: _amqp_ok(amqp_url), 90)
    return True


def _amqp_ok(amqp_url: str) -> bool:
    try:
        with Connection(amqp_url + "//", connect_timeout=2) as connection:
            connection.connect()
        return True
    except Exception:
        return False


def _wait(check: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(1)
    return False
