"""wallet_debit_for_refund: a refund takes its amount back out of the credited wallet first."""

import uuid
from typing import Any

import pytest

from payments.models import Payment, PaymentStatus
from paywave.api.errors import Conflict
from tests.factories import PaymentFactory, WalletFactory
from tests.wallets.helpers import balance, entries_of
from wallets import services
from wallets.integrity import ledger_problems
from wallets.models import Account, AccountKind, Journal, JournalKind, WalletStatus


def _credited(wallet: Any, amount: int) -> Payment:
    payment = PaymentFactory(
        client=wallet.client,
        wallet_id=wallet.pk,
        currency=wallet.currency,
        amount=amount,
        status=PaymentStatus.SUCCEEDED,
        gateway="stripe",
    )
    services.wallet_credit_for_payment(payment)
    return payment


def _refunds_account() -> Account:
    return Account.objects.get(kind=AccountKind.REFUNDS, currency="BRL")


@pytest.mark.django_db
def test_a_refund_debits_the_wallet_into_the_refunds_account() -> None:
    wallet = WalletFactory()
    payment = _credited(wallet, 1000)
    refund_id = uuid.uuid4()

    journal = services.wallet_debit_for_refund(payment=payment, refund_id=refund_id, amount=400)

    assert journal.kind == JournalKind.REFUND_DEBIT
    assert (journal.payment_id, journal.refund_id) == (payment.pk, refund_id)
    assert entries_of(wallet) == [(1000, 1000), (-400, 600)]
    assert _refunds_account().balance == 400
    assert ledger_problems() == []


@pytest.mark.django_db
def test_the_debit_happens_once_per_refund() -> None:
    wallet = WalletFactory()
    payment = _credited(wallet, 1000)
    refund_id = uuid.uuid4()

    first = services.wallet_debit_for_refund(payment=payment, refund_id=refund_id, amount=400)
    second = services.wallet_debit_for_refund(payment=payment, refund_id=refund_id, amount=400)
    services.wallet_debit_for_refund(payment=payment, refund_id=uuid.uuid4(), amount=100)

    assert first == second
    assert balance(wallet) == 500
    assert Journal.objects.filter(kind=JournalKind.REFUND_DEBIT).count() == 2


@pytest.mark.django_db
def test_a_wallet_without_the_money_refuses_the_refund_and_nothing_moves() -> None:
    wallet = WalletFactory()
    payment = _credited(wallet, 1000)
    other = WalletFactory(client=wallet.client)
    services.transfer_create(
        client_id=str(wallet.client_id),
        from_wallet_id=wallet.pk,
        to_wallet_id=other.pk,
        amount=700,
        currency="BRL",
    )
    journals = Journal.objects.count()

    with pytest.raises(Conflict) as refused:
        services.wallet_debit_for_refund(payment=payment, refund_id=uuid.uuid4(), amount=400)

    assert refused.value.code == "insufficient_funds"
    assert refused.value.status_code == 409
    assert refused.value.message == "The wallet no longer holds the amount to refund."
    assert refused.value.fields == {"amount": "The wallet's balance is 300."}
    assert balance(wallet) == 300
    assert Journal.objects.count() == journals
    assert _refunds_account().balance == 0
    assert not _refunds_account().entries.exists()
    # What is left can still be refunded.
    services.wallet_debit_for_refund(payment=payment, refund_id=uuid.uuid4(), amount=300)
    assert balance(wallet) == 0


@pytest.mark.django_db
def test_a_payment_that_credited_no_wallet_debits_nothing() -> None:
    payment = PaymentFactory(status=PaymentStatus.SUCCEEDED, gateway="stripe")

    assert (
        services.wallet_debit_for_refund(payment=payment, refund_id=uuid.uuid4(), amount=100)
        is None
    )
    assert not Journal.objects.exists()


