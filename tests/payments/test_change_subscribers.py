"""Payments publish their changes; wallets, notifications and payments' own cache and
metrics subscribe to them. Payments itself imports neither wallets nor notifications."""

from collections.abc import Iterator
from typing import Any

import pytest
from django.db import transaction

import notifications.subscribers
import payments.subscribers
import wallets.subscribers
from notifications.models import Event
from payments.events import PaymentChanged, RefundChanged
from payments.models import Payment, PaymentEvent, PaymentStatus
from payments.transitions import payment_transition
from paywave.domain_events import Phase, subscribe, subscribers, unsubscribe
from tests.factories import PaymentFactory, WalletFactory
from wallets.models import Account, Journal

S = PaymentStatus


def test_a_payment_change_is_recorded_for_webhooks_before_the_wallet_moves() -> None:
    # payment.succeeded, then the wallet.credited it causes (INSTALLED_APPS order).
    assert subscribers(PaymentChanged, Phase.IN_TRANSACTION) == [
        notifications.subscribers.payment_event_record,
        wallets.subscribers.payment_wallet_check,
        wallets.subscribers.payment_wallet_credit,
    ]
    assert subscribers(PaymentChanged, Phase.AFTER_COMMIT) == [
        payments.subscribers.payment_cache_write,
        payments.subscribers.payment_change_count,
    ]
    assert subscribers(RefundChanged, Phase.IN_TRANSACTION) == [
        notifications.subscribers.refund_event_record,
        wallets.subscribers.refund_wallet_debit,
    ]
    assert subscribers(RefundChanged, Phase.AFTER_COMMIT) == []


@pytest.fixture
def refusing_subscriber() -> Iterator[None]:
    """A last in-transaction subscriber of PaymentChanged that refuses every change."""

    def refuse(change: PaymentChanged) -> None:
        raise RuntimeError(f"refused {change.to_status}")

    subscribe(PaymentChanged, refuse, phase=Phase.IN_TRANSACTION)
    yield
    unsubscribe(PaymentChanged, refuse)


@pytest.mark.django_db
@pytest.mark.usefixtures("refusing_subscriber")
def test_a_subscriber_that_refuses_rolls_back_the_transition_the_outbox_and_the_credit(
    django_capture_on_commit_callbacks: Any,
) -> None:
    wallet = WalletFactory()
    payment = PaymentFactory(
        client=wallet.client,
        wallet_id=wallet.pk,
        currency=wallet.currency,
        amount=900,
        status=S.AWAITING_PAYMENT,
        gateway="mercadopago",
    )

    def succeed() -> None:
        with transaction.atomic():  # the caller's transaction, as a worker's would be
            payment_transition(
                payment_id=payment.pk,
                from_statuses=[S.AWAITING_PAYMENT],
                to_status=S.SUCCEEDED,
                reason="paid",
                actor="test",
            )

    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(RuntimeError, match="refused succeeded"),
    ):
        succeed()

    row = Payment.objects.get(pk=payment.pk)
    assert (row.status, row.version) == (S.AWAITING_PAYMENT, payment.version)
    assert not PaymentEvent.objects.filter(payment=payment).exists()
    assert not Event.objects.exists()  # neither payment.succeeded nor wallet.credited
    assert not Journal.objects.exists()
    assert Account.objects.get(pk=wallet.pk).balance == 0
    assert callbacks == []  # no cache write, no count, no delivery job
