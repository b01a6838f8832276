"""Capture what the configured console handler would print: its formatter, its filters."""

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from paywave.log_format import JsonFormatter


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
