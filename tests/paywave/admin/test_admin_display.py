"""What staff read in the admin: times to the second, money in its currency, view-only
pages without Save buttons, failure codes, why a payment was parked."""

import re
from datetime import UTC, datetime
from typing import Any

import pytest
from axes.models import AccessAttempt
from django.test import Client
from django.utils import timezone

from gateways.models import GatewayCallback
from notifications.models import Delivery, Event
from payments.models import Payment, PaymentEvent, Refund
from payments.processing import payment_park
from payments.refunds import refund_create
from tests.factories import PaymentFactory, UserFactory, WalletFactory, WebhookEndpointFactory
from tests.gateway_fixtures import drive
from wallets.models import Entry
from wallets.services import transfer_create

pytestmark = [pytest.mark.services, pytest.mark.django_db]


@pytest.fixture
def staff() -> Client:
    client = Client()
    client.force_login(UserFactory(username="ops-admin", is_staff=True, is_superuser=True))
    return client


def test_times_are_shown_to_the_second_so_a_backoff_wait_is_visible(staff: Client) -> None:
    payment = PaymentFactory()
    Payment.objects.filter(pk=payment.pk).update(
        created_at=datetime(2026, 1, 15, 10, 4, 7, tzinfo=UTC),
        next_attempt_at=datetime(2026, 1, 15, 10, 4, 9, tzinfo=UTC),  # a 2 s backoff
    )

    listing = staff.get("/admin/payments/payment/").content.decode()
    page = staff.get(f"/admin/payments/payment/{payment.pk}/change/").content.decode()

    assert "2026-01-15 10:04:07 UTC" in listing
    assert "2026-01-15 10:04:07 UTC" in page
    assert "2026-01-15 10:04:09 UTC" in page
    assert "a.m." not in listing + page


def test_money_is_shown_in_its_currency_on_payments_refunds_and_attempts(
    staff: Client, card_payment: Any, sim: Any
) -> None:
    payment = drive(card_payment(amount=8800)).payment
    refund = refund_create(
        client_id=str(payment.client_id), payment_id=payment.pk, amount=1250, actor="staff:t"
    )
    PaymentFactory(currency="JPY", amount=1000)

    listing = staff.get("/admin/payments/payment/").content.decode()
    page = staff.get(f"/admin/payments/payment/{payment.pk}/change/").content.decode()
    refunds = staff.get("/admin/payments/refund/").content.decode()
    refund_page = staff.get(f"/admin/payments/refund/{refund.pk}/change/").content.decode()
    bulk = staff.post(
        "/admin/payments/payment/", {"action": "cancel", "_selected_action": [str(payment.pk)]}
    ).content.decode()

    assert "88.00 BRL" in listing
    assert "1,000 JPY" in listing
    assert ">8800<" not in listing
    for shown in ("88.00 BRL", "12.50 BRL", "75.50 BRL"):  # amount, a refund, left to refund
        assert shown in page
    assert re.search(r'class="field-sent">\s*<p>88.00 BRL</p>', page)  # the attempt's charge
    assert "12.50 BRL" in refunds
    assert "12.50 BRL" in refund_page
    assert f"{payment.pk}: 88.00 BRL, succeeded" in bulk  # the confirmation page
    assert ">1250<" not in page + refunds + refund_page


def test_money_is_shown_in_its_currency_on_wallets_the_ledger_and_transfers(
    staff: Client,
) -> None:
    wallet = WalletFactory(funds=123456)
    other = WalletFactory(client=wallet.client)
    transfer = transfer_create(
        client_id=str(wallet.client_id),
        from_wallet_id=wallet.pk,
        to_wallet_id=other.pk,
        amount=300,
        currency="BRL",
    )
    entry = Entry.objects.get(account_id=wallet.pk, sequence=2)

    pages = {
        url: staff.get(url).content.decode()
        for url in (
            "/admin/wallets/wallet/",
            f"/admin/wallets/wallet/{wallet.pk}/change/",
            "/admin/wallets/account/",
            f"/admin/wallets/account/{wallet.pk}/change/",
            "/admin/wallets/entry/",
            f"/admin/wallets/entry/{entry.pk}/change/",
            f"/admin/wallets/journal/{entry.journal_id}/change/",
            "/admin/wallets/transfer/",
            f"/admin/wallets/transfer/{transfer.pk}/change/",
        )
    }

    for url, page in pages.items():
        assert "3.00 BRL" in page or "1,231.56 BRL" in page, url
        assert ">300<" not in page, url
        assert ">123156<" not in page, url
    assert "-3.00 BRL" in pages[f"/admin/wallets/entry/{entry.pk}/change/"]


