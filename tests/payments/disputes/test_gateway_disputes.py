"""Disputes at each gateway, end to end: a payment paid through the simulators with the real
SDKs, a dispute opened and closed through the simulators' control API, the gateway's own
signed callbacks posted to PayWave's /webhooks/<gateway>, and the callback job reading the
disputes back through the adapter. The money, the payment, its events and the ledger."""

from datetime import timedelta
from typing import Any

import pytest
from django.core.cache import cache
from django.utils import timezone

from gateways.models import CallbackStatus, GatewayCallback
from notifications.models import Event
from payments.callbacks import CallbackLookupFailed, callback_process
from payments.dispute_poll import disputes_poll
from payments.models import Dispute, Payment
from payments.models import PaymentStatus as S
from payments.refunds import refund_create
from tests.factories import WalletFactory
from tests.payments.callbacks.helpers import (
    post_callback,
    receive_and_process,
    run_refund_jobs,
)
from tests.payments.disputes.helpers import (
    AMOUNT,
    WalletOf,
    at_once,
    close_dispute,
    held,
    open_dispute,
    owed,
    wallet_balance,
)
from wallets.integrity import ledger_problems
from wallets.services import transfer_create

pytestmark = [pytest.mark.services, pytest.mark.django_db]

GATEWAYS = ("stripe", "mercadopago", "gerencianet", "paypal")


def the_dispute(payment: Payment) -> Dispute:
    return Dispute.objects.get(payment=payment)


def events(payment: Payment) -> list[str]:
    rows = Event.objects.filter(subject_id=payment.pk, type__startswith="payment.dispute")
    return list(rows.order_by("created_at", "id").values_list("type", flat=True))


@pytest.mark.parametrize("gateway", GATEWAYS)
def test_opened_then_won_holds_then_releases(gateway: str, paid: Any, capture: Any) -> None:
    payment = paid(gateway)
    wallet = WalletOf(payment)

    opened = open_dispute(capture, payment, amount=4_000)
    callback = receive_and_process(gateway, opened["callback"])

    assert callback.status == CallbackStatus.PROCESSED, callback.detail
    dispute = the_dispute(payment)
    assert (dispute.gateway, dispute.reference) == (gateway, opened["id"])
    assert dispute.is_open
    assert (dispute.amount, dispute.currency) == (4_000, payment.currency)
    assert (wallet_balance(wallet), held(wallet)) == (AMOUNT - 4_000, 4_000)
    assert events(payment) == ["payment.dispute_opened"]
    # Times in the event as in the API, in UTC, whatever zone the gateway wrote them in.
    sent = Event.objects.get(subject_id=payment.pk, type="payment.dispute_opened").data
    assert sent["opened_at"].endswith("Z")
    assert sent["evidence_due_at"] is None or sent["evidence_due_at"].endswith("Z"), sent

    closed = close_dispute(capture, opened["id"], "won")
    receive_and_process(gateway, closed["callback"])

    dispute.refresh_from_db()
    assert dispute.status == "won"
    assert (wallet_balance(wallet), held(wallet)) == (AMOUNT, 0)
    payment.refresh_from_db()
    assert (payment.status, payment.amount_refunded) == (S.SUCCEEDED, 0)
    assert events(payment) == ["payment.dispute_opened", "payment.dispute_closed"]
    assert ledger_problems() == []


@pytest.mark.parametrize("gateway", GATEWAYS)
def test_lost_in_full_refunds_the_payment_by_chargeback(
    gateway: str, paid: Any, capture: Any
) -> None:
    payment = paid(gateway)
    wallet = WalletOf(payment)
    opened = open_dispute(capture, payment)
    receive_and_process(gateway, opened["callback"])

    closed = close_dispute(capture, opened["id"], "lost")
    receive_and_process(gateway, closed["callback"])

    assert the_dispute(payment).status == "lost"
    payment.refresh_from_db()
    assert (payment.status, payment.amount_refunded) == (S.REFUNDED, AMOUNT)
    assert payment.events.last().reason.startswith("chargeback: dispute")
    assert (wallet_balance(wallet), held(wallet), owed(wallet)) == (0, 0, 0)
    assert Event.objects.filter(subject_id=payment.pk, type="payment.refunded").count() == 1
    assert ledger_problems() == []


@pytest.mark.parametrize("gateway", GATEWAYS)
def test_duplicate_and_out_of_order_callbacks(gateway: str, paid: Any, capture: Any) -> None:
    payment = paid(gateway)
    opened = open_dispute(capture, payment, amount=3_000)
    closed = close_dispute(capture, opened["id"], "lost")

    # The close arrives first, then the opening, then the close again.
    receive_and_process(gateway, closed["callback"])
    receive_and_process(gateway, opened["callback"])
    again = post_callback(gateway, closed["callback"])
    assert again.status_code == 200
    assert again.json()["duplicate"] is True

    assert the_dispute(payment).status == "lost"
    payment.refresh_from_db()
    assert (payment.status, payment.amount_refunded) == (S.PARTIALLY_REFUNDED, 3_000)
    assert events(payment) == ["payment.dispute_opened", "payment.dispute_closed"]
    assert wallet_balance(WalletOf(payment)) == AMOUNT - 3_000
    assert ledger_problems() == []


