"""Publishing a payment's processing job to the broker (queue `payments`)."""

import logging
from typing import Any

from config.celery_app import app as celery_app

logger = logging.getLogger(__name__)

PROCESS_PAYMENT_TASK = "payments.process_payment"
CANCEL_AT_GATEWAY_TASK = "payments.cancel_at_gateway"


def payment_dispatch(payment_id: Any, token: Any, countdown: float = 0) -> bool:
    """Publish the job (payment id and dispatch token); False if the broker refused it.

    A payment whose job could not be published keeps its `next_attempt_at` in the
    database, where the outbox sweep finds it overdue and publishes it again.
    """
    try:
        celery_app.send_task(
            PROCESS_PAYMENT_TASK,
            args=[str(payment_id), str(token)],
            queue="payments",
            countdown=countdown or None,
        )
    except Exception:
        logger.error(
            "could not publish payment job; the outbox sweep publishes it again",
            extra={"payment_id": str(payment_id)},
            exc_info=True,
        )
        return False
    return True


def gateway_cancel_dispatch(payment_id: Any, tries: int = 0, countdown: float = 0) -> None:
    """Publish the job that withdraws a cancelled payment's charge at its gateway."""
    try:
        celery_app.send_task(
            CANCEL_AT_GATEWAY_TASK,
            args=[str(payment_id), tries],
            queue="payments",
            countdown=countdown or None,
        )
    except Exception:
        logger.error(
            "could not publish the gateway cancel job; the charge expires on its own",
            extra={"payment_id": str(payment_id)},
            exc_info=True,
        )
