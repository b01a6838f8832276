"""The Django admin for staff: find payments, read them, act on them through the services."""

from typing import Any

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Permission
from django.test import Client

from gateways.circuit import circuit_record_failure
from gateways.models import Gateway
from payments.models import Payment, PaymentEvent, Refund
from payments.models import PaymentStatus as S
from tests.factories import PaymentFactory, UserFactory
from tests.gateway_fixtures import drive

pytestmark = [pytest.mark.services, pytest.mark.django_db]


@pytest.fixture
def staff() -> Client:
    client = Client()
    client.force_login(UserFactory(username="ops-admin", is_staff=True, is_superuser=True))
    return client


def run_action(staff: Client, action: str, *payments: Payment, confirm: bool = True) -> Any:
    data = {"action": action, "_selected_action": [str(p.pk) for p in payments]}
    if confirm:
        data["confirmed"] = "yes"
    return staff.post("/admin/payments/payment/", data, follow=True)


def test_non_staff_cannot_reach_the_admin(wallet_app: Any) -> None:
    client = Client()
    client.force_login(wallet_app.user)

    response = client.get("/admin/payments/payment/")

    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def test_staff_find_payments_by_id_txid_reference_email_and_tax_id(staff: Client) -> None:
    target = PaymentFactory(
        payer_email="maria@example.com", pix_txid="TXIDTARGET123", gateway_reference="mp-998877"
    )
    PaymentFactory(payer_email="other@example.com", payer_tax_id="52998224725")

    for term in (
        str(target.id),
        "TXIDTARGET123",
        "mp-998877",
        "Maria@Example.com",
        "123.456.789-09",
    ):
        response = staff.get("/admin/payments/payment/", {"q": term})
        assert response.status_code == 200
        found = list(response.context["cl"].result_list)
        assert found == [target], term

    filtered = staff.get("/admin/payments/payment/", {"status__exact": "pending"})
    assert filtered.context["cl"].result_count == 2


def test_payment_page_shows_its_story_and_edits_nothing(
    staff: Client, card_payment: Any, sim: Any
) -> None:
    payment = drive(card_payment()).payment
    amount = payment.amount
    url = f"/admin/payments/payment/{payment.pk}/change/"

    page = staff.get(url)
    assert page.status_code == 200
    assert b"stripe" in page.content
    assert b"picked up for charging" in page.content  # the events inline
    staff.post(url, {"amount": "1", "status": "failed"})

    payment.refresh_from_db()
    assert (payment.amount, payment.status) == (amount, S.SUCCEEDED)


def test_cancel_asks_first_then_cancels_and_records_who(staff: Client) -> None:
    payment = PaymentFactory()

    asked = run_action(staff, "cancel", payment, confirm=False)
    assert b"Confirm: Cancel" in asked.content
    payment.refresh_from_db()
    assert payment.status == S.PENDING

    run_action(staff, "cancel", payment)

    payment.refresh_from_db()
    assert payment.status == S.CANCELED
    assert PaymentEvent.objects.filter(payment=payment, actor="staff:ops-admin").exists()
    assert LogEntry.objects.filter(object_id=str(payment.pk), user__username="ops-admin").exists()


def test_refund_action_creates_a_refund_named_after_the_staff_user(
    staff: Client, card_payment: Any, sim: Any
) -> None:
    payment = drive(card_payment()).payment

    run_action(staff, "refund", payment)

    refund = Refund.objects.get(payment=payment)
    assert refund.amount == payment.amount
    assert refund.actor == "staff:ops-admin"
    event = PaymentEvent.objects.get(payment=payment, actor="staff:ops-admin")
    assert event.reason == f"refund {refund.id} of 10.50 BRL requested"


def test_retry_now_resumes_a_parked_payment(staff: Client, pix_payment: Any) -> None:
    payment = pix_payment(
        status=S.PROCESSING, needs_reconciliation=True, reconciliation_reason="charge unknown"
    )
    old_token = payment.dispatch_token

    response = run_action(staff, "retry_now", payment)

    payment.refresh_from_db()
    assert not payment.needs_reconciliation
    assert payment.dispatch_token != old_token
    assert b"Retry now: 1 payment" in response.content
    audit = PaymentEvent.objects.get(payment=payment, actor="staff:ops-admin")
    assert (audit.from_status, audit.to_status) == (S.PROCESSING, S.PROCESSING)
    assert "charge unknown" in audit.reason
    assert LogEntry.objects.filter(object_id=str(payment.pk), user__username="ops-admin").exists()
    finished = run_action(staff, "retry_now", PaymentFactory(status=S.SUCCEEDED))
    assert b"has nothing to retry" in finished.content