def read_only_pages() -> list[str]:
    payment = PaymentFactory()
    refund = Refund.objects.create(payment=payment, amount=100, gateway="stripe", actor="t")
    PaymentEvent.objects.create(payment=payment, to_status="pending", reason="r", actor="t")
    callback = GatewayCallback.objects.create(gateway="stripe", event_id="evt_1", kind="charge")
    wallet = WalletFactory(funds=100)
    entry = Entry.objects.get(account_id=wallet.pk)
    endpoint = WebhookEndpointFactory()
    event = Event.objects.create(
        type="payment.succeeded", client=endpoint.client, subject_id=payment.pk, data={}
    )
    delivery = Delivery.objects.create(
        event=event, endpoint=endpoint, subject_id=payment.pk, window_started_at=timezone.now()
    )
    attempt = AccessAttempt.objects.create(
        username="someone", ip_address="203.0.113.9", failures_since_start=1
    )
    return [
        f"/admin/payments/payment/{payment.pk}/change/",
        f"/admin/payments/refund/{refund.pk}/change/",
        f"/admin/gateways/gatewaycallback/{callback.pk}/change/",
        f"/admin/wallets/wallet/{wallet.pk}/change/",
        f"/admin/wallets/account/{wallet.pk}/change/",
        f"/admin/wallets/journal/{entry.journal_id}/change/",
        f"/admin/wallets/entry/{entry.pk}/change/",
        f"/admin/notifications/webhookendpoint/{endpoint.pk}/change/",
        f"/admin/notifications/delivery/{delivery.pk}/change/",
        f"/admin/notifications/event/{event.pk}/change/",
        f"/admin/paywave/apiclient/{payment.client_id}/change/",
        f"/admin/axes/accessattempt/{attempt.pk}/change/",
    ]


def test_read_only_pages_have_no_save_buttons_and_refuse_a_save(staff: Client) -> None:
    for url in read_only_pages():
        page = staff.get(url)
        assert page.status_code == 200, url
        for button in ('name="_save"', 'name="_continue"', 'name="_addanother"'):
            assert button not in page.content.decode(), (url, button)
        assert staff.post(url, {}).status_code == 403, url


def test_the_payment_list_has_a_failure_code_column_and_filter(staff: Client) -> None:
    declined = PaymentFactory(status="failed", failure_code="card_declined")
    exhausted = PaymentFactory(status="failed", failure_code="gateways_exhausted")
    PaymentFactory()

    listing = staff.get("/admin/payments/payment/")
    filtered = staff.get("/admin/payments/payment/", {"failure_code": "card_declined"})

    assert "Failure code" in listing.content.decode()
    assert '<td class="field-failure_code">gateways_exhausted</td>' in listing.content.decode()
    assert "?failure_code=authentication_abandoned" in listing.content.decode()
    assert list(filtered.context["cl"].result_list) == [declined]
    assert exhausted not in filtered.context["cl"].result_list


def test_a_parked_payment_s_page_tells_why_it_was_parked(staff: Client) -> None:
    payment = PaymentFactory(status="processing")
    payment_park(payment, "charge at stripe unknown: Ambiguous: read timed out")

    page = staff.get(f"/admin/payments/payment/{payment.pk}/change/").content.decode()

    assert "parked: charge_unconfirmed: charge at stripe unknown: Ambiguous: read timed out" in page
