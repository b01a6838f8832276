"""Workers' entry points for notifications: thin wrappers over services.

The jobs' bodies (notifications/jobs.py declares them) and beat's tasks. Nothing in the
app imports this module but NotificationsConfig.ready: it is the top of the app."""

import logging
from typing import Any

from celery import shared_task, signals
from celery.concurrency.solo import TaskPool as SoloPool
from celery.concurrency.thread import TaskPool as ThreadsPool

from paywave.jobs import NOTIFICATIONS_QUEUE

from .alerting import alert_send
from .delivery import deliveries_sweep, delivery_attempt
from .dispatch import alert_retry_publish, poller_enabled
from .fan_out import events_sweep_fan_out
from .jobs import DELIVER, SEND_ALERT
from .poller import DeliveryPoller
from .retention import events_purge_expired

logger = logging.getLogger(__name__)

ALERT_RETRY_COUNTDOWNS = (10, 60, 300)


@DELIVER.task
def deliver(delivery_id: int, token: str) -> str:
    return delivery_attempt(delivery_id, token)


@shared_task(name="notifications.sweep_events", ignore_result=True)
def sweep_events() -> int:
    return events_sweep_fan_out()


@shared_task(name="notifications.sweep_deliveries", ignore_result=True)
def sweep_deliveries() -> int:
    return deliveries_sweep()


@shared_task(name="notifications.purge_expired_events", ignore_result=True)
def purge_expired_events() -> int:
    return events_purge_expired()


@SEND_ALERT.task
def send_alert(
    kind: str,
    message: str,
    context: dict[str, Any],
    channels: list[str] | None = None,
    tries: int = 0,
) -> None:
    failed = alert_send(kind=kind, message=message, context=context, channels=channels)
    if failed and tries < len(ALERT_RETRY_COUNTDOWNS):
        alert_retry_publish(
            [kind, message, context, failed, tries + 1], ALERT_RETRY_COUNTDOWNS[tries]
        )


# The worker's delivery poller (notifications/poller.py), while it runs.
_pollers: list[DeliveryPoller] = []


@signals.worker_ready.connect
def start_delivery_poller(sender: Any = None, **_: Any) -> None:
    """In a worker that consumes the notifications queue: its tries run on the worker's
    own pool (so on its threads, with their database connections), at most its
    concurrency at once. The threads and solo pools only: a prefork pool's children
    would be handed tries from another thread than the one Celery hands them tasks from."""
    queues = sender.app.amqp.queues
    if not poller_enabled() or NOTIFICATIONS_QUEUE not in (queues.consume_from or queues):
        return
    worker = sender.controller
    pool = worker.pool
    if not isinstance(pool, ThreadsPool | SoloPool):
        logger.warning(
            "delivery poller off in this worker (%s pool): beat's delivery sweep sends new "
            "deliveries, up to PAYWAVE_WEBHOOK_SWEEP_SECONDS late",
            type(pool).__module__,
        )
        return

    def submit(target: Any, args: tuple[Any, ...], done: Any) -> None:
        pool.apply_async(target, args, callback=done)

    poller = DeliveryPoller(worker.concurrency, submit)
    poller.start()
    _pollers.append(poller)


@signals.worker_shutting_down.connect
@signals.worker_shutdown.connect
def stop_delivery_poller(**_: Any) -> None:
    while _pollers:
        _pollers.pop().stop()
