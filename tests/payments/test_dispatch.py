import time
from typing import Any

import pytest
from celery import Celery
from kombu import Exchange, Queue

from config.celery_app import app as celery_app
from payments.models import Payment, PaymentStatus
from tests.helpers import card_body, post_payment

PAYMENTS_QUEUE = Queue("payments", Exchange("payments", type="direct"), routing_key="payments")


def _find_job(bound_queue: Any, payment_id: str, timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        message = bound_queue.get(no_ack=False)
        if message is None:
            time.sleep(0.05)
            continue
        args = message.decode()[0]
        if args[0] == payment_id:
            return message
        message.ack()  # another test's job
    return None


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_accepted_payment_job_is_published_to_rabbitmq(api: Any) -> None:
    assert celery_app.conf.broker_url.startswith("amqp://")
    with celery_app.connection_for_write() as connection:
        bound = PAYMENTS_QUEUE(connection.default_channel)
        bound.declare()
        bound.purge()

        payment_id = post_payment(api, card_body()).json()["id"]

        message = _find_job(bound, payment_id)
        assert message is not None, "no job for the payment in the payments queue"
        assert message.headers["task"] == "payments.process_payment"
        assert message.delivery_info["routing_key"] == "payments"
        assert message.properties["delivery_mode"] == 2  # persistent
        assert message.content_type == "application/json"
        token = str(Payment.objects.get(pk=payment_id).dispatch_token)
        assert message.decode()[0] == [payment_id, token]  # the id and the chain's token
        assert message.decode()[1] == {}
        message.ack()
        assert bound.get(no_ack=True) is None  # exactly one job


@pytest.mark.django_db(transaction=True)
def test_broker_down_still_accepts_and_keeps_the_payment_pending(
    api: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # Celery prefers the CELERY_BROKER_URL variable to any configuration: point it at a closed port.
    monkeypatch.setenv("CELERY_BROKER_URL", "amqp://guest:guest@127.0.0.1:1//")
    dead = Celery("dead-broker")
    dead.conf.broker_connection_timeout = 0.5
    dead.conf.task_publish_retry_policy = {"max_retries": 1, "interval_start": 0}
    monkeypatch.setattr(celery_app, "send_task", dead.send_task)  # jobs publish through it

    started = time.monotonic()
    response = post_payment(api, card_body())
    elapsed = time.monotonic() - started

    assert response.status_code == 202
    assert Payment.objects.get(pk=response.json()["id"]).status == PaymentStatus.PENDING
    assert "outbox sweep" in caplog.text
    assert dead.conf.broker_url.endswith(":1//")
    assert elapsed < 5, f"the request waited {elapsed:.1f}s for a dead broker"
