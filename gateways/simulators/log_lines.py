"""The simulators' log lines: one JSON object per line on stdout, like PayWave's (stdlib only).

The same shape as paywave.observability.log_format's lines (`@timestamp`, `level`, `logger_name`,
`message`, `host`, then any extra fields), so a log shipper reads both alike;
`LOG_FORMAT=plain` (or `--log-format plain`) gives one readable line per record.
"""

import json
import logging
import socket
import sys
from datetime import UTC, datetime
from typing import Any

HOST = socket.gethostname()
_STANDARD = frozenset(
    logging.LogRecord("", 0, "", 0, "", (), None).__dict__.keys()
    | {"message", "asctime", "taskName"}
)


class JsonLineFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        moment = datetime.fromtimestamp(record.created, tz=UTC)
        line: dict[str, Any] = {
            "@timestamp": moment.strftime("%Y-%m-%dT%H:%M:%S.")
            + f"{moment.microsecond // 1000:03d}Z",
            "level": record.levelname,
            "logger_name": record.name,
            "message": record.getMessage(),
            "host": HOST,
        }
        for name, value in record.__dict__.items():
            if name not in _STANDARD and name not in line:
                line[name] = value
        if record.exc_info:
            line["stack_trace"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str, ensure_ascii=False)


def configure_logging(level: str, log_format: str = "json") -> None:
    """Every record, the simulators' and the libraries', to stdout in one format."""
    handler = logging.StreamHandler(sys.stdout)
    if log_format == "plain":
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    else:
        handler.setFormatter(JsonLineFormatter())
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level.upper())
