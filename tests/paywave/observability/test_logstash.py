"""python-logstash ships the same records, context and masking included, over UDP and TCP."""

import json
import logging
import os
import random
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[3]

# What a process configured by settings.LOGGING logs with LOGSTASH_HOST set.
SCRIPT = """
import logging, django
django.setup()
from paywave.observability.log_context import log_context
with log_context(payment_id="pay-1", request_id="req-1", client="cli-1", task_id="task-1"):
    logging.getLogger("payments.processing").warning(
        "gateway attempt failed for card %s", "4111 1111 1111 1111",
        extra={"gateway": "stripe", "attempt": 2, "tax_id": "123.456.789-09"},
    )
    try:
        raise RuntimeError("Authorization: Bearer abcdefghijklmnopqrstuvwxyz0123")
    except RuntimeError:
        logging.getLogger("payments.processing").exception("charge crashed")
for handler in logging.getLogger().handlers:
    handler.close()
"""


class Listener:
    """A local Logstash stand-in: collects the JSON events sent to it."""

    def __init__(self, transport: str) -> None:
        self.transport = transport
        kind = socket.SOCK_DGRAM if transport == "udp" else socket.SOCK_STREAM
        self.sock = socket.socket(socket.AF_INET, kind)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(10)
        self.port = self.sock.getsockname()[1]
        if transport == "tcp":
            self.sock.listen(1)

    def events(self, count: int) -> list[dict[str, Any]]:
        if self.transport == "udp":
            return [json.loads(self.sock.recvfrom(65535)[0]) for _ in range(count)]
        connection, _ = self.sock.accept()
        connection.settimeout(10)
        data = b""
        with connection:
            while data.count(b"\n") < count:
                chunk = connection.recv(65535)
                if not chunk:
                    break
                data += chunk
        return [json.loads(line) for line in data.splitlines() if line]

    def close(self) -> None:
        self.sock.close()


@pytest.fixture(params=["udp", "tcp"])
def listener(request: pytest.FixtureRequest) -> Iterator[Listener]:
    server = Listener(request.param)
    yield server
    server.close()


def run_configured_process(listener: Listener) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "LOGSTASH_HOST": "127.0.0.1",
        "LOGSTASH_PORT": str(listener.port),
        "LOGSTASH_TRANSPORT": listener.transport,
        "LOG_LEVEL": "INFO",
    }
    return subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=REPO_ROOT, env=env, capture_output=True,
        text=True, timeout=60, check=True,
    )  # fmt: skip


def test_settings_ship_records_with_context_fields_to_logstash(listener: Listener) -> None:
    received: list[dict[str, Any]] = []
    reader = threading.Thread(target=lambda: received.extend(listener.events(2)))
    reader.start()

    process = run_configured_process(listener)
    reader.join(15)

    warning, error = received
    assert warning["@version"] == "1"  # python-logstash's event schema v1
    assert warning["type"] == "paywave"
    assert (warning["level"], warning["logger_name"]) == ("WARNING", "payments.processing")
    for field, value in {
        "payment_id": "pay-1", "request_id": "req-1", "client": "cli-1", "task_id": "task-1",
        "gateway": "stripe", "attempt": 2,
    }.items():  # fmt: skip
        assert warning[field] == value, field
    assert warning["message"] == "gateway attempt failed for card [card ****1111]"
    assert warning["tax_id"] == "***.***.*89-09"
    assert error["payment_id"] == "pay-1"
    assert "RuntimeError: Authorization: [REDACTED]" in error["stack_trace"]
    assert "abcdefghijklmnopqrstuvwxyz0123" not in json.dumps(error)
    # The same records on stdout, as JSON lines.
    stdout = [json.loads(line) for line in process.stdout.splitlines() if line.startswith("{")]
    assert [line["message"] for line in stdout] == [warning["message"], error["message"]]
    assert stdout[0]["payment_id"] == "pay-1"


def test_an_unreachable_logstash_does_not_break_logging(tmp_path: Path) -> None:
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens there now
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "LOGSTASH_HOST": "127.0.0.1",
        "LOGSTASH_PORT": str(port),
        "LOGSTASH_TRANSPORT": "tcp",
    }

    process = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=REPO_ROOT, env=env, capture_output=True,
        text=True, timeout=60, check=True,
    )  # fmt: skip

    assert '"payment_id": "pay-1"' in process.stdout


def test_a_slow_logstash_never_holds_up_the_thread_that_logs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from paywave.observability import log_format

    release, sent = threading.Event(), []

    def stuck_emit(self: Any, record: logging.LogRecord) -> None:  # Logstash not answering
        release.wait(10)
        sent.append(record.getMessage())

    monkeypatch.setattr(log_format.UDPHandler, "emit", stuck_emit)
    handler = log_format.logstash_handler("127.0.0.1", 9, "udp")
    logger = logging.getLogger("tests.slow-logstash")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        started = time.monotonic()
        for n in range(50):
            logger.warning("line %d", n)
        assert time.monotonic() - started < 0.5  # queued, not sent from here
        assert sent == []
        release.set()
        deadline = time.monotonic() + 10
        while len(sent) < 50 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert sent == [f"line {n}" for n in range(50)]  # all of them, in order, meanwhile
    finally:
        release.set()
        logger.removeHandler(handler)
        logger.propagate = True


def test_a_lines_timestamp_is_the_records_time_to_the_millisecond_in_utc() -> None:
    """Formatted once per second; the milliseconds as datetime reads the time (rounded to
    the microsecond half to even), carries into the next second included."""
    from datetime import UTC, datetime

    from paywave.observability.log_format import _timestamp

    def as_datetime_reads_it(created: float) -> str:
        moment = datetime.fromtimestamp(created, tz=UTC)
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"

    rng = random.Random(11)
    times = [1796578000 + rng.random() * 200_000 for _ in range(20_000)]
    times += [1796578000 + ms / 1000 + d for ms in range(1000) for d in (0, 5e-7, -5e-7, 9.995e-4)]
    times += [1796578000.9999995, 1796578000.0009995, 0.0, 1.9999996]

    assert [_timestamp(t) for t in times] == [as_datetime_reads_it(t) for t in times]
    assert _timestamp(1796578000.9999996) == "2026-12-06T17:26:41.000Z"


def test_a_lines_second_is_formatted_once(monkeypatch: pytest.MonkeyPatch) -> None:
    from datetime import datetime

    from paywave.observability import log_format

    formatted: list[float] = []

    class Counted(datetime):
        @classmethod
        def fromtimestamp(cls, t: float, tz: Any = None) -> datetime:  # type: ignore[override]
            formatted.append(t)
            return datetime.fromtimestamp(t, tz)

    monkeypatch.setattr(log_format, "datetime", Counted)
    monkeypatch.setattr(log_format, "_last_second", [(-1, "")])
    lines = [log_format._timestamp(1796578000 + ms / 1000) for ms in range(0, 2000, 7)]

    assert lines[0] == "2026-12-06T17:26:40.000Z"
    assert lines[-1] == "2026-12-06T17:26:41.995Z"
    assert formatted == [1796578000, 1796578001]
