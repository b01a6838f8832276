"""Acting on one payment from its page: Retry now, Look up at the gateway, Cancel, Refund (a
typed amount or all that is left), each confirmed first, done through the services,
written down with the staff user's name; what the services refuse comes back as a
message, never a 500."""

from typing import Any

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Permission
from django.test import Client

from payments.models import Payment, PaymentEvent, Refund
from payments.models import PaymentStatus as S
from tests.factories import PaymentFactory, UserFactory, WalletFactory
from tests.gateway_fixtures import drive
from tests.payments.callbacks.helpers import run_refund_jobs
from wallets.services import transfer_create

pytestmark = [pytest.mark.services, pytest.mark.django_db]


@pytest.fixture
def staff() -> Client:
    client = Client()
    client.force_login(UserFactory(username="ops-admin", is_staff=True, is_superuser=True))
    return client


@pytest.fixture
def paid(card_payment: Any, sim: Any) -> Payment:
    payment = drive(card_payment(amount=8800)).payment
    assert payment.status == S.SUCCEEDED
    return payment


def page_of(payment: Payment) -> str:
    return f"/admin/payments/payment/{payment.pk}/change/"


def action_url(payment: Payment, action: str) -> str:
    return f"/admin/payments/payment/{payment.pk}/{action}/"


def confirm(staff: Client, payment: Payment, action: str, **data: str) -> Any:
    """Press "Yes" on the confirmation page; the payment's page it leads back to."""
    answer = staff.post(action_url(payment, action), {**data, "confirmed": "yes"}, follow=True)
    assert answer.status_code == 200
    assert answer.redirect_chain == [(page_of(payment), 302)]
    return answer


def said(answer: Any) -> list[str]:
    return [str(message) for message in answer.context["messages"]]


def audited(payment: Payment) -> bool:
    return LogEntry.objects.filter(
        object_id=str(payment.pk), user__username="ops-admin", change_message__contains="page"
    ).exists()


def test_the_payment_page_keeps_its_action_buttons_without_save_buttons(
    staff: Client, card_payment: Any, sim: Any
) -> None:
    payment = drive(card_payment()).payment

    page = staff.get(f"/admin/payments/payment/{payment.pk}/change/").content.decode()

    assert 'name="_save"' not in page
    assert "Act on this payment" in page
    assert 'value="Refund"' in page


def test_retry_now_asks_first_then_resumes_a_parked_payment(
    staff: Client, pix_payment: Any
) -> None:
    payment = pix_payment(
        status=S.PROCESSING, needs_reconciliation=True, reconciliation_reason="charge unknown"
    )
    old_token = payment.dispatch_token

    page = staff.get(page_of(payment)).content.decode()
    assert f'href="{action_url(payment, "retry")}">Retry now</a>' in page
    assert action_url(payment, "cancel") not in page  # a processing payment cannot be canceled
    asked = staff.get(action_url(payment, "retry"))
    assert asked.status_code == 200
    assert "Confirm: Retry now" in asked.content.decode()
    payment.refresh_from_db()
    assert payment.needs_reconciliation  # nothing done yet

    done = confirm(staff, payment, "retry")

    payment.refresh_from_db()
    assert not payment.needs_reconciliation
    assert payment.dispatch_token != old_token
    assert said(done) == ["Retry now: the payment's next step runs at once."]
    event = PaymentEvent.objects.get(payment=payment, actor="staff:ops-admin")
    assert (event.from_status, event.to_status) == (S.PROCESSING, S.PROCESSING)
    assert "charge unknown" in event.reason
    assert audited(payment)


def test_look_up_asks_first_then_settles_a_paid_pix_whose_callback_was_lost(
    staff: Client, pix_payment: Any, sim: Any
) -> None:
    payment = drive(pix_payment()).payment
    assert payment.status == S.AWAITING_PAYMENT
    page = staff.get(page_of(payment)).content.decode()
    assert f'href="{action_url(payment, "lookup")}">Look up at the gateway</a>' in page
    assert (
        "Confirm: Look up at the gateway"
        in staff.get(action_url(payment, "lookup")).content.decode()
    )
    paid = sim.http.post(
        f"/pix/{payment.gateway_reference}/pay", params={"gateway": payment.gateway}
    )
    assert paid.status_code == 200  # its callback goes nowhere: the payer calls support

    done = confirm(staff, payment, "lookup")

    payment.refresh_from_db()
    assert payment.status == S.SUCCEEDED
    assert said(done) == ["Looked up: the payer had paid. The payment succeeded."]
    event = PaymentEvent.objects.get(payment=payment, to_status=S.SUCCEEDED)
    assert event.actor == "staff:ops-admin"
    assert "callback missed" in event.reason
    assert audited(payment)


