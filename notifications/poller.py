"""The webhook worker's delivery poller: a delivery's first try without a job of its own.

On PostgreSQL (PAYWAVE_WEBHOOK_POLLER, on by default there) a new delivery is written
due and without a job token. Every worker that consumes the notifications queue with
the threads (or solo) pool runs a poller: every POLL_SECONDS, and again at once while it finds
a full batch, it claims due deliveries that have no job (FOR UPDATE SKIP LOCKED, a
fresh token each, as the sweep claims them), never more tries at once than the worker's
concurrency, and runs each try on the worker's own pool, as a job would run. A Celery
job per delivery cost more CPU than the claim and the hand-off (docs/SCALING.md, "CPU").
The poller claims on one database connection of its own.

Not LISTEN/NOTIFY: PostgreSQL serializes the commits of transactions that notify (a
global lock held through the commit's WAL flush), which would cap the charging steps'
commits at one flush each, one after another.

Everything else stays a job: retries within COUNTDOWN_MAX_SECONDS, the next delivery
about a subject, a redelivery, the sweep's republishing. A delivery whose poller was
lost with its worker after the claim keeps its token, and the sweep publishes its job
once it is LOST_JOB_GRACE late; one that no poller claims (none runs) is the sweep's
at its next run. Two pollers (two webhook workers) never claim the same delivery: the
claim skips the rows another claim holds and sets a token only where there was none.
"""

import logging
import threading
import uuid
from collections.abc import Callable
from typing import Any

from django.db import close_old_connections, connection
from django.utils import timezone

from paywave.observability import log_context

from .delivery import delivery_attempt
from .models import Delivery, DeliveryStatus, WebhookEndpoint

logger = logging.getLogger(__name__)

# What a new delivery waits for at most (half of it on average) before its try starts.
POLL_SECONDS = 0.05
RETRY_SECONDS = 2.0  # after the database failed a claim
BATCH = 50
ERROR = "error"  # a try whose own bookkeeping failed

# Runs `target(*args)` on a pool, then `done(its result)`: Celery's pool.apply_async.
Submit = Callable[[Callable[..., str], tuple[Any, ...], Callable[[Any], None]], Any]

# The due rows chosen once (MATERIALIZED): a subquery the planner may scan again for each
# row it updates would pass over the rows already claimed and take more than `limit`.
# A disabled endpoint's deliveries wait for it to be enabled; a deleted one's (written
# after the delete, from a cached subscription) are claimed, and their try fails them.
_CLAIM = f"""
    WITH claimed AS MATERIALIZED (
        SELECT due.id FROM {Delivery._meta.db_table} AS due
        JOIN {WebhookEndpoint._meta.db_table} AS endpoint ON endpoint.id = due.endpoint_id
        WHERE due.status = '{DeliveryStatus.PENDING.value}' AND due.job_token IS NULL
            AND due.next_attempt_at <= %(now)s
            AND (endpoint.enabled OR endpoint.deleted_at IS NOT NULL)
        ORDER BY due.next_attempt_at, due.id
        LIMIT %(limit)s
        FOR UPDATE OF due SKIP LOCKED
    )
    UPDATE {Delivery._meta.db_table} AS delivery
    SET job_token = gen_random_uuid(), next_attempt_at = %(now)s
    FROM claimed
    WHERE delivery.id = claimed.id AND delivery.job_token IS NULL
    RETURNING delivery.id, delivery.job_token
"""  # noqa: S608 (names from the models, values as parameters)


def deliveries_claim_due(limit: int) -> list[tuple[int, uuid.UUID]]:
    """Give up to `limit` due deliveries without a job a token each: (id, token) pairs.

    Their `next_attempt_at` moves to now, so the sweep takes them only if they are still
    pending LOST_JOB_GRACE later (their poller was lost)."""
    with connection.cursor() as cursor:
        cursor.execute(_CLAIM, {"now": timezone.now(), "limit": limit})
        return [(delivery_id, token) for delivery_id, token in cursor.fetchall()]


def delivery_try(delivery_id: int, token: uuid.UUID) -> str:
    """A claimed delivery's try, on a pool thread, as a job's would run: its Outcome."""
    close_old_connections()  # as around a request or a task
    context = log_context.push(delivery_id=str(delivery_id))
    try:
        return delivery_attempt(delivery_id, token)
    except Exception:
        # The try's own bookkeeping failed (the database went away): the delivery keeps
        # its token, and the sweep publishes its job once it is late.
        logger.exception("delivery %s: the poller's try failed", delivery_id)
        return ERROR
    finally:
        log_context.pop(context)
        close_old_connections()


class DeliveryPoller:
    """Claims due deliveries as they come; at most `concurrency` of its tries at once."""

    def __init__(self, concurrency: int, submit: Submit) -> None:
        self.concurrency = concurrency
        self._submit = submit
        self._free = threading.Semaphore(concurrency)
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="delivery-poller", daemon=True)

    def start(self) -> None:
        self._thread.start()
        logger.info(
            "delivery poller started: up to %d tries at once, looking every %g s",
            self.concurrency,
            POLL_SECONDS,
            extra={"concurrency": self.concurrency},
        )

    def stop(self, timeout: float = 10.0) -> None:
        """Claim no more. The tries under way are the pool's (a worker's warm shutdown
        waits for them); one never started is the sweep's once it is late."""
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        try:
            while not self._stopping.is_set():
                try:
                    self._claim_and_submit()
                except Exception:
                    logger.exception("delivery poller: a claim failed; trying again")
                    connection.close()
                    self._stopping.wait(RETRY_SECONDS)
                else:
                    self._stopping.wait(POLL_SECONDS)
        finally:
            connection.close()  # this thread's

    def _claim_and_submit(self) -> None:
        """Claim as many as there are free slots, until none is due."""
        while not self._stopping.is_set():
            if not self._free.acquire(timeout=POLL_SECONDS):
                continue  # every slot busy for a while: look again (or stop)
            free = 1
            while free < BATCH and self._free.acquire(blocking=False):
                free += 1
            try:
                claimed = deliveries_claim_due(free)
            except BaseException:
                for _ in range(free):
                    self._free.release()
                raise
            for _ in range(free - len(claimed)):
                self._free.release()
            for delivery_id, token in claimed:
                self._start(delivery_id, token)
            if len(claimed) < free:
                return

    def _start(self, delivery_id: int, token: uuid.UUID) -> None:
        try:
            self._submit(delivery_try, (delivery_id, token), self._done)
        except Exception:  # the pool is shutting down: the sweep sends it once it is late
            self._free.release()
            logger.exception("delivery %s: claimed, but the pool refused its try", delivery_id)

    def _done(self, _outcome: Any) -> None:
        self._free.release()
