"""Publishing the notifications app's jobs (notifications/jobs.py) to the broker.

A publish that fails is logged and reported as False, never raised: what it
was for stays in the database (an event not fanned out, a delivery whose
`next_attempt_at` passes) and beat's sweeps publish it again.
"""

import logging
from typing import Any

from paywave.jobs import Job

from .jobs import DELIVER, SEND_ALERT

logger = logging.getLogger(__name__)


def _publish(job: Job, args: list[Any], countdown: float = 0, **log_context: Any) -> bool:
    try:
        job.publish(*args, countdown=countdown)
    except Exception:
        logger.error(
            "could not publish %s; a sweep publishes it again",
            job.name,
            extra=log_context,
            exc_info=True,
        )
        return False
    return True


def delivery_publish(delivery_id: int, token: Any, countdown: float = 0) -> bool:
    return _publish(DELIVER, [delivery_id, str(token)], countdown, delivery_id=delivery_id)


def alert_publish(kind: str, message: str, context: dict[str, Any]) -> None:
    """Publish an operator alert's job; raises what the broker raises.

    Registered with paywave.alerts (NotificationsConfig.ready), which logs a refusal:
    the alert is in the logs.
    """
    SEND_ALERT.publish(kind, message, context)


def alert_retry_publish(args: list[Any], countdown: float) -> bool:
    """The channels of an operator alert that failed, once more (the alert is in the logs)."""
    return _publish(SEND_ALERT, args, countdown, alert_kind=args[0])
