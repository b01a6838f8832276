"""What PayWave asks a gateway to charge, and whether what comes back may settle a payment."""

import json
from typing import Any

import pytest

from gateways.base import ChargeRequest, ChargeResult, ChargeStatus, Payer
from payments.charges import (
    charge_params_text,
    charge_request_from_params,
    frozen_charge_params,
    idempotency_key_for,
    settlement_problem,
)
from payments.models import AttemptOutcome, Payment, PaymentAttempt
from tests.factories import PaymentFactory

REQUEST = ChargeRequest(
    payment_id="7c1e0f0e-3a8b-4d5e-9f10-111213141516",
    amount=1050,
    currency="BRL",
    method="pix",
    payer=Payer(name="Ana Souza", country="BR", email="ana@example.com", tax_id="12345678909"),
    idempotency_key="paywave-7c1e0f0e-3a8b-4d5e-9f10-111213141516-mercadopago",
    pix_expires_in=600,
    description="Top-up",
)


def result(**fields: object) -> ChargeResult:
    return ChargeResult(
        status=ChargeStatus.SUCCEEDED, reference="ch_1", raw_status="paid", **fields
    )  # type: ignore[arg-type]


def test_a_charge_request_kept_with_an_attempt_reads_back_the_same() -> None:
    text = charge_params_text(REQUEST)

    assert json.loads(text)["payer"]["tax_id"] == "12345678909"
    assert charge_request_from_params(text) == REQUEST


def test_one_idempotency_key_per_payment_and_gateway() -> None:
    payment = Payment(id="7c1e0f0e-3a8b-4d5e-9f10-111213141516")

    assert idempotency_key_for(payment, "stripe") == (
        "paywave-7c1e0f0e-3a8b-4d5e-9f10-111213141516-stripe"
    )
    assert idempotency_key_for(payment, "stripe") != idempotency_key_for(payment, "gerencianet")


@pytest.mark.django_db
def test_the_frozen_parameters_are_the_first_call_s_at_that_gateway() -> None:
    payment = PaymentFactory()

    def attempt(gateway: str, number: int, params: str) -> PaymentAttempt:
        return PaymentAttempt.objects.create(
            payment=payment, gateway=gateway, number=number, idempotency_key=f"k-{gateway}",
            outcome=AttemptOutcome.AMBIGUOUS, charge_params=params,
        )  # fmt: skip

    assert frozen_charge_params(payment, "mercadopago") == ""  # no call made there yet
    attempt("mercadopago", 1, "")  # a call that never left: nothing frozen
    attempt("mercadopago", 2, '{"amount": 1050}')
    attempt("mercadopago", 3, '{"amount": 9999}')
    attempt("gerencianet", 1, '{"amount": 7}')

    assert frozen_charge_params(payment, "mercadopago") == '{"amount": 1050}'
    assert frozen_charge_params(payment, "gerencianet") == '{"amount": 7}'
    assert frozen_charge_params(payment, "stripe") == ""
    # From the attempts the caller read (all gateways'), the same answer.
    listed = list(payment.attempts.order_by("id"))
    assert frozen_charge_params(payment, "gerencianet", listed) == '{"amount": 7}'
    assert frozen_charge_params(payment, "mercadopago", listed) == '{"amount": 1050}'


def test_a_charge_for_the_payment_s_amount_and_currency_may_settle_it() -> None:
    payment = Payment(amount=1050, currency="BRL")

    assert settlement_problem(payment, result(amount=1050, currency="BRL")) == ""


@pytest.mark.parametrize(
    ("amount", "currency", "problem"),
    [
        (1049, "BRL", "the charge is for 1049, not 1050"),
        (1051, "BRL", "the charge is for 1051, not 1050"),
        (None, "BRL", "the charge is for None, not 1050"),
        (1050, "USD", "the charge is in USD, not BRL"),
        (1050, "", "the charge is in an unstated currency, not BRL"),
        (990, "USD", "the charge is for 990, not 1050"),
    ],
)
def test_a_charge_for_another_amount_or_currency_never_settles(
    amount: int | None, currency: str, problem: str
) -> None:
    payment = Payment(amount=1050, currency="BRL")

    assert settlement_problem(payment, result(amount=amount, currency=currency)) == problem


@pytest.mark.django_db
def test_the_first_request_to_a_gateway_carries_the_payment_as_the_wallet_app_sent_it(
    settings: Any,
) -> None:
    from payments.processing import charge_request_for

    payment = PaymentFactory(
        amount=2590, pix_expires_in=900, description="Top-up", return_url="https://app.example/r",
        payer_country="PT",
    )  # fmt: skip

    assert charge_request_for(payment, "mercadopago", []) == ChargeRequest(
        payment_id=str(payment.id),
        amount=2590,
        currency="BRL",
        method="pix",
        payer=Payer(name="Ana Souza", country="PT", email="ana@example.com", tax_id="12345678909"),
        idempotency_key=f"paywave-{payment.id}-mercadopago",
        pix_expires_in=900,
        description="Top-up",
        return_url="https://app.example/r",
    )
    payment.pix_expires_in = None  # not given: the platform's default
    settings.PAYWAVE_PIX_DEFAULT_EXPIRES_IN = 1800
    assert charge_request_for(payment, "mercadopago", []).pix_expires_in == 1800