def test_look_up_of_an_unpaid_pix_keeps_it_waiting_and_writes_down_the_answer(
    staff: Client, pix_payment: Any, sim: Any
) -> None:
    payment = drive(pix_payment()).payment

    done = confirm(staff, payment, "lookup")

    payment.refresh_from_db()
    assert payment.status == S.AWAITING_PAYMENT
    assert said(done) == [
        "Looked up: the gateway says the code is not paid yet. The payment keeps waiting."
    ]
    event = PaymentEvent.objects.get(payment=payment, actor="staff:ops-admin")
    assert event.reason == f"looked up at {payment.gateway}: waiting"
    assert sim.charges(payment.id)[0]["status"] == "pending"


def test_look_up_is_offered_only_while_a_pix_waits_for_its_payer(
    staff: Client, paid: Payment
) -> None:
    assert action_url(paid, "lookup") not in staff.get(page_of(paid)).content.decode()

    done = confirm(staff, paid, "lookup")

    assert said(done) == [
        "Not done: A succeeded payment is not waiting for its payer. (not_waiting)"
    ]
    assert not PaymentEvent.objects.filter(payment=paid, actor="staff:ops-admin").exists()


def test_cancel_asks_first_then_cancels_and_a_refusal_is_a_message(staff: Client) -> None:
    payment = PaymentFactory()

    assert action_url(payment, "cancel") in staff.get(page_of(payment)).content.decode()
    asked = staff.get(action_url(payment, "cancel"))
    assert "Confirm: Cancel" in asked.content.decode()
    assert "10.50 BRL" in asked.content.decode()
    payment.refresh_from_db()
    assert payment.status == S.PENDING

    done = confirm(staff, payment, "cancel")

    payment.refresh_from_db()
    assert payment.status == S.CANCELED
    assert said(done) == ["Canceled."]
    assert PaymentEvent.objects.filter(
        payment=payment, to_status=S.CANCELED, actor="staff:ops-admin"
    ).exists()
    assert audited(payment)
    again = confirm(staff, payment, "cancel")  # e.g. from a page left open
    assert said(again) == [
        "Not done: The payment is canceled; it cannot become canceled. (payment_state_conflict)"
    ]


def test_a_partial_refund_of_a_typed_amount_reaches_the_gateway(
    staff: Client, paid: Payment, sim: Any
) -> None:
    page = staff.get(page_of(paid)).content.decode()
    assert f'action="{action_url(paid, "refund")}"' in page
    assert "all that is left, 88.00 BRL" in page

    asked = staff.get(action_url(paid, "refund"), {"amount": "12,50"})
    assert "Confirm: Refund" in asked.content.decode()
    assert "Refund 12.50 BRL</strong> of 88.00 BRL left?" in asked.content.decode()
    assert not Refund.objects.filter(payment=paid).exists()

    done = confirm(staff, paid, "refund", amount="12,50")

    refund = Refund.objects.get(payment=paid)
    assert (refund.amount, refund.actor) == (1250, "staff:ops-admin")
    assert said(done) == [f"Refund of 12.50 BRL requested (refund {refund.id})."]
    event = PaymentEvent.objects.get(payment=paid, actor="staff:ops-admin")
    assert event.reason == f"refund {refund.id} of 12.50 BRL requested"
    assert (event.from_status, event.to_status) == (S.SUCCEEDED, S.SUCCEEDED)
    assert audited(paid)
    run_refund_jobs(refund.pk)
    paid.refresh_from_db()
    assert (paid.status, paid.amount_refunded) == (S.PARTIALLY_REFUNDED, 1250)
    assert sim.charges(paid.id)[0]["amount_refunded"] == 1250

    rest = staff.get(action_url(paid, "refund"), {"amount": ""})
    assert "Refund 75.50 BRL</strong>: all that is left?" in rest.content.decode()
    confirm(staff, paid, "refund", amount="")
    run_refund_jobs(Refund.objects.get(payment=paid, amount=7550).pk)
    paid.refresh_from_db()
    assert (paid.status, paid.amount_refunded) == (S.REFUNDED, 8800)
    assert sim.charges(paid.id)[0]["amount_refunded"] == 8800


