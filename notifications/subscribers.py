"""The webhook outbox of payments' changes: an Event, fanned out, in their transaction."""

from gateways.base import RefundStatus
from payments.events import DisputeChanged, PaymentChanged, RefundChanged

from .services import event_record


def payment_event_record(change: PaymentChanged) -> None:
    if change.event_type is None:  # a creation: the 202 answered it
        return
    event_record(
        type=change.event_type,
        client_id=change.payment.client_id,
        subject_id=change.payment.id,
        data=change.document,
    )


def refund_event_record(change: RefundChanged) -> None:
    if change.to_status in (RefundStatus.SUCCEEDED, RefundStatus.FAILED):
        event_record(
            type=f"refund.{change.to_status}",
            client_id=change.payment.client_id,
            subject_id=change.payment.id,
            data=change.document,
        )


def dispute_event_record(change: DisputeChanged) -> None:
    """`payment.dispute_opened` when first seen, `payment.dispute_closed` when won or lost
    (both, in that order, for a dispute first seen closed)."""
    for event_type, happened in (
        ("payment.dispute_opened", change.opened),
        ("payment.dispute_closed", change.closed),
    ):
        if happened:
            event_record(
                type=event_type,
                client_id=change.payment.client_id,
                subject_id=change.payment.id,
                data=change.document,
            )
