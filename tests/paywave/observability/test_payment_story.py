"""One payment's story, API and worker alike, carries its payment_id and request_id.

The API request publishes the job to RabbitMQ; a Celery worker (in this process,
in a thread, consuming a private queue so no other test's worker takes the job: the
`worker` fixture, conftest.py) runs it with the real signals; every retry it publishes
carries the request id on.
"""

import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from django.db import transaction
from kombu import Exchange, Queue
from prometheus_client import REGISTRY

from config.celery_app import app as celery_app
from gateways.base import Payer
from payments.models import Payment
from payments.models import PaymentStatus as S
from payments.services import payment_create
from paywave.observability.log_context import log_context
from tests.helpers import pix_body, post_payment

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]


def wait_for(predicate: Callable[[], Any], timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(0.05)
    raise AssertionError("timed out")


def test_api_request_and_worker_attempts_share_payment_id_and_request_id(
    api: Any, wallet_app: Any, gateways: Any, sim: Any, worker: Any, json_lines: Any
) -> None:
    sim.faults("mercadopago", down=True, down_mode="503")  # three tries, then Efí
    request_id = f"story-{uuid.uuid4().hex[:12]}"

    response = post_payment(api, pix_body(), key="story-1", HTTP_X_REQUEST_ID=request_id)
    payment_id = response.json()["id"]
    wait_for(lambda: Payment.objects.get(pk=payment_id).status == S.AWAITING_PAYMENT)
    # The transition's line is written after its commit: the row may be read first.
    wait_for(lambda: json_lines.about(payment_id=payment_id, to_status=S.AWAITING_PAYMENT))

    assert response["X-Request-ID"] == request_id
    story = json_lines.about(payment_id=payment_id)
    client = str(wallet_app.id)
    # The API side: the payment created (pending), its job published while the request
    # ran, and the request's own line.
    created, accepted, request_line = [r for r in story if "task_id" not in r]
    assert (created["event"], created["to_status"]) == ("payment_transition", S.PENDING)
    assert accepted["message"] == "task payments.process_payment published"
    assert (request_line["logger_name"], request_line["http_status"]) == ("paywave.requests", 202)
    for line in (created, accepted, request_line):
        assert (line["request_id"], line["client"]) == (request_id, client)
    # The worker side: each failed attempt, in its own task, with the request's id.
    failures = [r for r in story if r["message"].startswith("gateway attempt failed")]
    assert [(r["gateway"], r["attempt"]) for r in failures] == [
        ("mercadopago", 1),
        ("mercadopago", 2),
        ("mercadopago", 3),
    ]
    for line in failures:
        assert (line["request_id"], line["client"]) == (request_id, client)
    assert len({line["task_id"] for line in failures}) == 3  # three jobs, one id for the story
    # Retries published from inside the worker carry the id on.
    retries = [r for r in story if r.get("published_task") and "task_id" in r]
    assert len(retries) == 3
    assert {r["request_id"] for r in retries} == {request_id}
    assert {r["request_id"] for r in story} == {request_id}
    # The worker's "received" line of each job is in the story, with the job's task id.
    received = [r for r in story if r["message"].endswith("] received")]
    assert len(received) == 4  # the first job and three retries
    assert {r["task_id"] for r in received} == {r["published_task_id"] for r in retries} | {
        accepted["published_task_id"]
    }
    # Lines written during an attempt by other code name its gateway and try too.
    (issued,) = [r for r in story if r.get("to_status") == S.AWAITING_PAYMENT]
    assert (issued["gateway"], issued["attempt"]) == ("gerencianet", 1)


def test_the_request_id_travels_in_the_message_headers(private_queue: str) -> None:
    queue = Queue(private_queue, Exchange(private_queue, type="direct"), routing_key=private_queue)
    payment_id = str(uuid.uuid4())

    with log_context(request_id="hdr-1", client="client-7"):
        celery_app.send_task("payments.process_payment", args=[payment_id, "token"])
    celery_app.send_task("payments.process_payment", args=[payment_id, "token"])  # no request

    with celery_app.connection_for_read() as conn:
        bound = queue(conn.default_channel)
        first = wait_for(lambda: bound.get(no_ack=True), timeout=10)
        second = wait_for(lambda: bound.get(no_ack=True), timeout=10)
    assert first.headers["paywave_request_id"] == "hdr-1"
    assert first.headers["paywave_client"] == "client-7"
    assert first.decode()[0] == [payment_id, "token"]
    assert "paywave_request_id" not in second.headers


def test_a_task_run_binds_task_id_payment_id_and_the_propagated_fields(json_lines: Any) -> None:
    from payments.tasks import process_payment

    payment_id = str(uuid.uuid4())  # unknown: the step logs a warning and stops
    process_payment.apply(
        args=[payment_id, None],
        task_id="task-1",
        headers={"paywave_request_id": "req-9", "paywave_client": "client-9"},
    )

    (line,) = json_lines.about(message="job for an unknown payment dropped")
    assert line["payment_id"] == payment_id
    assert (line["task_id"], line["request_id"], line["client"]) == ("task-1", "req-9", "client-9")
    # Celery's success line is not written below DEBUG: the task's own lines tell it.
    assert not json_lines.about(logger_name="celery.app.trace")
    logging.getLogger("payments").info("after the task")
    assert "task_id" not in json_lines.records()[-1]  # unbound at task_postrun


def test_a_failing_task_logs_its_failure_inside_its_context(json_lines: Any) -> None:
    from payments.tasks import process_payment

    process_payment.apply(
        args=["not-a-uuid", None], task_id="task-2", headers={"paywave_request_id": "req-2"}
    )

    # Celery's own failure line is written inside the task's context: it is in the story.
    (line,) = json_lines.about(logger_name="celery.app.trace", level="ERROR")
    assert (
        "payments.process_payment[task-2] raised unexpected: ValidationError" in (line["message"])
    )
    assert (line["payment_id"], line["task_id"], line["request_id"]) == (
        "not-a-uuid",
        "task-2",
        "req-2",
    )


def pending_created(method: str) -> float:
    labels = {"to_status": "pending", "method": method, "gateway": "none"}
    return REGISTRY.get_sample_value("paywave_payment_transitions_total", labels) or 0.0


def test_a_payment_starts_its_story_with_its_creation_as_a_transition(
    api: Any, wallet_app: Any, private_queue: str, json_lines: Any
) -> None:
    request_id = f"created-{uuid.uuid4().hex[:12]}"
    counted = pending_created("pix")

    response = post_payment(api, pix_body(), key="created-1", HTTP_X_REQUEST_ID=request_id)

    payment_id = response.json()["id"]
    (created,) = json_lines.about(payment_id=payment_id, event="payment_transition")
    assert (created["to_status"], created["method"]) == ("pending", "pix")
    assert (created["request_id"], created["client"]) == (request_id, str(wallet_app.id))
    assert "from_status" not in created
    assert "gateway" not in created
    story = [line["message"] for line in json_lines.about(payment_id=payment_id)]
    assert story.index(created["message"]) < story.index("task payments.process_payment published")
    assert pending_created("pix") == counted + 1


def test_a_creation_rolled_back_is_neither_logged_nor_counted(
    wallet_app: Any, private_queue: str, json_lines: Any
) -> None:
    counted = pending_created("pix")

    def create_then_fail() -> None:
        with transaction.atomic():
            payment_create(
                client_id=str(wallet_app.id),
                amount=1050,
                currency="BRL",
                method="pix",
                payer=Payer(name="Ana Souza", country="BR", tax_id="12345678909"),
            )
            raise RuntimeError("the caller's transaction fails after the payment was written")

    with pytest.raises(RuntimeError):
        create_then_fail()

    assert json_lines.about(event="payment_transition") == []
    assert pending_created("pix") == counted
