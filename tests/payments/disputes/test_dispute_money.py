"""A dispute's money: held when it opens, released when won, sent back when lost; the
payment, its events and the ledger follow, once, whatever order the gateway is read in."""

import uuid
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from gateways.base import Ambiguous, DisputeStatus
from notifications.models import Event
from payments.disputes import dispute_apply, gateway_read
from payments.models import Dispute, PaymentEvent
from payments.models import PaymentStatus as S
from payments.refunds import _succeed, refund_create, refund_fail, refundable_amount
from paywave.api.errors import Conflict
from tests.factories import PaymentFactory, WalletFactory
from tests.payments.disputes.helpers import (
    alerts,
    credited_payment,
    held,
    owed,
    reported,
    wallet_balance,
)
from wallets.integrity import _disputes_unlike_their_journals, ledger_problems
from wallets.ledger import system_account
from wallets.models import Account, AccountKind, Journal, JournalKind
from wallets.services import transfer_create

pytestmark = [pytest.mark.django_db]

ACTOR = "test"
OPEN, UNDER_REVIEW = DisputeStatus.NEEDS_RESPONSE, DisputeStatus.UNDER_REVIEW
WON, LOST = DisputeStatus.WON, DisputeStatus.LOST


def apply(payment: Any, status: DisputeStatus, **fields: Any) -> Dispute | None:
    return dispute_apply(payment.pk, "stripe", reported(payment, status, **fields), actor=ACTOR)


def event_types(payment: Any) -> list[str]:
    return list(
        Event.objects.filter(subject_id=payment.pk)
        .order_by("created_at", "id")
        .values_list("type", flat=True)
    )


def clearing_balance() -> int:
    return Account.objects.get(kind=AccountKind.CLEARING, code="stripe", currency="BRL").balance


def test_an_opened_dispute_holds_its_amount_out_of_the_wallet() -> None:
    wallet = WalletFactory()
    payment = credited_payment(wallet, 10_000)

    dispute = apply(payment, OPEN, amount=4_000)

    assert dispute is not None
    assert dispute.status == OPEN
    assert (wallet_balance(wallet), held(wallet), owed(wallet)) == (6_000, 4_000, 0)
    payment.refresh_from_db()
    assert (payment.status, payment.amount_refunded) == (S.SUCCEEDED, 0)
    assert event_types(payment) == ["payment.dispute_opened"]
    opened = Event.objects.get(type="payment.dispute_opened")
    assert opened.data["status"] == "needs_response"
    assert opened.data["amount"] == 4_000
    assert opened.data["outcome"] is None
    note = PaymentEvent.objects.filter(payment=payment).last()
    assert (note.from_status, note.to_status) == (S.SUCCEEDED, S.SUCCEEDED)
    assert "dispute dp_1" in note.reason
    assert "opened -> needs_response" in note.reason
    assert ledger_problems() == []


def test_a_won_dispute_gives_the_wallet_its_money_back() -> None:
    wallet = WalletFactory()
    payment = credited_payment(wallet, 10_000)
    apply(payment, OPEN, amount=4_000)
    apply(payment, UNDER_REVIEW, amount=4_000)

    apply(payment, WON, amount=4_000)

    assert (wallet_balance(wallet), held(wallet), owed(wallet)) == (10_000, 0, 0)
    payment.refresh_from_db()
    assert (payment.status, payment.amount_refunded) == (S.SUCCEEDED, 0)
    assert event_types(payment) == ["payment.dispute_opened", "payment.dispute_closed"]
    closed = Event.objects.get(type="payment.dispute_closed")
    assert (closed.data["status"], closed.data["outcome"]) == ("won", "won")
    assert Dispute.objects.get().closed_at is not None
    assert ledger_problems() == []