def test_staff_without_change_permission_see_no_actions(db: Any) -> None:
    viewer = UserFactory(username="viewer", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_payment"))
    client = Client()
    client.force_login(viewer)
    payment = PaymentFactory()

    page = client.get("/admin/payments/payment/")
    assert page.status_code == 200
    assert b"Retry now" not in page.content
    run_action(client, "cancel", payment)
    payment.refresh_from_db()
    assert payment.status == S.PENDING


def test_gateways_show_health_and_circuit_and_priority_is_editable(
    staff: Client, gateways: Any, processing_settings: Any
) -> None:
    processing_settings.PAYWAVE_CIRCUIT_THRESHOLD = 1
    circuit_record_failure("gerencianet")

    page = staff.get("/admin/gateways/gateway/")

    assert page.status_code == 200
    assert b"open (1 consecutive failures)" in page.content
    assert b"not probed yet" in page.content
    closed = staff.post(
        "/admin/gateways/gateway/",
        {"action": "close_circuit", "_selected_action": [str(gateways["gerencianet"].pk)]},
        follow=True,
    )
    assert b"Closed 1 circuit" in closed.content


def test_staff_filter_by_method_gateway_and_date(staff: Client, gateways: Any) -> None:
    card = PaymentFactory(method="card", card_token="pm_card_visa", gateway="stripe")
    PaymentFactory(gateway="mercadopago")
    waiting = PaymentFactory(gateway="")
    Payment.objects.filter(pk=card.pk).update(created_at="2026-01-15T10:00:00Z")

    def found(**query: str) -> list[Payment]:
        response = staff.get("/admin/payments/payment/", query)
        assert response.status_code == 200
        return list(response.context["cl"].result_list)

    assert found(method__exact="card") == [card]
    assert found(gateway="stripe") == [card]
    # Payments no gateway took yet are a named choice, never an empty link.
    assert found(gateway="-") == [waiting]
    page = staff.get("/admin/payments/payment/").content.decode()
    assert ">not routed yet</a>" in page
    assert found(created_at__year="2026", created_at__month="1") == [card]


def test_the_refund_confirmation_names_the_payment_and_refunds_nothing_yet(
    staff: Client, card_payment: Any, sim: Any
) -> None:
    payment = drive(card_payment()).payment

    asked = run_action(staff, "refund", payment, confirm=False)

    assert b"Confirm: Refund" in asked.content
    assert str(payment.pk).encode() in asked.content
    assert not Refund.objects.filter(payment=payment).exists()


def test_select_all_confirms_and_acts_on_every_match_not_one_page(staff: Client) -> None:
    payments = [PaymentFactory() for _ in range(3)]
    data = {"action": "cancel", "_selected_action": [str(payments[0].pk)], "select_across": "1"}

    asked = staff.post("/admin/payments/payment/", data)
    assert b"Cancel 3 payments?" in asked.content
    assert b'name="select_across" value="1"' in asked.content
    staff.post("/admin/payments/payment/", {**data, "confirmed": "yes"}, follow=True)

    assert set(Payment.objects.values_list("status", flat=True)) == {S.CANCELED}


def test_gateway_priority_is_edited_from_the_list_and_rows_cannot_be_deleted(
    staff: Client, gateways: Any
) -> None:
    gateway = gateways["gerencianet"]
    rows = list(Gateway.objects.order_by("priority", "code"))
    form = {
        "form-TOTAL_FORMS": str(len(rows)),
        "form-INITIAL_FORMS": str(len(rows)),
        "_save": "Save",
    }
    for index, row in enumerate(rows):
        form[f"form-{index}-id"] = str(row.pk)
        form[f"form-{index}-enabled"] = "on" if row.enabled else ""
        form[f"form-{index}-priority"] = str(1 if row.pk == gateway.pk else row.priority)
    form = {key: value for key, value in form.items() if value != ""}

    saved = staff.post("/admin/gateways/gateway/", form, follow=True)

    assert saved.status_code == 200
    gateway.refresh_from_db()
    assert gateway.priority == 1
    assert staff.get(f"/admin/gateways/gateway/{gateway.pk}/delete/").status_code == 403
    assert Gateway.objects.filter(pk=gateway.pk).exists()
