"""Publishing the payments app's jobs (payments/jobs.py) to the broker.

A publish that fails is logged and reported as False, never raised: what it was
for stays in the database (a `next_attempt_at` that passes, a callback still
`received`) and beat's outbox sweep publishes it again.
"""

from datetime import datetime
from typing import Any

from .jobs import (
    CANCEL_AT_GATEWAY,
    PAYER_RETURNED,
    PROCESS_CALLBACK,
    PROCESS_PAYMENT,
    PROCESS_REFUND,
    RECONCILE_PART,
)


def payment_dispatch(payment_id: Any, token: Any, countdown: float = 0) -> bool:
    """Publish the job (payment id and dispatch token); False if the broker refused it.

    A payment whose job could not be published keeps its `next_attempt_at` in the
    database, where the outbox sweep finds it overdue and publishes it again.
    """
    return PROCESS_PAYMENT.publish_or_log(
        str(payment_id), str(token), countdown=countdown,
        then="the outbox sweep publishes it again", payment_id=str(payment_id),
    )  # fmt: skip


def refund_dispatch(refund_id: Any, token: Any, countdown: float = 0) -> bool:
    """Publish the refund's job (with its token); False if the broker refused it."""
    return PROCESS_REFUND.publish_or_log(
        str(refund_id), str(token), countdown=countdown,
        then="the outbox sweep publishes it again", refund_id=str(refund_id),
    )  # fmt: skip


def callback_dispatch(callback_id: int, countdown: float = 0) -> None:
    """Publish a stored gateway callback's job; raises what the broker raises.

    Registered with gateways.callbacks (PaymentsConfig.ready), which logs a refusal
    and leaves the callback to the callback sweep.
    """
    PROCESS_CALLBACK.publish(callback_id, countdown=countdown)


def gateway_cancel_dispatch(payment_id: Any, tries: int = 0, countdown: float = 0) -> None:
    """Publish the job that withdraws a cancelled payment's charge at its gateway."""
    CANCEL_AT_GATEWAY.publish_or_log(
        str(payment_id), tries, countdown=countdown,
        then="the charge expires on its own", payment_id=str(payment_id),
    )  # fmt: skip


def payer_returned_dispatch(
    payment_id: Any, outcome: str, tries: int = 0, countdown: float = 0
) -> bool:
    """Publish the job for a payer back from PayPal's page; False if the broker refused it
    (reconciliation reads the order within PAYWAVE_APPROVAL_POLL_SECONDS all the same)."""
    return PAYER_RETURNED.publish_or_log(
        str(payment_id), outcome, tries, countdown=countdown,
        then="reconciliation reads the order", payment_id=str(payment_id),
    )  # fmt: skip


def reconcile_part_dispatch(
    kind: str, index: int, parts: int, at: datetime, *, expires: float
) -> bool:
    """Publish one part of a reconciliation run (its work due at `at`); False if the
    broker refused it."""
    return RECONCILE_PART.publish_or_log(
        kind, index, parts, at.isoformat(), expires=expires,
        then="the next run publishes it again", reconciliation_kind=kind,
    )  # fmt: skip