def test_a_lost_full_dispute_refunds_the_payment_by_chargeback() -> None:
    wallet = WalletFactory()
    payment = credited_payment(wallet, 10_000)
    apply(payment, OPEN)
    clearing_before = clearing_balance()

    apply(payment, LOST)

    assert (wallet_balance(wallet), held(wallet), owed(wallet)) == (0, 0, 0)
    assert clearing_balance() == clearing_before + 10_000  # the gateway took it back
    payment.refresh_from_db()
    assert (payment.status, payment.amount_refunded) == (S.REFUNDED, 10_000)
    last = PaymentEvent.objects.filter(payment=payment).last()
    assert (last.from_status, last.to_status) == (S.SUCCEEDED, S.REFUNDED)
    assert last.reason.startswith("chargeback: dispute dp_1 lost (fraudulent)")
    assert event_types(payment) == [
        "payment.dispute_opened",
        "payment.dispute_closed",
        "payment.refunded",
    ]
    closed = Event.objects.get(type="payment.dispute_closed")
    assert closed.data["outcome"] == "lost"
    assert Event.objects.get(type="payment.refunded").data["amount_refunded"] == 10_000
    assert ledger_problems() == []


def test_a_lost_partial_dispute_leaves_the_payment_partially_refunded() -> None:
    wallet = WalletFactory()
    payment = credited_payment(wallet, 10_000)
    apply(payment, OPEN, amount=2_500)
    apply(payment, LOST, amount=2_500)

    payment.refresh_from_db()
    assert (payment.status, payment.amount_refunded) == (S.PARTIALLY_REFUNDED, 2_500)
    assert (wallet_balance(wallet), held(wallet)) == (7_500, 0)
    assert refundable_amount(payment) == 7_500
    assert ledger_problems() == []


def test_duplicate_and_out_of_order_reads_change_nothing_more() -> None:
    wallet = WalletFactory()
    payment = credited_payment(wallet, 10_000)
    apply(payment, OPEN)
    apply(payment, OPEN)  # the same read twice
    apply(payment, LOST)
    apply(payment, LOST)
    apply(payment, OPEN)  # a stale read after the close
    apply(payment, WON)  # and a contradicting one: a closed dispute never moves again

    dispute = Dispute.objects.get()
    assert dispute.status == LOST
    kinds = sorted(Journal.objects.filter(dispute_id=dispute.pk).values_list("kind", flat=True))
    assert kinds == [JournalKind.DISPUTE_HOLD, JournalKind.DISPUTE_LOSS]
    assert event_types(payment) == [
        "payment.dispute_opened",
        "payment.dispute_closed",
        "payment.refunded",
    ]
    payment.refresh_from_db()
    assert payment.amount_refunded == 10_000
    assert ledger_problems() == []


def test_a_dispute_first_read_already_lost_is_held_then_sent_back() -> None:
    wallet = WalletFactory()
    payment = credited_payment(wallet, 10_000)

    apply(payment, LOST, amount=3_000)  # the opening was never heard of

    kinds = sorted(
        Journal.objects.filter(kind__startswith="dispute").values_list("kind", flat=True)
    )
    assert kinds == [JournalKind.DISPUTE_HOLD, JournalKind.DISPUTE_LOSS]
    assert (wallet_balance(wallet), held(wallet)) == (7_000, 0)
    assert event_types(payment) == [
        "payment.dispute_opened",
        "payment.dispute_closed",
        "payment.partially_refunded",
    ]
    assert ledger_problems() == []


def test_a_dispute_first_read_already_won_moves_no_money() -> None:
    wallet = WalletFactory()
    payment = credited_payment(wallet, 10_000)

    apply(payment, WON)

    assert not Journal.objects.filter(kind__startswith="dispute").exists()
    assert wallet_balance(wallet) == 10_000
    assert event_types(payment) == ["payment.dispute_opened", "payment.dispute_closed"]
    assert ledger_problems() == []


