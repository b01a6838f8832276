"""Publishing notification jobs to the broker (queue `notifications`).

A publish that fails is logged and reported as False, never raised: what it
was for stays in the database (an event not fanned out, a delivery whose
`next_attempt_at` passes) and beat's sweeps publish it again.
"""

import logging
from typing import Any

from celery.app import default_app as celery_app  # config/celery_app.py's, in every thread

logger = logging.getLogger(__name__)

QUEUE = "notifications"
DELIVER_TASK = "notifications.deliver"
ALERT_TASK = "notifications.send_alert"  # published by paywave.alerts, retried from here


def _publish(task: str, args: list[Any], countdown: float = 0, **log_context: Any) -> bool:
    try:
        celery_app.send_task(task, args=args, queue=QUEUE, countdown=countdown or None)
    except Exception:
        logger.error(
            "could not publish %s; a sweep publishes it again",
            task,
            extra=log_context,
            exc_info=True,
        )
        return False
    return True


def delivery_publish(delivery_id: int, token: Any, countdown: float = 0) -> bool:
    return _publish(DELIVER_TASK, [delivery_id, str(token)], countdown, delivery_id=delivery_id)


def alert_retry_publish(args: list[Any], countdown: float) -> bool:
    """The channels of an operator alert that failed, once more (the alert is in the logs)."""
    return _publish(ALERT_TASK, args, countdown, alert_kind=args[0])
