"""Which gateway a payment goes to: method, currency, payer country, priority, enabled."""

from typing import Any

import pytest

from gateways.models import Gateway
from gateways.selectors import gateway_candidates
from payments.models import PaymentStatus as S
from tests.gateway_fixtures import GATEWAY_TIMEOUT_MS, drive

pytestmark = [pytest.mark.services, pytest.mark.django_db]


def codes(**route: str) -> list[str]:
    return [gateway.code for gateway in gateway_candidates(**route)]


def test_candidates_by_method_currency_country_and_priority(gateways: Any) -> None:
    assert codes(method="pix", currency="BRL", country="BR") == ["mercadopago", "gerencianet"]
    assert codes(method="card", currency="USD", country="US") == ["stripe"]
    assert codes(method="pix", currency="USD", country="BR") == []  # PIX is BRL only
    assert codes(method="pix", currency="BRL", country="AR") == []  # payers in Brazil only


def test_an_eu_card_account_takes_eu_payers_first(gateways: Any, sim: Any) -> None:
    Gateway.objects.create(
        code="stripe-eu", adapter="stripe", display_name="Stripe EU", priority=5,
        methods=["card"], currencies=["EUR"], countries=["DE", "FR", "PT"],
        timeout_ms=GATEWAY_TIMEOUT_MS,
    )  # fmt: skip

    assert codes(method="card", currency="EUR", country="PT") == ["stripe-eu", "stripe"]
    assert codes(method="card", currency="EUR", country="US") == ["stripe"]
    assert codes(method="card", currency="BRL", country="PT") == ["stripe"]


def test_priority_and_enabled_are_read_at_each_payment(
    gateways: Any, pix_payment: Any, sim: Any
) -> None:
    Gateway.objects.filter(code="gerencianet").update(priority=1)
    assert drive(pix_payment()).payment.gateway == "gerencianet"

    Gateway.objects.filter(code="gerencianet").update(enabled=False)
    assert drive(pix_payment()).payment.gateway == "mercadopago"


def test_a_gateway_disabled_mid_payment_is_left_for_the_next(
    gateways: Any, pix_payment: Any, sim: Any
) -> None:
    sim.faults("mercadopago", down=True, down_mode="503")
    payment = pix_payment()

    def disable_primary(number: int) -> None:
        if number == 1:
            Gateway.objects.filter(code="mercadopago").update(enabled=False)

    payment = drive(payment, before_step=disable_primary).payment

    assert payment.status == S.AWAITING_PAYMENT
    assert [(a.gateway, a.number) for a in payment.attempts.all()] == [
        ("mercadopago", 1),
        ("gerencianet", 1),
    ]
