"""What wallets does about payments' changes, in their transaction (see apps.py).

Money moves with the change or not at all: each handler runs inside the change's
transaction, and one that raises refuses the change.
"""

from gateways.base import DisputeStatus, RefundStatus
from payments.events import DisputeChanged, PaymentChanged, RefundChanged
from payments.models import PaymentStatus

from .disputes import dispute_hold, dispute_loss, dispute_release
from .selectors import wallet_validate_for_payment
from .services import (
    wallet_credit_for_payment,
    wallet_debit_for_refund,
    wallet_reverse_refund_debit,
)


def payment_wallet_check(change: PaymentChanged) -> None:
    """A new payment's `wallet_id` must be the app's own active wallet in its currency (400)."""
    payment = change.payment
    if change.from_status == "" and payment.wallet_id is not None:
        wallet_validate_for_payment(
            client_id=str(payment.client_id), wallet_id=payment.wallet_id, currency=payment.currency
        )


def payment_wallet_credit(change: PaymentChanged) -> None:
    if change.to_status == PaymentStatus.SUCCEEDED and change.payment.wallet_id:
        wallet_credit_for_payment(change.payment)  # once per payment (unique journal)


def refund_wallet_debit(change: RefundChanged) -> None:
    """Debit a new refund, or give a failed one's debit back."""
    refund = change.refund
    if change.from_status == "":
        wallet_debit_for_refund(payment=change.payment, refund_id=refund.id, amount=refund.amount)
    elif change.to_status == RefundStatus.FAILED:
        wallet_reverse_refund_debit(refund_id=refund.id)


def dispute_wallet_movement(change: DisputeChanged) -> None:
    """Hold a dispute's amount when it opens, release it when won, send it back when lost.

    A dispute first seen already won moved nothing; one first seen lost is held, then lost.
    """
    dispute = change.dispute
    if change.to_status == DisputeStatus.WON:
        if not change.opened:
            dispute_release(dispute_id=dispute.id)
        return
    if change.opened:
        dispute_hold(payment=change.payment, dispute_id=dispute.id, amount=dispute.amount)
    if change.to_status == DisputeStatus.LOST:
        dispute_loss(payment=change.payment, dispute_id=dispute.id)
