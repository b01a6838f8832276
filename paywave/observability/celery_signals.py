"""Celery signal wiring: log context around tasks, request ids across the broker, metrics.

- before_task_publish: the publishing side's request id and client travel in the
  message headers (`paywave_request_id`, `paywave_client`), so a worker's lines
  carry the id of the API request that started the work, retries included (a
  task that publishes its next step publishes from inside its own context).
- task_received: the "Task <name>[<id>] received" line, written by the worker as
  the message arrives (before the task's context exists) with task_id, the propagated
  fields and the subject id; Celery's own line, which has none of them, is off
  (settings.LOGGING).
- task_prerun / task_postrun: a log context per task: task_id, the propagated
  fields, and the subject id named by the task's first argument (Celery's own
  lines about the task, its failure included, are written inside it). A task a
  worker runs starts from an empty context: a pool thread carries nothing over.
- task_prerun / task_postrun: database connections past CONN_MAX_AGE, or broken, are
  closed, as Django does around a request (CELERY_DB_REUSE_MAX keeps Celery's
  fixup from closing every connection after every task); not for a task run eagerly,
  which runs inside its caller's transaction.
- celeryd_after_setup: what the worker's start-up banner says (queues, pool,
  concurrency) as one log line, for workers started with `--quiet` (the Procfile).
- worker_init: the system checks run, and a worker exits when one fails (Celery runs
  them too but starts anyway); with PAYWAVE_WORKER_METRICS_PORT set, the worker serves
  its own Prometheus metrics there (attempts and transitions happen in workers), on
  PAYWAVE_WORKER_METRICS_ADDR, to PAYWAVE_METRICS_ALLOW only, as the API does.
- task_success / task_failure: a beat task's heartbeat (paywave.observability.heartbeats).

Imported by config/celery_app.py, so every process that loads the app has it.
"""

import logging
from typing import Any

from celery import signals
from django.db import close_old_connections

from paywave.observability import log_context

logger = logging.getLogger("paywave.celery")

HEADER_PREFIX = "paywave_"
PROPAGATED_FIELDS = ("request_id", "client")
# The context field each task's first argument is (ids of other kinds are not payment ids).
FIRST_ARGUMENT_FIELD = {
    "payments.process_payment": "payment_id",
    "payments.payer_returned": "payment_id",
    "payments.cancel_at_gateway": "payment_id",
    "payments.process_refund": "refund_id",
    "callbacks.process": "callback_id",
    "notifications.deliver": "delivery_id",
}

# Where a task's context token waits for task_postrun: on the task's own request (the
# same object from prerun to postrun, one per execution, whatever the pool).
_CONTEXT_SLOT = "paywave_log_context_token"


@signals.before_task_publish.connect
def _propagate_context(
    sender: str | None = None,
    body: Any = None,
    headers: dict[str, Any] | None = None,
    **_: Any,
) -> None:
    if headers is None:
        return
    context = log_context.current_context()
    for name in PROPAGATED_FIELDS:
        if context.get(name) is not None:
            headers.setdefault(HEADER_PREFIX + name, str(context[name]))
    field = FIRST_ARGUMENT_FIELD.get(sender or "")
    if field:  # a line of the story: the job was published (accepted, or a retry is due)
        logger.info(
            "task %s published",
            sender,
            extra={
                field: _first_argument(body),
                "published_task": sender,
                "published_task_id": headers.get("id"),
                "eta": headers.get("eta"),
            },
        )


def _first_argument(body: Any) -> str | None:
    # Message protocol 2: the body is (args, kwargs, embed).
    try:
        return str(body[0][0])
    except (TypeError, IndexError, KeyError):
        return None


@signals.task_received.connect
def _log_received(request: Any = None, **_: Any) -> None:
    headers = getattr(request, "request_dict", None) or {}
    fields: dict[str, Any] = {"task_id": request.id}
    for name in PROPAGATED_FIELDS:
        if headers.get(HEADER_PREFIX + name) is not None:
            fields[name] = headers[HEADER_PREFIX + name]
    field = FIRST_ARGUMENT_FIELD.get(request.name)
    if field and request.args:
        fields[field] = str(request.args[0])
    if request.eta:
        fields["eta"] = request.eta
    logger.info("Task %s[%s] received", request.name, request.id, extra=fields)


