"""config/gunicorn.py: what the api's gunicorn reads (`--config python:config.gunicorn`)."""

from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from unittest.mock import patch

import pytest
from gunicorn.config import Config
from gunicorn.glogging import Logger

import config.gunicorn as gunicorn_settings


def _logger(logger_class: str, access_file: Path) -> Any:
    config = Config()
    config.set("logger_class", logger_class)
    config.set("accesslog", str(access_file))  # gunicorn's access line on, to a file
    logger = config.logger_class(config)
    logger.access_log.propagate = False  # to the file only
    return logger


def _a_request() -> tuple[Any, Any, dict[str, str]]:
    response = SimpleNamespace(status="202 Accepted", headers=[], sent=120)
    request = SimpleNamespace(headers=[], method="POST", path="/api/v1/payments")
    return response, request, {"REQUEST_METHOD": "POST"}


def test_the_api_uses_the_logger_without_an_access_line() -> None:
    config = Config()
    config.set("logger_class", gunicorn_settings.logger_class)

    assert config.logger_class is gunicorn_settings.NoAccessLineLogger
    assert issubclass(config.logger_class, Logger)


@pytest.mark.parametrize(
    ("logger_class", "builds_the_line"),
    [(gunicorn_settings.logger_class, False), ("gunicorn.glogging.Logger", True)],
    ids=["paywave", "gunicorn's own"],
)
def test_no_access_line_is_built_for_a_request(
    tmp_path: Path, logger_class: str, builds_the_line: bool
) -> None:
    """The request line is paywave.observability.middleware's; gunicorn's own would be
    built for every request and dropped (its logger has no handler)."""
    access_file = tmp_path / "access.log"
    logger = _logger(logger_class, access_file)

    with patch.object(Logger, "atoms", autospec=True, return_value={}) as atoms:
        logger.access(*_a_request(), timedelta(milliseconds=12))
    logger.access_log.handlers.clear()

    assert atoms.called is builds_the_line
