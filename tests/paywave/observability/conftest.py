"""Capture what the configured console handler would print: its formatter, its filters;
and a Celery worker in this process for a payment's jobs."""

import io
import json
import logging
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from celery import signals
from django.db import connections

from config.celery_app import app as celery_app
from paywave.observability.log_format import JsonFormatter
from tests.embedded_worker import embedded_worker


class JsonLines:
    def __init__(self) -> None:
        self.buffer = io.StringIO()

    def records(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.buffer.getvalue().splitlines() if line]

    def about(self, **fields: Any) -> list[dict[str, Any]]:
        return [r for r in self.records() if all(r.get(k) == v for k, v in fields.items())]


def configured_console() -> logging.Handler:
    """The handler settings.LOGGING put on the root logger for stdout."""
    for handler in logging.getLogger().handlers:
        if isinstance(handler.formatter, JsonFormatter):
            return handler
    raise AssertionError("no JSON console handler on the root logger: check settings.LOGGING")


@pytest.fixture
def json_lines() -> Iterator[JsonLines]:
    console = configured_console()
    lines = JsonLines()
    handler = logging.StreamHandler(lines.buffer)
    handler.setFormatter(console.formatter)
    for log_filter in console.filters:
        handler.addFilter(log_filter)
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield lines
    root.removeHandler(handler)
    root.setLevel(level)


@pytest.fixture
def private_queue(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """payments.* jobs go to a queue of this test's own instead of `payments`."""
    name = f"test-story-{uuid.uuid4().hex[:10]}"
    send_task = celery_app.send_task

    def rerouted(task_name: str, *args: Any, **options: Any) -> Any:
        if task_name.startswith("payments."):
            options["queue"] = name
        return send_task(task_name, *args, **options)

    monkeypatch.setattr(celery_app, "send_task", rerouted)
    yield name
    with celery_app.connection_for_write() as conn:
        conn.default_channel.queue_delete(name)
        conn.default_channel.exchange_delete(name)


def _close_connections(**_: Any) -> None:
    connections.close_all()  # the worker thread's database connection, after each task


@pytest.fixture
def worker(private_queue: str, settings: Any) -> Iterator[None]:
    settings.PAYWAVE_RETRY_BASE_SECONDS = 0.05
    signals.task_postrun.connect(_close_connections, weak=False)
    try:
        with embedded_worker(
            celery_app,
            pool="threads",
            concurrency=2,
            queues=[private_queue],
            perform_ping_check=False,
            shutdown_timeout=20,
        ):
            yield
    finally:
        signals.task_postrun.disconnect(_close_connections)
