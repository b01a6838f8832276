"""Log output: JSON lines on stdout, and the same records to Logstash when configured.

Both speak the Logstash v1 event shape (`@timestamp`, `message`, `level`,
`logger_name`, `host`, then the context and extra fields at the top level), so
a line shipped from stdout by a log collector and one sent by python-logstash
land in the same Elasticsearch fields and the same Kibana dashboards.
"""

import atexit
import contextlib
import copy
import json
import logging
import logging.handlers
import math
import queue
import socket
import time
from datetime import UTC, datetime
from typing import Any

from logstash.formatter import LogstashFormatterVersion1
from logstash.handler_tcp import TCPLogstashHandler
from logstash.handler_udp import UDPLogstashHandler

from paywave.observability.log_masking import STANDARD_ATTRIBUTES, mask_text

HOST = socket.gethostname()
MESSAGE_TYPE = "paywave"


def _timestamp(created: float) -> str:
    """`created` as ISO 8601 in UTC to the millisecond, as `datetime.fromtimestamp` reads
    it (microseconds rounded half to even); the text up to the second is formatted once
    per second, not on every line."""
    second = math.floor(created)
    microseconds = round((created - second) * 1_000_000)
    if microseconds >= 1_000_000:
        second, microseconds = second + 1, microseconds - 1_000_000
    formatted = _last_second[0]
    if formatted[0] != second:
        text = datetime.fromtimestamp(second, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.")
        formatted = (second, text)
        _last_second[0] = formatted  # one tuple: a thread reads the old pair or the new
    return f"{formatted[1]}{microseconds // 1000:03d}Z"


_last_second: list[tuple[int, str]] = [(-1, "")]  # the second formatted last, and its text


class JsonFormatter(logging.Formatter):
    """One JSON object per line; fields added by filters or `extra=` at the top level."""

    def format(self, record: logging.LogRecord) -> str:
        event: dict[str, Any] = {
            "@timestamp": _timestamp(record.created),
            "level": record.levelname,
            "logger_name": record.name,
            "message": record.getMessage(),
            "host": HOST,
        }
        for name, value in record.__dict__.items():
            if name not in STANDARD_ATTRIBUTES and name not in event:
                event[name] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            event["stack_trace"] = record.exc_text
        if record.stack_info:
            event["stack_info"] = record.stack_info
        return json.dumps(event, default=str, ensure_ascii=False)


class MaskedLogstashFormatter(LogstashFormatterVersion1):
    """python-logstash's v1 event, its stack trace taken from the masked `exc_text`."""

    def get_debug_fields(self, record: logging.LogRecord) -> dict[str, Any]:
        fields = super().get_debug_fields(record)
        fields["stack_trace"] = record.exc_text or mask_text(fields.get("stack_trace", ""))
        return fields


class _QuietErrors:
    """A Logstash that is down must not print a traceback per log line: one a minute."""

    _last_error = 0.0

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802 (logging's name)
        now = time.monotonic()
        if now - self._last_error >= 60:
            type(self)._last_error = now
            super().handleError(record)  # type: ignore[misc]


class UDPHandler(_QuietErrors, UDPLogstashHandler):
    pass


class TCPHandler(_QuietErrors, TCPLogstashHandler):
    pass


class _HandOff(logging.handlers.QueueHandler):
    """Queue the record as it is (already masked by the handler's filters, in-process so
    nothing needs pickling); the listener's thread formats and sends it."""

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        return copy.copy(record)

    def enqueue(self, record: logging.LogRecord) -> None:
        with contextlib.suppress(queue.Full):  # Logstash far behind: this one only to stdout
            self.queue.put_nowait(record)


def logstash_handler(
    host: str, port: int = 5959, transport: str = "udp", tags: list[str] | None = None
) -> logging.Handler:
    """python-logstash's handler (event schema v1) over UDP or TCP, with masked traces.

    It sends from a thread of its own: a request or a task never waits on Logstash (a
    name lookup per UDP datagram, a TCP connect or a full socket buffer). Records queue
    in memory meanwhile, at most QUEUE_SIZE; past that they are dropped from Logstash
    (stdout still has every line).
    """
    if transport not in ("udp", "tcp"):
        raise ValueError(f"LOGSTASH_TRANSPORT must be udp or tcp, not {transport!r}")
    handler_class = TCPHandler if transport == "tcp" else UDPHandler
    sender = handler_class(host, int(port), message_type=MESSAGE_TYPE, tags=tags, version=1)
    sender.setFormatter(MaskedLogstashFormatter(MESSAGE_TYPE, tags))
    records: queue.Queue[logging.LogRecord] = queue.Queue(QUEUE_SIZE)
    listener = logging.handlers.QueueListener(records, sender)
    listener.start()
    atexit.register(listener.stop)  # what is queued at exit is sent first
    return _HandOff(records)


QUEUE_SIZE = 10_000
