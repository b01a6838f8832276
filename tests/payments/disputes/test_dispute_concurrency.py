"""A dispute and a refund of one payment at the same moment, on the real PostgreSQL: one
waits for the other on the payment's lock, and no money is made or lost."""

import pytest

from gateways.base import DisputeStatus
from payments.disputes import dispute_apply
from payments.models import Dispute, Payment, Refund
from payments.refunds import _succeed, refund_create, refund_fail
from paywave.api.errors import Conflict
from tests.factories import WalletFactory
from tests.payments.disputes.helpers import (
    at_once,
    credited_payment,
    held,
    owed,
    reported,
    wallet_balance,
)
from wallets.integrity import ledger_problems

ROUNDS = 6


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("outcome", [DisputeStatus.LOST, DisputeStatus.WON])
@pytest.mark.parametrize("refund_ends", ["succeeded", "failed"])
def test_a_dispute_and_a_refund_at_once_neither_make_nor_lose_money(
    outcome: DisputeStatus, refund_ends: str
) -> None:
    for round_number in range(ROUNDS):
        wallet = WalletFactory()
        payment = credited_payment(wallet, 10_000)
        result = reported(payment, DisputeStatus.NEEDS_RESPONSE, amount=6_000,
                          reference=f"dp_{round_number}")  # fmt: skip

        refund_or_refusal, dispute = at_once(
            lambda payment=payment: refund_create(
                client_id=str(payment.client_id),
                payment_id=payment.pk,
                amount=7_000,
                actor="test",
            ),
            lambda payment=payment, result=result: dispute_apply(
                payment.pk, "stripe", result, actor="test"
            ),
        )

        assert isinstance(dispute, Dispute), dispute
        if isinstance(refund_or_refusal, Conflict):  # the dispute came first
            assert refund_or_refusal.code == "payment_disputed"
            assert (wallet_balance(wallet), held(wallet), owed(wallet)) == (4_000, 6_000, 0)
        else:  # the refund came first: the wallet had 3,000 left for a 6,000 dispute
            assert isinstance(refund_or_refusal, Refund), refund_or_refusal
            assert (wallet_balance(wallet), held(wallet), owed(wallet)) == (0, 6_000, 3_000)
            refund = refund_or_refusal
            if refund_ends == "succeeded":
                _succeed(refund, f"re_{round_number}")
            else:
                refund_fail(refund, "refused by the gateway")
        assert ledger_problems() == []

        dispute_apply(payment.pk, "stripe", reported(payment, outcome, amount=6_000,
                      reference=f"dp_{round_number}"), actor="test")  # fmt: skip

        assert ledger_problems() == []
        payment = Payment.objects.get(pk=payment.pk)
        refunded = sum(
            Refund.objects.filter(payment=payment, status="succeeded").values_list(
                "amount", flat=True
            )
        )
        charged_back = 6_000 if outcome == DisputeStatus.LOST else 0
        # What the payer got back is what the payment says, and at most what was paid.
        assert payment.amount_refunded == min(payment.amount, refunded + charged_back)
        assert held(wallet) == 0
