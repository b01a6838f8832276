"""Disputes in the admin: found by state, deadline and gateway; answered through the
gateway's API after a confirmation page, written down with the staff user's name."""

from datetime import timedelta
from typing import Any

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Permission
from django.test import Client
from django.utils import timezone

from gateways.base import DisputeStatus
from gateways.models import Gateway
from gateways.registry import adapter_for
from payments.disputes import dispute_apply
from payments.models import Dispute, PaymentEvent
from tests.factories import UserFactory, WalletFactory
from tests.payments.callbacks.helpers import receive_and_process
from tests.payments.disputes.helpers import (
    credited_payment,
    open_dispute,
    reported,
)

pytestmark = [pytest.mark.services, pytest.mark.django_db]

LIST = "/admin/payments/dispute/"


@pytest.fixture
def staff() -> Client:
    client = Client()
    client.force_login(UserFactory(username="ops-admin", is_staff=True, is_superuser=True))
    return client


def _disputes() -> dict[str, Dispute]:
    """Three disputes: one due tomorrow, one due in a week, one closed."""
    wallet = WalletFactory()
    made = {}
    for name, due_in, status in (
        ("soon", timedelta(days=1), DisputeStatus.NEEDS_RESPONSE),
        ("later", timedelta(days=7), DisputeStatus.NEEDS_RESPONSE),
        ("closed", timedelta(days=2), DisputeStatus.WON),
    ):
        payment = credited_payment(wallet, 1_000 + len(made))
        result = reported(payment, status, reference=f"dp_{name}")
        result = result.__class__(**{**result.__dict__, "evidence_due_at": timezone.now() + due_in})
        made[name] = dispute_apply(payment.pk, "stripe", result, actor="test")
    return made


def test_the_list_filters_open_disputes_by_deadline(staff: Client) -> None:
    made = _disputes()

    everything = staff.get(LIST).content.decode()
    soon = staff.get(LIST, {"due": "soon"}).content.decode()
    open_ones = staff.get(LIST, {"state": "open"}).content.decode()
    found = staff.get(LIST, {"q": "dp_later"}).content.decode()

    assert all(f"dp_{name}" in everything for name in made)
    assert "dp_soon" in soon
    assert "dp_later" not in soon
    assert "dp_closed" not in soon
    assert "dp_closed" not in open_ones
    assert "dp_later" in found
    assert "dp_soon" not in found


def test_a_payment_s_page_lists_its_disputes(staff: Client) -> None:
    dispute = _disputes()["soon"]

    page = staff.get(f"/admin/payments/payment/{dispute.payment_id}/change/").content.decode()

    assert f"/admin/payments/dispute/{dispute.pk}/change/" in page
    assert "needs_response" in page
    assert "10.00 BRL" in page


@pytest.mark.parametrize("gateway", ["stripe", "gerencianet", "paypal"])
def test_evidence_is_sent_through_the_gateway_after_confirmation(
    gateway: str, staff: Client, paid: Any, capture: Any
) -> None:
    payment = paid(gateway)
    opened = open_dispute(capture, payment)
    receive_and_process(gateway, opened["callback"])
    dispute = Dispute.objects.get(payment=payment)
    evidence = f"/admin/payments/dispute/{dispute.pk}/evidence/"
    page = staff.get(f"/admin/payments/dispute/{dispute.pk}/change/").content.decode()
    assert evidence in page
    text = "Delivered to the payer on 2 Dec, signed."

    confirm = staff.post(evidence, {"text": text})
    assert confirm.status_code == 200
    assert b"Yes, submit evidence" in confirm.content
    assert Dispute.objects.get(pk=dispute.pk).evidence_submitted_at is None  # not yet
    done = staff.post(evidence, {"text": text, "confirmed": "yes"}, follow=True)

    assert f"Evidence submitted to {gateway}".encode() in done.content
    dispute.refresh_from_db()
    assert dispute.status == DisputeStatus.UNDER_REVIEW
    assert (dispute.evidence_text, dispute.evidence_submitted_by) == (text, "ops-admin")
    event = PaymentEvent.objects.filter(payment=payment).last()
    assert (event.actor, event.reason) == (
        "staff:ops-admin",
        f"dispute {dispute.reference}: evidence submitted ({len(text)} characters)",
    )
    assert LogEntry.objects.filter(object_id=str(dispute.pk)).exists()
    # The gateway has it: read back from the gateway, the dispute is under review there.
    at_gateway = adapter_for(Gateway.objects.get(code=gateway)).dispute(dispute.reference)
    assert at_gateway.status == DisputeStatus.UNDER_REVIEW


def test_a_gateway_without_an_evidence_api_says_so_and_sends_nothing(
    staff: Client,
    paid: Any,
    capture: Any,
) -> None:
    payment = paid("mercadopago")
    opened = open_dispute(capture, payment)
    receive_and_process("mercadopago", opened["callback"])
    dispute = Dispute.objects.get(payment=payment)

    done = staff.post(
        f"/admin/payments/dispute/{dispute.pk}/evidence/",
        {"text": "Delivered.", "confirmed": "yes"},
        follow=True,
    )

    assert b"takes answers to disputes only in its own dashboard" in done.content
    dispute.refresh_from_db()
    assert dispute.evidence_submitted_at is None
    assert dispute.status == DisputeStatus.NEEDS_RESPONSE


def test_staff_who_may_only_view_get_no_evidence_form(staff: Client) -> None:
    dispute = _disputes()["soon"]
    viewer = UserFactory(username="viewer", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_dispute"))
    client = Client()
    client.force_login(viewer)

    page = client.get(f"/admin/payments/dispute/{dispute.pk}/change/")
    refused = client.post(
        f"/admin/payments/dispute/{dispute.pk}/evidence/", {"text": "x", "confirmed": "yes"}
    )

    assert page.status_code == 200
    assert b"Answer this dispute" not in page.content
    assert refused.status_code == 403