@pytest.mark.django_db
def test_a_frozen_wallet_is_debited_all_the_same() -> None:
    wallet = WalletFactory()
    payment = _credited(wallet, 1000)
    services.wallet_set_status(wallet_id=wallet.pk, status=WalletStatus.FROZEN, actor="test")

    services.wallet_debit_for_refund(payment=payment, refund_id=uuid.uuid4(), amount=1000)

    assert balance(wallet) == 0


@pytest.mark.django_db
def test_a_failed_refund_gives_the_debit_back_once() -> None:
    wallet = WalletFactory()
    payment = _credited(wallet, 1000)
    refund_id = uuid.uuid4()
    services.wallet_debit_for_refund(payment=payment, refund_id=refund_id, amount=400)

    reversal = services.wallet_reverse_refund_debit(refund_id=refund_id)
    again = services.wallet_reverse_refund_debit(refund_id=refund_id)

    assert reversal == again
    assert reversal.kind == JournalKind.REFUND_DEBIT_REVERSAL
    assert entries_of(wallet) == [(1000, 1000), (-400, 600), (400, 1000)]
    assert _refunds_account().balance == 0
    assert services.wallet_reverse_refund_debit(refund_id=uuid.uuid4()) is None
    assert ledger_problems() == []


@pytest.mark.django_db
def test_a_refund_id_cannot_debit_two_payments() -> None:
    wallet = WalletFactory()
    first, second = _credited(wallet, 500), _credited(wallet, 500)
    refund_id = uuid.uuid4()
    services.wallet_debit_for_refund(payment=first, refund_id=refund_id, amount=100)

    with pytest.raises(Conflict) as refused:
        services.wallet_debit_for_refund(payment=second, refund_id=refund_id, amount=100)

    assert (refused.value.code, refused.value.message) == (
        "refund_id_reused",
        "This refund id debited another payment.",
    )
    assert balance(wallet) == 900


@pytest.mark.parametrize("amount", [0, -5])
@pytest.mark.django_db
def test_a_debit_is_a_positive_amount(amount: int) -> None:
    wallet = WalletFactory()
    payment = _credited(wallet, 500)

    with pytest.raises(ValueError, match=r"^a refund debit is a positive amount$"):
        services.wallet_debit_for_refund(payment=payment, refund_id=uuid.uuid4(), amount=amount)


@pytest.mark.django_db
def test_the_smallest_refund_is_debited() -> None:
    wallet = WalletFactory()
    payment = _credited(wallet, 500)

    services.wallet_debit_for_refund(payment=payment, refund_id=uuid.uuid4(), amount=1)

    assert (balance(wallet), _refunds_account().balance) == (499, 1)


@pytest.mark.django_db
def test_each_failed_refund_gives_its_own_debit_back() -> None:
    wallet = WalletFactory()
    payment = _credited(wallet, 1000)
    first, second = uuid.uuid4(), uuid.uuid4()
    services.wallet_debit_for_refund(payment=payment, refund_id=first, amount=400)
    services.wallet_debit_for_refund(payment=payment, refund_id=second, amount=100)

    reversals = [services.wallet_reverse_refund_debit(refund_id=r) for r in (first, second)]

    assert [(r.kind, r.refund_id) for r in reversals] == [
        (JournalKind.REFUND_DEBIT_REVERSAL, first),
        (JournalKind.REFUND_DEBIT_REVERSAL, second),
    ]
    assert entries_of(wallet)[-2:] == [(400, 900), (100, 1000)]
    assert _refunds_account().balance == 0
    assert ledger_problems() == []


@pytest.mark.django_db
def test_a_refund_whose_debit_was_given_back_is_not_debited_again() -> None:
    wallet = WalletFactory()
    payment = _credited(wallet, 1000)
    refund_id = uuid.uuid4()
    debit = services.wallet_debit_for_refund(payment=payment, refund_id=refund_id, amount=400)
    services.wallet_reverse_refund_debit(refund_id=refund_id)

    again = services.wallet_debit_for_refund(payment=payment, refund_id=refund_id, amount=400)

    assert again == debit
    assert balance(wallet) == 1000
