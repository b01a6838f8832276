"""Durable jobs: a Celery task declared once with its queue, and published through it.

An app declares its jobs in a module of their own (`payments/jobs.py`), which imports
none of the app's code; its tasks module gives each job its body (`@JOB.task`), and the
services that publish import the job, never the tasks module (which imports them):

    PROCESS_PAYMENT = Job("payments.process_payment", queue=PAYMENTS_QUEUE, acks_late=True)

    @PROCESS_PAYMENT.task                       # payments/tasks.py
    def process_payment(payment_id: str, token: str | None = None) -> None: ...

    PROCESS_PAYMENT.publish(payment.id, token)  # a service, after its commit

The task is bound to Celery's default app (config/celery_app.py's, in every thread).
An app's AppConfig.ready imports its tasks module, so every process that publishes has
the bodies; publishing a job whose body was never declared is an error.

A job's row carries a token: the job published with it owns the row's next step, and a
job carrying an older one finds nothing to do. `token_swap` claims the row by
compare-and-set; each app's own rule (the row's status, a try count) narrows the rows.

Work whose job never reached the broker, or was lost with it, stays in the database,
due; beat's sweeps give it to `overdue_republish`, the one overdue sweep: each app
says which rows are overdue (its rule), the sweep claims and publishes them.

The queues are named here, once: the jobs, the settings' queues and routes
(config/settings/celery.py) and the queue-depth metrics (paywave/observability/metrics.py)
use these.
"""

import logging
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from celery import Task
from celery.app import default_app
from django.utils import timezone

if TYPE_CHECKING:  # the settings import the queues' names: no Django models at import
    from django.db.models import QuerySet

PAYMENTS_QUEUE = "payments"
CALLBACKS_QUEUE = "callbacks"
NOTIFICATIONS_QUEUE = "notifications"
DEFAULT_QUEUE = "default"
QUEUES = (PAYMENTS_QUEUE, CALLBACKS_QUEUE, NOTIFICATIONS_QUEUE, DEFAULT_QUEUE)

logger = logging.getLogger(__name__)


class Job:
    def __init__(self, name: str, *, queue: str, **options: Any) -> None:
        if queue not in QUEUES:
            raise ValueError(f"job {name}: {queue!r} is not one of {QUEUES}")
        self.name = name
        self.queue = queue
        self.options = options
        self._task: Task | None = None

    def task(self, run: Callable[..., Any]) -> Task:
        """Declare the job's body: the Celery task named after the job, with its options."""
        self._task = default_app.task(name=self.name, **self.options)(run)
        return self._task

    def publish(self, *args: Any, countdown: float = 0, expires: float | None = None) -> None:
        """Send the job to its queue; raises what the broker raises (kombu's OperationalError).
        `expires`: seconds after which a worker drops the job unrun."""
        if self._task is None:
            raise RuntimeError(f"job {self.name} has no task: its tasks module was not imported")
        options: dict[str, Any] = {"queue": self.queue}
        if countdown:
            options["countdown"] = countdown
        if expires is not None:
            options["expires"] = expires
        arguments_repr = _arguments_repr(args)
        if arguments_repr is not None:
            options.update(argsrepr=arguments_repr, kwargsrepr="{}")
        self._task.apply_async(args=args, **options)

    def publish_or_log(
        self,
        *args: Any,
        countdown: float = 0,
        expires: float | None = None,
        then: str,
        **log_fields: Any,
    ) -> bool:
        """Publish; if the broker refuses, log why it does not matter (`then`) and say False.

        For a job whose reason stays in the database, where a sweep publishes it again.
        """
        try:
            self.publish(*args, countdown=countdown, expires=expires)
        except Exception:
            logger.error(
                "could not publish %s; %s", self.name, then, extra=log_fields, exc_info=True
            )
            return False
        return True

    def __repr__(self) -> str:
        return f"<Job {self.name} queue={self.queue}>"


# Celery writes each message's arguments as text too (`argsrepr`, what Flower shows) with
# its safe repr, which walks them: a twentieth of a publish. A job's arguments are mostly
# ids and tokens, whose repr is the same text.
_ARGUMENTS_REPR_MAX = 1024  # celery.app.amqp.AMQP.argsrepr_maxsize


def _arguments_repr(args: tuple[Any, ...]) -> str | None:
    """The arguments' text as Celery's saferepr writes it, or None to let Celery write it."""
    if not all(_written_alike(argument) for argument in args):
        return None
    text = repr(args)
    return text if len(text) <= _ARGUMENTS_REPR_MAX else None


def _written_alike(argument: Any) -> bool:
    """repr() writes it as saferepr does: an int, a UUID, None, or text without what
    saferepr quotes or escapes its own way (an apostrophe, a backslash, what does not
    print)."""
    if type(argument) is str:
        return argument.isprintable() and "'" not in argument and "\\" not in argument
    return type(argument) in (int, uuid.UUID, type(None))


def token_swap(
    rows: "QuerySet[Any]", *, field: str, expected: Any, **changes: Any
) -> uuid.UUID | None:
    """Give the row a fresh token in `field` (and `changes`) if it still holds `expected`.

    One UPDATE of `rows` (the row and the app's rule for it, e.g. its status) narrowed to
    `field = expected` (IS NULL for None): the new token, or None if another job, a
    sweep or staff moved the row first.
    """
    token = uuid.uuid4()
    claimed = rows.filter(**{field: expected}).update(**{field: token}, **changes)
    return token if claimed else None


SWEEP_BATCH = 500


def overdue_republish(
    overdue: "QuerySet[Any]",
    *,
    publish: Callable[..., bool],
    claim_by: str | None = None,
    due_field: str = "next_attempt_at",
    order_by: str | None = None,
    batch: int = SWEEP_BATCH,
) -> int:
    """The overdue sweep: publish the job of each row in `overdue`, oldest first; how many.

    `overdue` is the app's rule for work whose job never ran (its status, how late it
    is). With `claim_by`, the row's token column, each row is claimed by compare-and-set
    before its job is published with the token: a row without a token gets a fresh one
    (`token_swap`), a row with one keeps it (if the first job was only late, whichever
    job runs second finds nothing to do), and its `due_field` moves to now, so no
    sweep publishes it again until it is overdue again. Without `claim_by` the row's
    own state is the guard: its job finds nothing to do once the row has moved on.
    `publish(pk[, token])` says whether the broker took the job; when it did not, the
    row is put back as it was and the sweep stops (the broker is down: the next sweep
    tries again).
    """
    if claim_by is None:
        ids = overdue.order_by(order_by or due_field).values_list("pk", flat=True)[:batch]
        published = 0
        for pk in list(ids):
            if not publish(pk):
                break
            published += 1
        return published
    rows = list(
        overdue.order_by(order_by or due_field).values_list("pk", claim_by, due_field)[:batch]
    )
    now = timezone.now()
    published = 0
    for pk, token, due in rows:
        mine = overdue.filter(pk=pk)
        put_back: dict[str, Any] = {due_field: due}
        if token is None:
            token = token_swap(mine, field=claim_by, expected=None, **{due_field: now})
            put_back[claim_by] = None
        elif not mine.filter(**{claim_by: token}).update(**{due_field: now}):
            token = None
        if token is None:
            continue  # it moved on meanwhile
        if not publish(pk, token):
            overdue.model._default_manager.filter(pk=pk, **{claim_by: token}).update(**put_back)
            break
        published += 1
    return published