def test_a_dispute_larger_than_the_wallet_goes_to_its_receivable(
    caplog: pytest.LogCaptureFixture,
) -> None:
    wallet = WalletFactory()
    payment = credited_payment(wallet, 10_000)
    other = WalletFactory(client=wallet.client)
    transfer_create(client_id=str(wallet.client_id), from_wallet_id=wallet.pk,
                    to_wallet_id=other.pk, amount=7_000, currency="BRL")  # fmt: skip

    apply(payment, OPEN)

    # The spendable balance never goes below zero: the rest is owed.
    assert (wallet_balance(wallet), held(wallet), owed(wallet)) == (0, 10_000, 7_000)
    [alert] = alerts(caplog, "dispute_receivable")
    assert alert.wallet_id == str(wallet.pk)
    assert alert.amount_owed == 7_000
    assert str(wallet.pk) in alert.getMessage()
    assert ledger_problems() == []

    apply(payment, LOST)

    assert (wallet_balance(wallet), held(wallet), owed(wallet)) == (0, 0, 7_000)
    assert len(alerts(caplog, "dispute_receivable")) == 2  # named again when it is lost
    assert ledger_problems() == []


def test_a_won_dispute_first_cancels_what_the_wallet_owed() -> None:
    wallet = WalletFactory()
    payment = credited_payment(wallet, 10_000)
    other = WalletFactory(client=wallet.client)
    transfer_create(client_id=str(wallet.client_id), from_wallet_id=wallet.pk,
                    to_wallet_id=other.pk, amount=7_000, currency="BRL")  # fmt: skip
    apply(payment, OPEN)

    apply(payment, WON)

    assert (wallet_balance(wallet), held(wallet), owed(wallet)) == (3_000, 0, 0)
    assert ledger_problems() == []


def test_a_dispute_on_a_partially_refunded_payment() -> None:
    wallet = WalletFactory()
    payment = credited_payment(wallet, 10_000)
    refund = refund_create(
        client_id=str(payment.client_id), payment_id=payment.pk, amount=4_000, actor=ACTOR
    )
    _succeed(refund, "re_1")
    payment.refresh_from_db()
    assert (payment.status, wallet_balance(wallet)) == (S.PARTIALLY_REFUNDED, 6_000)

    apply(payment, OPEN, amount=6_000)
    assert (wallet_balance(wallet), held(wallet)) == (0, 6_000)
    apply(payment, LOST, amount=6_000)

    payment.refresh_from_db()
    assert (payment.status, payment.amount_refunded) == (S.REFUNDED, 10_000)
    assert refundable_amount(payment) == 0
    assert ledger_problems() == []


def test_a_disputed_payment_takes_no_refund_until_the_dispute_closes() -> None:
    wallet = WalletFactory()
    payment = credited_payment(wallet, 10_000)
    apply(payment, OPEN, amount=4_000)

    with pytest.raises(Conflict) as refused:
        refund_create(client_id=str(payment.client_id), payment_id=payment.pk, amount=100,
                      actor=ACTOR)  # fmt: skip
    assert refused.value.code == "payment_disputed"

    apply(payment, WON, amount=4_000)
    refund = refund_create(
        client_id=str(payment.client_id), payment_id=payment.pk, amount=None, actor=ACTOR
    )
    assert refund.amount == 10_000


def test_a_dispute_of_a_payment_that_credited_no_wallet_moves_no_money() -> None:
    plain = PaymentFactory(status=S.SUCCEEDED, gateway="stripe", gateway_reference="pi_plain")

    apply(plain, OPEN)
    apply(plain, LOST)

    plain.refresh_from_db()
    assert (plain.status, plain.amount_refunded) == (S.REFUNDED, plain.amount)
    assert not Journal.objects.filter(payment=plain).exists()
    assert event_types(plain) == [
        "payment.dispute_opened",
        "payment.dispute_closed",
        "payment.refunded",
    ]
    assert ledger_problems() == []


