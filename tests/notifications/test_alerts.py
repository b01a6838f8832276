"""Operator alerts: the log line, an email, a JSON POST, deduplicated, never raising."""

import logging
import time
from typing import Any

import pytest
from django.core import mail
from django.core.cache import cache
from django.db import transaction

from paywave.observability import alerts
from paywave.observability.alerts import AlertKind, operator_alert
from tests.notifications.conftest import Broker, Jobs, Receiver

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def alert_settings(settings: Any) -> Any:
    settings.PAYWAVE_ALERT_EMAILS = ["ops@paywave.example", "oncall@paywave.example"]
    settings.PAYWAVE_ALERT_WEBHOOK_URL = ""
    settings.PAYWAVE_ALERT_EMAIL_FROM = "alerts@paywave.example"
    settings.PAYWAVE_ALERT_DEDUPE_SECONDS = 300
    return settings


def test_the_log_line_keeps_its_stable_alert_field(
    jobs: Jobs, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="paywave.alerts"):
        operator_alert(AlertKind.PAYMENT_PARKED, "payment p1 parked", payment_id="p1")

    (record,) = caplog.records
    assert record.levelno == logging.ERROR
    assert record.alert == AlertKind.PAYMENT_PARKED
    assert record.payment_id == "p1"
    assert record.getMessage() == "payment p1 parked"
    assert not jobs.queue  # no channel configured: the log line only


def test_an_alert_is_mailed_once_in_the_window(alert_settings: Any, jobs: Jobs) -> None:
    operator_alert(
        AlertKind.GATEWAYS_EXHAUSTED, "payment p1 failed: every gateway down", payment_id="p1"
    )
    for number in range(2, 50):  # the storm
        operator_alert(AlertKind.GATEWAYS_EXHAUSTED, f"payment p{number} failed")
    jobs.drive()

    (message,) = mail.outbox
    assert message.to == ["ops@paywave.example", "oncall@paywave.example"]
    assert message.from_email == "alerts@paywave.example"
    assert (
        message.subject
        == "[PayWave alert] gateways_exhausted: payment p1 failed: every gateway down"
    )
    assert "payment_id: p1" in message.body
    assert jobs.ran[0].job.name == "notifications.send_alert"

    operator_alert(AlertKind.CIRCUIT_OPENED, "circuit opened for stripe")  # another kind
    operator_alert(AlertKind.GATEWAYS_EXHAUSTED, "again", dedupe_key="p51")  # another key
    jobs.drive()
    assert len(mail.outbox) == 3

    cache.clear()  # the window is over
    operator_alert(AlertKind.GATEWAYS_EXHAUSTED, "after the window")
    jobs.drive()
    assert len(mail.outbox) == 4


def test_an_alert_is_posted_to_the_alert_webhook(
    alert_settings: Any, jobs: Jobs, receiver: Receiver
) -> None:
    alert_settings.PAYWAVE_ALERT_EMAILS = []
    alert_settings.PAYWAVE_ALERT_WEBHOOK_URL = receiver.url("/alerts")

    operator_alert(
        AlertKind.CIRCUIT_OPENED, "circuit opened for stripe", gateway="stripe", failures=5
    )
    jobs.drive()

    (request,) = receiver.requests
    assert request.path == "/alerts"
    assert request.headers["Content-Type"] == "application/json"
    body = request.json()
    assert body["alert"] == "circuit_opened"
    assert body["message"] == "circuit opened for stripe"
    assert body["context"] == {"gateway": "stripe", "failures": 5}
    assert body["at"].endswith("Z")
    assert mail.outbox == []


def test_a_failed_channel_alone_is_tried_again(
    alert_settings: Any, jobs: Jobs, receiver: Receiver
) -> None:
    alert_settings.PAYWAVE_ALERT_WEBHOOK_URL = receiver.url("/alerts")
    receiver.script(503)

    operator_alert(AlertKind.PAYMENT_PARKED, "payment p1 parked")
    jobs.drive()

    assert [ran.job.countdown for ran in jobs.ran] == [None, 10]
    assert len(receiver.requests) == 2
    assert len(mail.outbox) == 1  # the email went the first time and was not sent again


def test_nothing_is_sent_for_a_transaction_that_rolled_back(
    alert_settings: Any, jobs: Jobs
) -> None:
    def parked_then_rolled_back() -> None:
        with transaction.atomic():
            operator_alert(AlertKind.PAYMENT_PARKED, "payment p1 parked")
            raise RuntimeError("rolled back")

    with pytest.raises(RuntimeError):
        parked_then_rolled_back()

    assert not jobs.queue
    operator_alert(AlertKind.PAYMENT_PARKED, "payment p2 parked")  # its window was not used
    assert jobs.names() == ["notifications.send_alert"]


def test_alerts_never_raise_into_the_caller(
    alert_settings: Any, broker: Broker, monkeypatch: pytest.MonkeyPatch, jobs: Jobs
) -> None:
    broker.down()
    operator_alert(AlertKind.PAYMENT_PARKED, "payment p1 parked")  # logged, not sent

    def cache_down(*args: Any, **kwargs: Any) -> None:
        raise ConnectionError("redis is down")

    broker.up()
    monkeypatch.setattr(alerts.cache, "add", cache_down)
    monkeypatch.setattr(alerts, "_sent_here", {})
    operator_alert(AlertKind.CIRCUIT_OPENED, "circuit opened")
    operator_alert(AlertKind.CIRCUIT_OPENED, "circuit opened again")  # deduplicated here
    assert jobs.names() == ["notifications.send_alert"]


@pytest.mark.services
def test_the_dedupe_window_lives_in_redis(alert_settings: Any, jobs: Jobs) -> None:
    alert_settings.PAYWAVE_ALERT_DEDUPE_SECONDS = 1

    operator_alert(AlertKind.PAYMENT_PARKED, "one")
    operator_alert(AlertKind.PAYMENT_PARKED, "two")
    assert len(jobs.queue) == 1
    time.sleep(1.2)  # the key expires in Redis
    operator_alert(AlertKind.PAYMENT_PARKED, "three")
    assert len(jobs.queue) == 2


def test_with_no_sender_registered_an_alert_is_logged_only(
    alert_settings: Any,
    jobs: Jobs,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(alerts, "_senders", [])
    with caplog.at_level(logging.WARNING, logger="paywave.alerts"):
        operator_alert(AlertKind.PAYMENT_PARKED, "payment p1 parked")

    assert [record.levelno for record in caplog.records] == [logging.ERROR, logging.WARNING]
    assert not jobs.queue


def test_notifications_registers_the_sender_of_its_alert_job(jobs: Jobs) -> None:
    from notifications.dispatch import alert_publish

    assert alerts._senders == [alert_publish]
    alert_publish(AlertKind.PAYMENT_PARKED, "payment p1 parked", {"payment_id": "p1"})
    assert jobs.names() == ["notifications.send_alert"]
