"""Fields that every log line carries while a request or a task runs (contextvars).

    with log_context(payment_id=str(payment.id), gateway="stripe", attempt=2):
        ...  # every record logged here, by any logger, has these fields

The request id middleware opens a scope per request, the Celery signals one per
task (paywave.observability.celery_signals); `bind` adds fields to the innermost open scope until
it closes. `ContextFilter`, attached to the handlers, copies the fields onto each
record; a field given in `extra=` wins over the context.
"""

import contextvars
import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from types import MappingProxyType
from typing import Any

_EMPTY: Mapping[str, Any] = MappingProxyType({})
# Immutable mappings only: a context copied into an asyncio task shares the object.
_context: contextvars.ContextVar[Mapping[str, Any]] = contextvars.ContextVar(
    "paywave_log_context", default=_EMPTY
)


def current_context() -> dict[str, Any]:
    return dict(_context.get())


def _merged(fields: Mapping[str, Any]) -> Mapping[str, Any]:
    merged = dict(_context.get())
    for name, value in fields.items():
        if value is None:
            merged.pop(name, None)
        else:
            merged[name] = value
    return MappingProxyType(merged)


@contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """Bind `fields` (None unbinds one) for the duration of the block."""
    token = _context.set(_merged(fields))
    try:
        yield
    finally:
        _context.reset(token)


def bind(**fields: Any) -> None:
    """Add fields until the enclosing `log_context` block ends (use inside one)."""
    _context.set(_merged(fields))


def push(**fields: Any) -> contextvars.Token:
    """Open a scope that is not a `with` block (signal pairs); close it with `pop`."""
    return _context.set(_merged(fields))


def clear() -> None:
    """Forget every field of this thread's context (a worker thread starting a task)."""
    _context.set(_EMPTY)


def pop(token: contextvars.Token) -> None:
    try:
        _context.reset(token)
    except ValueError:  # made in another context (thread): start clean instead
        _context.set(_EMPTY)


class ContextFilter(logging.Filter):
    """Copy the current context onto the record; never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in _context.get().items():
            if not hasattr(record, name):
                setattr(record, name, value)
        return True
