"""Log context: bound per block, per request (X-Request-ID, client), never leaking."""

import logging
import re
import threading
import uuid
from typing import Any

import pytest

from paywave.observability.log_context import bind, current_context, log_context
from tests.helpers import pix_body, post_payment

logger = logging.getLogger("payments.processing")  # an existing logger name keeps working


def test_fields_are_bound_for_the_block_and_nest(json_lines: Any) -> None:
    with log_context(payment_id="p-1", request_id="r-1"):
        logger.info("outer")
        with log_context(gateway="stripe", attempt=2):
            logger.info("inner")
        with log_context(request_id=None):
            logger.info("unbound")
    logger.info("after")

    outer, inner, unbound, after = json_lines.records()
    assert (outer["payment_id"], outer["request_id"]) == ("p-1", "r-1")
    assert "gateway" not in outer
    assert (inner["payment_id"], inner["gateway"], inner["attempt"]) == ("p-1", "stripe", 2)
    assert "request_id" not in unbound
    assert unbound["payment_id"] == "p-1"
    assert not {"payment_id", "request_id"} & after.keys()
    assert current_context() == {}


def test_extra_fields_win_over_the_context(json_lines: Any) -> None:
    with log_context(gateway="stripe"):
        logger.warning("fallback", extra={"gateway": "gerencianet"})

    assert json_lines.records()[0]["gateway"] == "gerencianet"


def test_a_json_line_has_the_logstash_v1_names(json_lines: Any) -> None:
    with log_context(payment_id="p-9"):
        logger.error("declined %s", "twice", extra={"outcome": "declined"})

    (line,) = json_lines.records()
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", line["@timestamp"])
    assert line["level"] == "ERROR"
    assert line["logger_name"] == "payments.processing"
    assert line["message"] == "declined twice"
    assert line["outcome"] == "declined"
    assert line["payment_id"] == "p-9"


def test_bind_lasts_until_the_enclosing_block_ends() -> None:
    with log_context(request_id="r-2"):
        bind(client="c-1")
        assert current_context() == {"request_id": "r-2", "client": "c-1"}
    assert current_context() == {}


def test_threads_do_not_see_each_others_context() -> None:
    seen: dict[str, Any] = {}
    inside = threading.Event()
    release = threading.Event()

    def other() -> None:
        with log_context(payment_id="theirs"):
            inside.set()
            release.wait(5)
        seen["after"] = current_context()

    thread = threading.Thread(target=other)
    with log_context(payment_id="mine"):
        thread.start()
        inside.wait(5)
        seen["mine"] = current_context()
        release.set()
        thread.join(5)

    assert seen == {"mine": {"payment_id": "mine"}, "after": {}}


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("incoming", "kept"),
    [
        ("req-123.abc_DEF", True),
        ("a" * 64, True),
        ("a" * 65, False),
        ("bad id with spaces", False),
        ("x\r\nSet-Cookie: a=b", False),
        ("", False),
    ],
)
def test_request_id_is_kept_when_sane_else_generated(
    client: Any, json_lines: Any, incoming: str, kept: bool
) -> None:
    headers = {"HTTP_X_REQUEST_ID": incoming} if incoming else {}

    response = client.get("/api/v1/no-such-endpoint", **headers)

    request_id = response["X-Request-ID"]
    if kept:
        assert request_id == incoming
    else:
        assert re.fullmatch(r"[0-9a-f]{32}", request_id)
    (line,) = json_lines.about(logger_name="paywave.requests")
    assert line["request_id"] == request_id
    assert (line["http_method"], line["http_path"], line["http_status"]) == (
        "GET",
        "/api/v1/no-such-endpoint",
        404,
    )


@pytest.mark.django_db
def test_the_wallet_app_is_bound_as_client_for_the_request(
    api: Any, wallet_app: Any, json_lines: Any
) -> None:
    response = api.get("/api/v1/payments", HTTP_X_REQUEST_ID="list-1")

    assert response.status_code == 200
    (line,) = json_lines.about(logger_name="paywave.requests")
    assert (line["request_id"], line["client"], line["http_status"]) == (
        "list-1",
        str(wallet_app.id),
        200,
    )
    assert current_context() == {}  # nothing leaks into the next request on this thread


