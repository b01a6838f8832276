"""A Celery worker in the test process, leaving the process's logging as it found it."""

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

from celery import Celery
from celery.contrib.testing.worker import start_worker


@contextlib.contextmanager
def embedded_worker(app: Celery, **options: Any) -> Iterator[Any]:
    """celery's start_worker, without its logging set-up outliving the worker.

    start_worker sets the root logger to its own level (ERROR): left so, every later
    test in the process would log nothing below ERROR.
    """
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    try:
        with start_worker(app, **options) as worker:
            yield worker
    finally:
        root.setLevel(level)
        root.handlers[:] = handlers
