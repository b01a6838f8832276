"""A payment paid at each gateway through the simulators, crediting a wallet."""

from collections.abc import Callable
from typing import Any

import pytest

from gateways.models import Gateway
from payments.models import Payment
from payments.models import PaymentStatus as S
from tests.factories import WalletFactory
from tests.gateway_fixtures import drive
from tests.payments.callbacks.helpers import pay_pix, receive_and_process
from tests.payments.disputes.helpers import AMOUNT, PIX_GATEWAYS, WalletOf, wallet_balance


@pytest.fixture
def paid(
    capture: Any, card_payment: Any, pix_payment: Any, paypal_payment: Any
) -> Callable[..., Payment]:
    """A payment of AMOUNT that succeeded at `gateway`, crediting a new wallet of its app."""

    def make(gateway: str) -> Payment:
        currency = "USD" if gateway == "paypal" else "BRL"
        wallet = WalletFactory(currency=currency)
        fields = {"client": wallet.client, "wallet_id": wallet.pk, "amount": AMOUNT}
        if gateway == "stripe":
            payment = drive(card_payment(**fields)).payment
        elif gateway == "paypal":
            payment = drive(paypal_payment(**fields)).payment
            approved = capture.http.post(f"/paypal/approve/{payment.gateway_reference}")
            receive_and_process("paypal", approved.json()["callback"])
        else:
            others = Gateway.objects.filter(code__in=PIX_GATEWAYS).exclude(code=gateway)
            others.update(enabled=False)
            payment = drive(pix_payment(**fields)).payment
            receive_and_process(gateway, pay_pix(capture, payment))
        payment.refresh_from_db()
        assert (payment.gateway, payment.status) == (gateway, S.SUCCEEDED)
        assert wallet_balance(WalletOf(payment)) == AMOUNT
        return payment

    return make
