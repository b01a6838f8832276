from typing import Any

import pytest

from payments.models import Payment, PaymentEvent, PaymentStatus
from tests.helpers import card_body, pix_body, post_payment

pytestmark = pytest.mark.django_db


def test_pix_payment_is_accepted_pending(api: Any, wallet_app: Any) -> None:
    response = post_payment(api, pix_body())

    assert response.status_code == 202
    body = response.json()
    assert response["Location"] == f"/api/v1/payments/{body['id']}"
    assert body["status"] == "pending"
    assert body["amount"] == 1050
    assert body["currency"] == "BRL"
    assert body["payer"] == {
        "name": "Ana Souza",
        "email": "ana@example.com",
        "tax_id_last4": "8909",
        "country": "BR",
    }
    assert body["pix"]["expires_in"] == 3600
    assert body["card"] is None
    assert body["attempts"] == []
    payment = Payment.objects.get(pk=body["id"])
    assert payment.client == wallet_app
    assert payment.status == PaymentStatus.PENDING
    assert payment.payer_tax_id == "12345678909"
    event = PaymentEvent.objects.get(payment=payment)
    assert (event.from_status, event.to_status) == ("", "pending")


def test_card_payment_is_accepted(api: Any) -> None:
    response = post_payment(api, card_body())

    assert response.status_code == 202
    body = response.json()
    assert body["method"] == "card"
    assert body["pix"] is None
    assert body["card"] == {"brand": None, "last4": None}
    assert Payment.objects.get(pk=body["id"]).card_token == "pm_card_visa"
