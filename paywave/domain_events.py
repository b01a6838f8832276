"""Domain events in process: an app publishes what changed, other apps subscribe to it.

The publisher never names its subscribers: each app subscribes its own handlers in
its `AppConfig.ready()`, so the dependency points from the subscriber to the
publisher. An event is a typed value object (a frozen dataclass) published inside
the transaction that makes it true; a handler receives events of exactly the type
it subscribed to.

- `Phase.IN_TRANSACTION`: called by `publish`, in the publisher's transaction, for
  what must commit or roll back with the change (money, the webhook outbox). A
  handler that raises refuses the change: the publisher's transaction rolls back.
- `Phase.AFTER_COMMIT`: called once the transaction commits (`on_commit`, robust:
  an exception is logged and stops neither the change nor the other handlers), for
  what must never undo it (cache writes, metrics). Not called on a rollback.

Handlers of a phase run in the order they subscribed: `ready()` runs in the order
of INSTALLED_APPS.
"""

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypeVar

from django.db import transaction

E = TypeVar("E")


class Phase(StrEnum):
    IN_TRANSACTION = "in_transaction"
    AFTER_COMMIT = "after_commit"


@dataclass(frozen=True)
class _Subscription:
    handler: Callable[[Any], None]
    phase: Phase


_registry: dict[type, list[_Subscription]] = {}


def subscribe(event_type: type[E], handler: Callable[[E], None], *, phase: Phase) -> None:
    """Call `handler` with every `event_type` published; subscribing it again changes nothing."""
    subscriptions = _registry.setdefault(event_type, [])
    if _Subscription(handler, phase) not in subscriptions:
        subscriptions.append(_Subscription(handler, phase))


def unsubscribe(event_type: type[E], handler: Callable[[E], None]) -> None:
    _registry[event_type] = [s for s in _registry.get(event_type, []) if s.handler != handler]


def subscribers(event_type: type, phase: Phase) -> list[Callable[[Any], None]]:
    """The handlers `publish` calls for `event_type` in `phase`, in the order it calls them."""
    return [s.handler for s in _registry.get(event_type, []) if s.phase == phase]


def publish(event: object) -> None:
    """Run the in-transaction handlers now and schedule the after-commit ones.

    Only inside a transaction (`transaction.atomic`): the one the event belongs to.
    """
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError(f"{type(event).__name__} is published inside its transaction")
    for handler in subscribers(type(event), Phase.IN_TRANSACTION):
        handler(event)
    for handler in subscribers(type(event), Phase.AFTER_COMMIT):
        transaction.on_commit(_bound(handler, event), robust=True)


def _bound(handler: Callable[[E], None], event: E) -> Callable[[], None]:
    def call() -> None:
        handler(event)

    # What Django's log names when a robust callback fails.
    call.__qualname__ = getattr(handler, "__qualname__", repr(handler))
    return call
