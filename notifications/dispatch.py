"""Publishing the notifications app's jobs (notifications/jobs.py) to the broker.

A publish that fails is logged and reported as False, never raised: what it
was for stays in the database (an event not fanned out, a delivery whose
`next_attempt_at` passes) and beat's sweeps publish it again.
"""

from typing import Any

from django.conf import settings
from django.db import connection

from .jobs import DELIVER, SEND_ALERT


def poller_enabled() -> bool:
    """New deliveries are left to the webhook workers' pollers (notifications/poller.py;
    PAYWAVE_WEBHOOK_POLLER, PostgreSQL only), not published as jobs."""
    return bool(settings.PAYWAVE_WEBHOOK_POLLER) and connection.vendor == "postgresql"


def delivery_publish(delivery_id: int, token: Any, countdown: float = 0) -> bool:
    return DELIVER.publish_or_log(
        delivery_id, str(token), countdown=countdown,
        then="the deliveries sweep publishes it again", delivery_id=delivery_id,
    )  # fmt: skip


def alert_publish(kind: str, message: str, context: dict[str, Any]) -> None:
    """Publish an operator alert's job; raises what the broker raises.

    Registered with paywave.observability.alerts (NotificationsConfig.ready), which logs a refusal:
    the alert is in the logs.
    """
    SEND_ALERT.publish(kind, message, context)


def alert_retry_publish(args: list[Any], countdown: float) -> bool:
    """The channels of an operator alert that failed, once more (the alert is in the logs)."""
    return SEND_ALERT.publish_or_log(
        *args, countdown=countdown, then="the alert is in the logs", alert_kind=args[0]
    )
