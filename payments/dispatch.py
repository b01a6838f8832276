"""Publishing a payment's processing job to the broker (queue `payments`)."""

import logging
from typing import Any

from config.celery_app import app as celery_app

logger = logging.getLogger(__name__)

PROCESS_PAYMENT_TASK = "payments.process_payment"


def payment_dispatch(payment_id: Any) -> bool:
    """Publish the job carrying only the payment id; False if the broker refused it.

    A payment whose job could not be published stays `pending` in the database,
    where the outbox sweep finds it and publishes it again.
    """
    try:
        celery_app.send_task(PROCESS_PAYMENT_TASK, args=[str(payment_id)], queue="payments")
    except Exception:
        logger.error(
            "could not publish payment job; it stays pending for the outbox sweep",
            extra={"payment_id": str(payment_id)},
            exc_info=True,
        )
        return False
    return True