def test_a_dispute_in_another_currency_or_above_the_payment_is_not_recorded(
    caplog: pytest.LogCaptureFixture,
) -> None:
    wallet = WalletFactory()
    payment = credited_payment(wallet, 10_000)

    assert apply(payment, OPEN, amount=10_001) is None
    result = reported(payment, OPEN, reference="dp_usd")
    foreign = result.__class__(**{**result.__dict__, "currency": "USD"})
    assert dispute_apply(payment.pk, "stripe", foreign, actor=ACTOR) is None

    assert not Dispute.objects.exists()
    assert wallet_balance(wallet) == 10_000
    assert len(alerts(caplog, "dispute_unmatched")) == 2


def test_the_ledger_check_names_a_dispute_whose_money_did_not_move() -> None:
    wallet = WalletFactory()
    payment = credited_payment(wallet, 10_000)
    Dispute.objects.create(
        payment=payment, gateway="stripe", reference="dp_lost_hold", kind="chargeback",
        status=OPEN, amount=1_000, currency="BRL",
    )  # fmt: skip

    problems = ledger_problems()

    assert problems == [
        f"dispute dp_lost_hold ({Dispute.objects.get().pk}, needs_response): open, but its "
        "amount is not held"
    ]


def test_the_ledger_check_names_a_positive_receivable() -> None:
    account = system_account(kind=AccountKind.RECEIVABLE, code=str(uuid.uuid4()), currency="BRL")
    Account.objects.filter(pk=account.pk).update(balance=5)

    assert any("a receivable is never positive" in line for line in ledger_problems())


def test_a_dispute_answer_of_another_shape_is_a_failed_read_not_a_crash() -> None:
    def malformed() -> None:
        {}["status"]  # what an adapter meets in an answer without the field

    with pytest.raises(Ambiguous) as failed:
        gateway_read("stripe", malformed)
    assert "cannot be read (KeyError)" in failed.value.message


def test_money_that_comes_back_to_a_wallet_first_pays_what_it_owes() -> None:
    wallet = WalletFactory()
    payment = credited_payment(wallet, 10_000)
    refund = refund_create(
        client_id=str(payment.client_id), payment_id=payment.pk, amount=7_000, actor=ACTOR
    )
    apply(payment, OPEN, amount=6_000)  # the gateway took the dispute while the refund ran
    assert (wallet_balance(wallet), held(wallet), owed(wallet)) == (0, 6_000, 3_000)

    refund_fail(refund, "refused by the gateway")  # the 7,000 come back to the wallet

    assert (wallet_balance(wallet), held(wallet), owed(wallet)) == (4_000, 6_000, 0)
    settlement = Journal.objects.get(kind=JournalKind.RECEIVABLE_SETTLEMENT)
    assert settlement.payment_id == payment.pk
    assert ledger_problems() == []


def test_a_known_dispute_reported_on_another_payment_moves_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    wallet = WalletFactory()
    first, second = credited_payment(wallet, 10_000), credited_payment(wallet, 5_000)
    apply(first, OPEN, amount=1_000)

    assert dispute_apply(second.pk, "stripe", reported(second, LOST, amount=1_000),
                         actor=ACTOR) is None  # fmt: skip

    assert Dispute.objects.get().status == OPEN
    [alert] = alerts(caplog, "dispute_unmatched")
    assert f"payment {second.pk}: it belongs to payment {first.pk}" in alert.getMessage()
    assert ledger_problems() == []


def test_the_ledger_check_of_disputes_does_not_grow_with_the_payments_credited() -> None:
    wallet = WalletFactory()
    apply(credited_payment(wallet, 10_000), OPEN, amount=1_000)

    def sql_size() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert _disputes_unlike_their_journals() == []
        return sum(len(query["sql"]) for query in queries.captured_queries)

    before = sql_size()
    for amount in range(2_000, 2_040):
        credited_payment(wallet, amount)  # 40 more credits, no dispute
    # A check that loaded every credited payment would send their ids back in its SQL.
    assert sql_size() == before