@pytest.mark.django_db
def test_the_request_line_names_the_payment_it_is_about(api: Any, json_lines: Any) -> None:
    # (Inside the test's transaction: nothing commits, no job is published.)
    payment_id = post_payment(api, pix_body(), key="line-1").json()["id"]
    post_payment(api, pix_body(), key="line-1")  # replayed: the view binds it again
    api.get(f"/api/v1/payments/{payment_id}")
    unknown = str(uuid.uuid4())
    api.post(f"/api/v1/payments/{unknown}/cancel")
    api.get("/api/v1/payments")  # about no one payment

    lines = json_lines.about(logger_name="paywave.requests")
    assert [(line["http_status"], line.get("payment_id")) for line in lines] == [
        (202, payment_id),
        (202, payment_id),
        (200, payment_id),
        (404, unknown),
        (200, None),
    ]


@pytest.mark.django_db
def test_djangos_line_about_an_error_uses_the_request_lines_field_names(
    client: Any, json_lines: Any
) -> None:
    client.get("/api/v1/no-such-endpoint", HTTP_X_REQUEST_ID="missing-1")

    (django_line,) = json_lines.about(logger_name="django.request")
    assert (django_line["http_status"], django_line["http_method"]) == (404, "GET")
    assert (django_line["http_path"], django_line["request_id"]) == (
        "/api/v1/no-such-endpoint",
        "missing-1",
    )
    for line in json_lines.records():  # one name for the status, no request object
        assert "status_code" not in line
        assert "request" not in line


@pytest.mark.django_db
def test_probes_are_answered_with_an_id_but_not_logged(client: Any, json_lines: Any) -> None:
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response["X-Request-ID"]
    assert json_lines.about(logger_name="paywave.requests") == []


class _Request:
    def __init__(self, *, is_eager: bool, headers: dict[str, str] | None = None) -> None:
        self.is_eager = is_eager
        self.headers = headers or {}


class _Task:
    name = "payments.process_payment"

    def __init__(self, request: _Request) -> None:
        self.request = request


def test_a_worker_thread_starts_each_task_clean_and_ends_it_clean() -> None:
    from celery import signals

    leftover = log_context(payment_id="p-old", gateway="gw-old")  # what a task left behind
    leftover.__enter__()
    try:
        for task_id, payment_id in (("t-1", "p-1"), ("t-2", "p-2")):  # one thread, two tasks
            task = _Task(_Request(is_eager=False, headers={"paywave_request_id": f"r-{task_id}"}))
            signals.task_prerun.send(sender=task, task_id=task_id, task=task, args=[payment_id])
            assert current_context() == {
                "task_id": task_id,
                "request_id": f"r-{task_id}",
                "payment_id": payment_id,
            }
            signals.task_postrun.send(sender=task, task_id=task_id, task=task, args=[payment_id])
            assert current_context() == {}
    finally:
        leftover.__exit__(None, None, None)


def test_a_task_run_eagerly_keeps_its_callers_context() -> None:
    from celery import signals

    task = _Task(_Request(is_eager=True))
    with log_context(request_id="r-caller"):
        signals.task_prerun.send(sender=task, task_id="t-e", task=task, args=["p-e"])
        assert current_context() == {
            "request_id": "r-caller",
            "task_id": "t-e",
            "payment_id": "p-e",
        }
        signals.task_postrun.send(sender=task, task_id="t-e", task=task, args=["p-e"])
        assert current_context() == {"request_id": "r-caller"}


def test_every_task_about_one_subject_names_its_first_argument_in_the_log_context() -> None:
    import inspect

    from config.celery_app import app
    from paywave.observability.celery_signals import FIRST_ARGUMENT_FIELD

    fields = {"payment_id", "refund_id", "callback_id", "delivery_id"}
    about_one = {
        name: first
        for name, task in app.tasks.items()
        if not name.startswith("celery.")
        and (parameters := list(inspect.signature(task.run).parameters))
        and (first := parameters[0]) in fields
    }
    assert about_one  # the scan found them
    assert about_one == FIRST_ARGUMENT_FIELD
