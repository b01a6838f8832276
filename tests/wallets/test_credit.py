"""A payment with a wallet_id that succeeds credits the wallet, exactly once."""

import logging
import threading
import uuid
from typing import Any

import pytest
from django.db import connection

from notifications.models import Event
from payments.models import Payment, PaymentStatus
from payments.transitions import TransitionConflict, payment_transition
from tests.factories import ApiClientFactory, PaymentFactory, WalletFactory
from tests.wallets.helpers import balance, entries_of
from wallets import services
from wallets.integrity import ledger_problems
from wallets.models import Account, AccountKind, Journal, JournalKind, WalletStatus

S = PaymentStatus


def _succeed(payment: Payment, *, from_status: str = S.AWAITING_PAYMENT) -> Payment:
    return payment_transition(
        payment_id=payment.pk,
        from_statuses=[from_status],
        to_status=S.SUCCEEDED,
        reason="paid",
        actor="test",
    )


def _awaiting_payment(wallet: Any, **fields: Any) -> Payment:
    return PaymentFactory(
        client=wallet.client,
        wallet_id=wallet.pk,
        currency=wallet.currency,
        status=S.AWAITING_PAYMENT,
        gateway="mercadopago",
        **fields,
    )


@pytest.mark.django_db
def test_success_credits_the_wallet_once_however_often_it_is_observed() -> None:
    wallet = WalletFactory()
    payment = _awaiting_payment(wallet, amount=1050)

    succeeded = _succeed(payment)
    # The same success seen again: a second callback (the lifecycle refuses it) ...
    with pytest.raises(TransitionConflict):
        _succeed(payment)
    # ... and the credit itself run again, as a retried worker would.
    again = services.wallet_credit_for_payment(succeeded)
    services.wallet_credit_for_payment(Payment.objects.get(pk=payment.pk))

    assert balance(wallet) == 1050
    assert entries_of(wallet) == [(1050, 1050)]
    credits = Journal.objects.filter(kind=JournalKind.PAYMENT_CREDIT)
    assert list(credits) == [again]
    assert again.payment_id == payment.pk
    clearing = Account.objects.get(kind=AccountKind.CLEARING, code="mercadopago", currency="BRL")
    assert clearing.balance == -1050
    assert clearing.allow_negative
    assert ledger_problems() == []


@pytest.mark.django_db
def test_the_credit_is_a_wallet_credited_event_in_the_same_transaction() -> None:
    wallet = WalletFactory()
    payment = _awaiting_payment(wallet, amount=700)

    _succeed(payment)

    events = list(Event.objects.order_by("id").values_list("type", flat=True))
    assert events == ["payment.succeeded", "wallet.credited"]
    credited = Event.objects.get(type="wallet.credited")
    assert credited.subject_id == wallet.pk
    assert credited.client_id == wallet.client_id
    assert credited.data["wallet"]["balance"] == 700
    assert credited.data["entry"]["amount"] == 700
    assert credited.data["entry"]["kind"] == "payment_credit"
    assert credited.data["entry"]["payment_id"] == str(payment.pk)


@pytest.mark.django_db
def test_the_unique_journal_holds_when_the_check_misses_a_concurrent_credit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    wallet = WalletFactory()
    payment = _awaiting_payment(wallet, amount=300)
    _succeed(payment)
    real = services._payment_credit_of
    calls: list[int] = []

    def blind_first(payment: Payment) -> Any:
        calls.append(1)
        return None if len(calls) == 1 else real(payment)

    monkeypatch.setattr(services, "_payment_credit_of", blind_first)

    journal = services.wallet_credit_for_payment(payment)

    assert journal == Journal.objects.get(kind=JournalKind.PAYMENT_CREDIT)
    assert balance(wallet) == 300
    assert len(calls) == 2


@pytest.mark.django_db
def test_payments_without_a_wallet_move_no_money() -> None:
    payment = PaymentFactory(status=S.AWAITING_PAYMENT, gateway="mercadopago")

    _succeed(payment)

    assert not Journal.objects.exists()
    assert services.wallet_credit_for_payment(payment) is None


@pytest.mark.django_db
def test_other_statuses_credit_nothing() -> None:
    wallet = WalletFactory()
    payment = _awaiting_payment(wallet)

    payment_transition(
        payment_id=payment.pk,
        from_statuses=[S.AWAITING_PAYMENT],
        to_status=S.EXPIRED,
        reason="expired",
        actor="test",
    )

    assert balance(wallet) == 0
    assert not Journal.objects.exists()


@pytest.mark.django_db
def test_a_frozen_wallet_still_receives_what_its_payer_paid() -> None:
    wallet = WalletFactory(status=WalletStatus.FROZEN)
    payment = _awaiting_payment(wallet, amount=500)

    _succeed(payment)

    assert balance(wallet) == 500


@pytest.mark.django_db
def test_a_wallet_that_cannot_take_the_credit_is_an_alert_not_a_stuck_payment(
    caplog: pytest.LogCaptureFixture,
) -> None:
    theirs = WalletFactory()
    payment = PaymentFactory(  # created before wallet_id was validated: another app's wallet
        client=ApiClientFactory(),
        wallet_id=theirs.pk,
        status=S.AWAITING_PAYMENT,
        gateway="mercadopago",
    )

    with caplog.at_level(logging.ERROR, logger="paywave.alerts"):
        succeeded = _succeed(payment)

    assert succeeded.status == S.SUCCEEDED
    assert balance(theirs) == 0
    assert not Journal.objects.exists()
    alerts = [r for r in caplog.records if getattr(r, "alert", None) == "ledger_inconsistent"]
    assert len(alerts) == 1
    assert (alerts[0].getMessage(), alerts[0].payment_id, alerts[0].wallet_id) == (
        "A succeeded payment's wallet cannot be credited.",
        str(payment.pk),
        str(theirs.pk),
    )


@pytest.mark.django_db
def test_a_vanished_wallet_id_is_an_alert_too(caplog: pytest.LogCaptureFixture) -> None:
    payment = PaymentFactory(
        wallet_id=uuid.uuid4(), status=S.AWAITING_PAYMENT, gateway="mercadopago"
    )

    with caplog.at_level(logging.ERROR, logger="paywave.alerts"):
        assert _succeed(payment).status == S.SUCCEEDED

    assert any(getattr(r, "alert", None) == "ledger_inconsistent" for r in caplog.records)
    assert not Journal.objects.exists()


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_concurrent_credits_of_one_payment_credit_once() -> None:
    wallet = WalletFactory()
    payment = PaymentFactory(
        client=wallet.client,
        wallet_id=wallet.pk,
        status=S.SUCCEEDED,
        gateway="stripe",
        amount=999,
    )
    workers = 8
    barrier = threading.Barrier(workers)
    journals: list[Any] = []
    errors: list[BaseException] = []

    def credit() -> None:
        try:
            barrier.wait()
            journals.append(services.wallet_credit_for_payment(payment))
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=credit) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert connection.vendor == "postgresql"
    assert errors == []
    assert len({journal.pk for journal in journals}) == 1
    assert balance(wallet) == 999
    assert ledger_problems() == []
