"""paywave.domain_events: typed subscriptions, in the transaction or after its commit."""

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from django.db import transaction

from paywave.domain_events import Phase, publish, subscribe, subscribers, unsubscribe
from paywave.models import ApiClient
from tests.factories import ApiClientFactory


@dataclass(frozen=True)
class Happened:
    what: str


@dataclass(frozen=True)
class Unrelated:
    what: str


Subscribe = Callable[[Callable[[Any], None], Phase], None]


@pytest.fixture
def subscribed() -> Iterator[Subscribe]:
    """subscribed(handler, phase): a Happened subscription for this test only."""
    handlers: list[Callable[[Any], None]] = []

    def add(handler: Callable[[Any], None], phase: Phase) -> None:
        subscribe(Happened, handler, phase=phase)
        handlers.append(handler)

    yield add
    for handler in handlers:
        unsubscribe(Happened, handler)


def _recorder(log: list[str], name: str) -> Callable[[Happened], None]:
    def handler(event: Happened) -> None:
        log.append(f"{name}:{event.what}")

    return handler


@pytest.mark.django_db
def test_in_transaction_handlers_run_in_publish_in_order_and_after_commit_ones_after_it(
    subscribed: Subscribe, django_capture_on_commit_callbacks: Any
) -> None:
    log: list[str] = []
    subscribed(_recorder(log, "late-1"), Phase.AFTER_COMMIT)
    subscribed(_recorder(log, "now-1"), Phase.IN_TRANSACTION)
    subscribed(_recorder(log, "late-2"), Phase.AFTER_COMMIT)
    subscribed(_recorder(log, "now-2"), Phase.IN_TRANSACTION)

    with django_capture_on_commit_callbacks(execute=True):
        with transaction.atomic():
            publish(Happened("x"))
            assert log == ["now-1:x", "now-2:x"]  # not yet committed: only these ran
        assert log == ["now-1:x", "now-2:x"]

    assert log == ["now-1:x", "now-2:x", "late-1:x", "late-2:x"]


@pytest.mark.django_db
def test_a_handler_gets_only_the_type_it_subscribed_to(subscribed: Subscribe) -> None:
    log: list[str] = []
    subscribed(_recorder(log, "h"), Phase.IN_TRANSACTION)

    with transaction.atomic():
        publish(Unrelated("x"))
        publish(Happened("y"))

    assert log == ["h:y"]


@pytest.mark.django_db
def test_a_failing_in_transaction_handler_rolls_the_change_back_and_nothing_runs_after(
    subscribed: Subscribe, django_capture_on_commit_callbacks: Any
) -> None:
    log: list[str] = []

    def refuse(event: Happened) -> None:
        raise ValueError("refused")

    subscribed(refuse, Phase.IN_TRANSACTION)
    subscribed(_recorder(log, "after-refusal"), Phase.IN_TRANSACTION)
    subscribed(_recorder(log, "late"), Phase.AFTER_COMMIT)

    def change() -> None:
        with transaction.atomic():
            ApiClientFactory(name="written with the change")
            publish(Happened("x"))

    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(ValueError, match="refused"),
    ):
        change()

    assert not ApiClient.objects.filter(name="written with the change").exists()
    assert log == []
    assert callbacks == []


@pytest.mark.django_db
def test_after_commit_handlers_do_not_run_when_the_transaction_rolls_back(
    subscribed: Subscribe, django_capture_on_commit_callbacks: Any
) -> None:
    log: list[str] = []
    subscribed(_recorder(log, "late"), Phase.AFTER_COMMIT)

    def change() -> None:
        with transaction.atomic():
            publish(Happened("x"))
            raise RuntimeError("something later in the transaction failed")

    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(RuntimeError, match="later"),
    ):
        change()

    assert (log, callbacks) == ([], [])


@pytest.mark.django_db
def test_a_failing_after_commit_handler_is_logged_and_the_others_still_run(
    subscribed: Subscribe,
    django_capture_on_commit_callbacks: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    log: list[str] = []

    def cache_down(event: Happened) -> None:
        raise ConnectionError("Redis is down")

    subscribed(cache_down, Phase.AFTER_COMMIT)
    subscribed(_recorder(log, "count"), Phase.AFTER_COMMIT)

    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        publish(Happened("x"))

    assert log == ["count:x"]
    [failure] = [r for r in caplog.records if "in on_commit()" in r.getMessage()]
    assert "cache_down" in failure.getMessage()  # names the handler that failed


def test_publishing_outside_a_transaction_is_an_error(subscribed: Subscribe) -> None:
    log: list[str] = []
    subscribed(_recorder(log, "h"), Phase.IN_TRANSACTION)

    with pytest.raises(RuntimeError, match="Happened is published inside its transaction"):
        publish(Happened("x"))

    assert log == []


def test_subscribing_a_handler_again_changes_nothing(subscribed: Subscribe) -> None:
    handler = _recorder([], "h")
    subscribed(handler, Phase.IN_TRANSACTION)
    subscribed(handler, Phase.IN_TRANSACTION)

    assert subscribers(Happened, Phase.IN_TRANSACTION) == [handler]
    assert subscribers(Happened, Phase.AFTER_COMMIT) == []