@pytest.mark.parametrize(
    ("typed", "why"),
    [
        ("12.505", "BRL has no amounts finer than 0.01 BRL."),
        ("1.234,56", "no thousands separators"),
        ("0", "Enter an amount greater than zero."),
        ("88.01", "At most 88.00 BRL is left."),
    ],
)
def test_an_amount_that_cannot_be_refunded_is_said_before_anything_is_asked(
    staff: Client, paid: Payment, typed: str, why: str
) -> None:
    asked = staff.get(action_url(paid, "refund"), {"amount": typed})

    assert asked.status_code == 200
    assert why in asked.content.decode()
    assert 'name="confirmed"' not in asked.content.decode()  # no "Yes": only a new amount
    assert f'value="{typed}"' in asked.content.decode()
    posted = staff.post(action_url(paid, "refund"), {"amount": typed, "confirmed": "yes"})
    assert posted.status_code in (200, 302)
    assert not Refund.objects.filter(payment=paid).exists()


def test_what_the_refund_service_refuses_comes_back_as_a_message(
    staff: Client, paid: Payment
) -> None:
    too_much = confirm(staff, paid, "refund", amount="88.01")
    assert said(too_much) == [
        "Not done: At most 88.00 BRL is left to refund. (refund_exceeds_payment)"
    ]
    assert not Refund.objects.filter(payment=paid).exists()

    confirm(staff, paid, "refund", amount="")  # all of it, still pending at the gateway
    twice = confirm(staff, paid, "refund", amount="1")

    assert said(twice) == [
        "Not done: The payment is refunded in full (or will be, once pending refunds finish)."
        " (payment_fully_refunded)"
    ]
    assert Refund.objects.filter(payment=paid).count() == 1
    nothing_left = staff.get(action_url(paid, "refund"))
    assert "Nothing is left to refund." in nothing_left.content.decode()


def test_a_refund_the_wallet_can_no_longer_cover_is_refused_with_a_message(
    staff: Client, card_payment: Any, sim: Any
) -> None:
    wallet = WalletFactory()
    other = WalletFactory(client=wallet.client)
    payment = drive(card_payment(client=wallet.client, amount=1000, wallet_id=wallet.pk)).payment
    transfer_create(
        client_id=str(wallet.client_id),
        from_wallet_id=wallet.pk,
        to_wallet_id=other.pk,
        amount=800,
        currency="BRL",
    )

    refused = confirm(staff, payment, "refund", amount="5,00")

    assert said(refused) == [
        "Not done: The wallet no longer holds the amount to refund. (insufficient_funds)"
    ]
    assert not Refund.objects.filter(payment=payment).exists()
    assert not PaymentEvent.objects.filter(payment=payment, actor="staff:ops-admin").exists()
    allowed = confirm(staff, payment, "refund", amount="2")
    assert said(allowed)[0].startswith("Refund of 2.00 BRL requested")


def test_staff_who_may_only_view_get_no_buttons_and_cannot_act(db: Any) -> None:
    viewer = UserFactory(username="viewer", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_payment"))
    client = Client()
    client.force_login(viewer)
    payment = PaymentFactory()

    page = client.get(page_of(payment))

    assert page.status_code == 200
    assert "Act on this payment" not in page.content.decode()
    for action in ("retry", "lookup", "cancel", "refund"):
        assert client.get(action_url(payment, action)).status_code == 403
        assert client.post(action_url(payment, action), {"confirmed": "yes"}).status_code == 403
    payment.refresh_from_db()
    assert payment.status == S.PENDING


def test_an_unknown_payment_leads_back_to_the_admin_with_a_message(staff: Client) -> None:
    missing = "5c1e0000-0000-4000-8000-000000000001"

    answer = staff.get(f"/admin/payments/payment/{missing}/retry/", follow=True)

    assert answer.redirect_chain == [("/admin/", 302)]
    assert "exist" in said(answer)[0]
