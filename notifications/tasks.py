"""Workers' entry points for notifications: thin wrappers over services.

The jobs' bodies (notifications/jobs.py declares them) and beat's tasks. Nothing in the
app imports this module but NotificationsConfig.ready: it is the top of the app."""

from typing import Any

from celery import shared_task

from .alerting import alert_send
from .delivery import deliveries_sweep, delivery_attempt
from .dispatch import alert_retry_publish
from .fan_out import events_sweep_fan_out
from .jobs import DELIVER, SEND_ALERT
from .retention import events_purge_expired

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
