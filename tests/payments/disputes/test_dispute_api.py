"""GET /api/v1/payments/{id}/disputes, and the dispute events a wallet app subscribes to."""

from typing import Any

import pytest
from rest_framework.test import APIClient

from gateways.base import DisputeStatus
from payments.disputes import dispute_apply
from tests.factories import WalletFactory
from tests.payments.disputes.helpers import credited_payment, reported

pytestmark = [pytest.mark.django_db]


def _disputed(wallet_app: Any) -> Any:
    payment = credited_payment(WalletFactory(client=wallet_app), 10_000)
    dispute_apply(payment.pk, "stripe", reported(payment, amount=4_000), actor="test")
    dispute_apply(
        payment.pk,
        "stripe",
        reported(payment, DisputeStatus.LOST, amount=1_000, reference="dp_2", reason="duplicate"),
        actor="test",
    )
    return payment


def test_a_payment_s_disputes_newest_first(api: APIClient, wallet_app: Any) -> None:
    payment = _disputed(wallet_app)

    response = api.get(f"/api/v1/payments/{payment.pk}/disputes")

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["has_more"] is False
    newest, first = body["results"]
    assert (newest["gateway_reference"], newest["status"], newest["outcome"]) == (
        "dp_2",
        "lost",
        "lost",
    )
    assert (newest["amount"], newest["currency"], newest["reason"]) == (1_000, "BRL", "duplicate")
    assert newest["closed_at"] is not None
    assert first == {
        "id": first["id"],
        "payment_id": str(payment.pk),
        "gateway": "stripe",
        "gateway_reference": "dp_1",
        "kind": "chargeback",
        "status": "needs_response",
        "outcome": None,
        "amount": 4_000,
        "currency": "BRL",
        "reason": "fraudulent",
        "evidence_due_at": first["evidence_due_at"],
        "evidence_submitted_at": None,
        "opened_at": first["opened_at"],
        "closed_at": None,
    }
    assert first["evidence_due_at"].endswith("Z")


def test_a_payment_without_disputes_has_an_empty_list(api: APIClient, wallet_app: Any) -> None:
    payment = credited_payment(WalletFactory(client=wallet_app), 10_000)

    response = api.get(f"/api/v1/payments/{payment.pk}/disputes")

    assert response.json() == {"results": [], "has_more": False}


def test_another_app_s_payment_is_404(other_api: APIClient, wallet_app: Any) -> None:
    payment = _disputed(wallet_app)

    response = other_api.get(f"/api/v1/payments/{payment.pk}/disputes")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "payment_not_found"


def test_unknown_query_parameters_are_400(api: APIClient, wallet_app: Any) -> None:
    payment = _disputed(wallet_app)

    response = api.get(f"/api/v1/payments/{payment.pk}/disputes?status=open")

    assert response.status_code == 400
    assert set(response.json()["error"]) == {"type", "code", "message", "fields"}


def test_an_endpoint_can_subscribe_to_dispute_events(api: APIClient) -> None:
    response = api.post(
        "/api/v1/webhook-endpoints",
        {
            "url": "https://wallet.example.com/hooks",
            "events": ["payment.dispute_opened", "payment.dispute_closed"],
        },
        format="json",
        HTTP_IDEMPOTENCY_KEY="hook-disputes",
    )

    assert response.status_code == 201, response.content
    assert response.json()["events"] == ["payment.dispute_opened", "payment.dispute_closed"]


def test_a_refund_of_a_disputed_payment_is_409_and_changes_nothing(
    api: APIClient, wallet_app: Any
) -> None:
    payment = credited_payment(WalletFactory(client=wallet_app), 10_000)
    dispute_apply(payment.pk, "stripe", reported(payment, amount=4_000), actor="test")

    response = api.post(
        f"/api/v1/payments/{payment.pk}/refunds",
        {"amount": 100},
        format="json",
        HTTP_IDEMPOTENCY_KEY="refund-1",
    )

    assert response.status_code == 409, response.content
    assert response.json()["error"]["code"] == "payment_disputed"
    assert not payment.refunds.exists()