@pytest.mark.parametrize("gateway", GATEWAYS)
def test_a_dispute_larger_than_the_wallet_is_owed_not_overdrawn(
    gateway: str, paid: Any, capture: Any
) -> None:
    payment = paid(gateway)
    wallet = WalletOf(payment)
    other = WalletFactory(client=payment.client, currency=payment.currency)
    transfer_create(client_id=str(payment.client_id), from_wallet_id=payment.wallet_id,
                    to_wallet_id=other.pk, amount=8_000, currency=payment.currency)  # fmt: skip

    opened = open_dispute(capture, payment)
    receive_and_process(gateway, opened["callback"])

    assert (wallet_balance(wallet), held(wallet), owed(wallet)) == (0, AMOUNT, 8_000)
    closed = close_dispute(capture, opened["id"], "lost")
    receive_and_process(gateway, closed["callback"])
    assert (wallet_balance(wallet), held(wallet), owed(wallet)) == (0, 0, 8_000)
    assert ledger_problems() == []


@pytest.mark.parametrize("gateway", GATEWAYS)
def test_a_dispute_of_a_partially_refunded_payment(gateway: str, paid: Any, capture: Any) -> None:
    payment = paid(gateway)
    refund = refund_create(client_id=str(payment.client_id), payment_id=payment.pk,
                           amount=2_500, actor="test")  # fmt: skip
    run_refund_jobs(refund.pk)
    payment.refresh_from_db()
    assert (payment.status, payment.amount_refunded) == (S.PARTIALLY_REFUNDED, 2_500)

    opened = open_dispute(capture, payment)  # what is left: 7,500
    receive_and_process(gateway, opened["callback"])
    assert the_dispute(payment).amount == 7_500
    closed = close_dispute(capture, opened["id"], "lost")
    receive_and_process(gateway, closed["callback"])

    payment.refresh_from_db()
    assert (payment.status, payment.amount_refunded) == (S.REFUNDED, AMOUNT)
    assert wallet_balance(WalletOf(payment)) == 0
    assert ledger_problems() == []


@pytest.mark.parametrize("gateway", GATEWAYS)
def test_the_poll_finds_a_dispute_whose_callbacks_never_came(
    gateway: str, paid: Any, capture: Any, settings: Any
) -> None:
    settings.PAYWAVE_DISPUTE_RECHECK_SECONDS = 0
    cache.clear()  # no cursor: the poll lists the last days
    payment = paid(gateway)
    opened = open_dispute(capture, payment, amount=1_000)  # its callback is never posted

    first = disputes_poll()

    assert first["applied"] >= 1, first
    assert the_dispute(payment).is_open
    assert held(WalletOf(payment)) == 1_000
    close_dispute(capture, opened["id"], "won")  # nor is this one's
    # Lists nothing more from here (a cursor ahead of every dispute): only the read of open
    # disputes can see the close.
    ahead = (timezone.now() + timedelta(days=1)).isoformat()
    cache.set(f"paywave:disputes:polled:{gateway}", ahead, timeout=None)

    second = disputes_poll()

    assert second["rechecked"] == 1, second
    assert the_dispute(payment).status == "won"
    assert held(WalletOf(payment)) == 0
    assert ledger_problems() == []


def test_a_dispute_read_that_fails_is_retried_and_moves_nothing(paid: Any, capture: Any) -> None:
    payment = paid("stripe")
    opened = open_dispute(capture, payment)
    response = post_callback("stripe", opened["callback"])
    assert response.status_code == 200
    capture.faults("stripe", error_rate=1, error_status=500)

    stored = GatewayCallback.objects.get(gateway="stripe", kind="dispute.updated")
    with pytest.raises(CallbackLookupFailed):
        callback_process(stored.pk)

    assert not Dispute.objects.exists()
    assert wallet_balance(WalletOf(payment)) == AMOUNT
    capture.reset_faults()
    callback_process(stored.pk)
    assert the_dispute(payment).is_open


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("gateway", GATEWAYS)
def test_a_dispute_and_a_refund_of_one_payment_at_once(
    gateway: str, paid: Any, capture: Any
) -> None:
    payment = paid(gateway)
    wallet = WalletOf(payment)
    opened = open_dispute(capture, payment, amount=6_000)
    assert post_callback(gateway, opened["callback"]).status_code == 200
    stored = GatewayCallback.objects.get(gateway=gateway, kind="dispute.updated")

    refund, _ = at_once(
        lambda: refund_create(
            client_id=str(payment.client_id), payment_id=payment.pk, amount=7_000, actor="test"
        ),
        lambda: callback_process(stored.pk),
    )

    assert the_dispute(payment).is_open
    if isinstance(refund, Exception):  # the dispute was first: no refund taken
        assert getattr(refund, "code", "") == "payment_disputed", refund
        assert (wallet_balance(wallet), held(wallet), owed(wallet)) == (4_000, 6_000, 0)
    else:  # the refund was first: the gateway refuses it while the charge is disputed
        run_refund_jobs(refund.pk)
        refund.refresh_from_db()
        assert refund.status == "failed", refund.last_error
        assert (wallet_balance(wallet), held(wallet), owed(wallet)) == (4_000, 6_000, 0)
    assert ledger_problems() == []

    receive_and_process(gateway, close_dispute(capture, opened["id"], "lost")["callback"])

    payment.refresh_from_db()
    assert (payment.status, payment.amount_refunded) == (S.PARTIALLY_REFUNDED, 6_000)
    assert (wallet_balance(wallet), held(wallet), owed(wallet)) == (4_000, 0, 0)
    assert ledger_problems() == []