def _header(task: Any, name: str) -> Any:
    request = getattr(task, "request", None)
    value = getattr(request, name, None)
    if value is None:
        value = (getattr(request, "headers", None) or {}).get(name)
    return value


@signals.task_prerun.connect
def _bind_task_context(
    task_id: str | None = None,
    task: Any = None,
    args: Any = None,
    **_: Any,
) -> None:
    fields: dict[str, Any] = {"task_id": task_id}
    for name in PROPAGATED_FIELDS:
        value = _header(task, HEADER_PREFIX + name)
        if value is not None:
            fields[name] = value
    field = FIRST_ARGUMENT_FIELD.get(getattr(task, "name", ""))
    if field and args:
        fields[field] = str(args[0])
    if not _is_eager(task):
        log_context.clear()
    request = getattr(task, "request", None)
    token = log_context.push(**fields)
    if request is not None:
        setattr(request, _CONTEXT_SLOT, token)


def _is_eager(task: Any) -> bool:
    return bool(getattr(getattr(task, "request", None), "is_eager", False))


@signals.task_prerun.connect
@signals.task_postrun.connect
def _close_old_database_connections(task: Any = None, **_: Any) -> None:
    # What Django does around each request (request_started / request_finished).
    if not _is_eager(task):
        close_old_connections()


@signals.task_postrun.connect
def _unbind_task_context(task: Any = None, **_: Any) -> None:
    request = getattr(task, "request", None)
    token = getattr(request, _CONTEXT_SLOT, None)
    if token is not None:
        setattr(request, _CONTEXT_SLOT, None)
        log_context.pop(token)


@signals.celeryd_after_setup.connect
def _log_worker_setup(sender: str | None = None, instance: Any = None, **_: Any) -> None:
    queues = sorted(instance.app.amqp.queues.consume_from or instance.app.amqp.queues)
    pool = instance.pool_cls
    pool = (pool if isinstance(pool, str) else pool.__module__).rsplit(".", 1)[-1]
    logger.info(
        "worker %s: queues %s, %s pool of %s",
        sender,
        ",".join(queues),
        pool,
        instance.concurrency,
        extra={"queues": queues, "pool": pool, "concurrency": instance.concurrency},
    )


@signals.worker_init.connect
def refuse_to_start_on_failed_checks(**_: Any) -> None:
    """A stored value no configured key can read stops the worker (paywave.encryption.checks)."""
    from django.core.management.base import SystemCheckError

    from paywave.encryption.checks import refuse_to_start_on_errors

    try:
        refuse_to_start_on_errors()
    except SystemCheckError as exc:
        logger.critical("%s", exc)
        # Celery logs and swallows an Exception raised by a signal handler; not SystemExit.
        raise SystemExit(1) from exc


@signals.worker_init.connect
def serve_worker_metrics(**_: Any) -> Any:
    """Serve this worker's registry (its attempts, transitions, deliveries) to Prometheus."""
    from django.conf import settings

    port = settings.PAYWAVE_WORKER_METRICS_PORT
    if not port:
        return None
    from paywave.observability.metrics import worker_metrics_serve

    addr = settings.PAYWAVE_WORKER_METRICS_ADDR
    server = worker_metrics_serve(addr, port)
    logger.info("worker metrics on %s port %s (PAYWAVE_METRICS_ALLOW only)", addr, port)
    return server


@signals.task_success.connect
def _heartbeat_success(sender: Any = None, result: Any = None, **_: Any) -> None:
    from paywave.observability.heartbeats import heartbeat_record

    heartbeat_record(getattr(sender, "name", ""), succeeded=True, result=result)


@signals.task_failure.connect
def _heartbeat_failure(sender: Any = None, **_: Any) -> None:
    from paywave.observability.heartbeats import heartbeat_record

    heartbeat_record(getattr(sender, "name", ""), succeeded=False)
