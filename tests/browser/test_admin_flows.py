"""The staff's main admin flows, in a real browser, on a desktop and on a phone.

A staff member with an authenticator app signs in (password and TOTP code), finds a
payment by its id with the search box, reads its attempts and events, refunds part of
it (types the amount, confirms), and resumes a payment parked for reconciliation.
The payments are real: charged at the Stripe simulator through the engine (`drive`),
their refund's and retry's jobs run in process as a worker would run them. Every page
visited is checked with axe-core and, with PAYWAVE_SCREENSHOTS=1, photographed into
docs/screenshots/ (tests/browser/conftest.py).
"""

import re
from typing import Any

import pytest
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice
from playwright.sync_api import Page, expect

from payments.models import Payment, Refund
from payments.models import PaymentStatus as S
from tests.factories import PaymentFactory, UserFactory
from tests.gateway_fixtures import drive
from tests.payments.callbacks.helpers import run_refund_jobs

pytestmark = [pytest.mark.browser, pytest.mark.services, pytest.mark.django_db(transaction=True)]

STAFF = "ops-ana"
PASSWORD = "correct horse battery staple 42"


@pytest.fixture
def staff_device(db: Any) -> TOTPDevice:
    """A superuser who enrolled an authenticator app (manage.py totp_enrol)."""
    user = UserFactory(username=STAFF, is_staff=True, is_superuser=True, password=PASSWORD)
    return TOTPDevice.objects.create(user=user, name="phone", confirmed=True)


@pytest.fixture
def published(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, Any, Any]]:
    """The jobs the admin publishes (a retry's, a refund's), kept here instead of sent
    to the broker: the test runs them in process, as the worker would."""
    jobs: list[tuple[str, Any, Any]] = []

    def publish(kind: str) -> Any:
        return lambda job_id, token, countdown=0: (
            jobs.append((kind, str(job_id), str(token))) or True
        )

    monkeypatch.setattr("payments.staff.payment_dispatch", publish("payment"))
    monkeypatch.setattr("payments.refunds.refund_dispatch", publish("refund"))
    return jobs


def code_of(device: TOTPDevice) -> str:
    return f"{totp(device.bin_key, device.step, device.t0, device.digits, device.drift):06d}"


def sign_in(screen: Any, device: TOTPDevice) -> None:
    page: Page = screen.page
    page.goto("/admin/")
    expect(page).to_have_url(re.compile(r"/admin/login/\?next=/admin/$"))
    screen.check("admin-login")
    page.get_by_label("Username:").fill(STAFF)
    page.get_by_label("Password:").fill(PASSWORD)
    page.get_by_label("OTP Token:").fill(code_of(device))
    page.get_by_role("button", name="Log in").click()
    # django-otp's form asks which device the code came from once it knows the user.
    expect(page.locator(".errornote")).to_have_text("Please select a device.")
    screen.check("admin-login-device")
    page.get_by_label("OTP Device:").select_option(label=device.name)
    page.get_by_label("Password:").fill(PASSWORD)
    page.get_by_label("OTP Token:").fill(code_of(device))
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Site administration")).to_be_visible()
    screen.check("admin-index")


def open_payment_by_id(screen: Any, payment: Payment) -> None:
    """Payments > Payments, the id in the search box, the one row it finds."""
    page: Page = screen.page
    page.locator("#content-main tr.model-payment").get_by_role("link", name="Payments").click()
    expect(page.get_by_role("heading", name=re.compile(r"^Select payment to"))).to_be_visible()
    screen.check("payments-list")
    search = page.locator("#searchbar")
    search.fill(str(payment.pk))
    search.press("Enter")
    rows = page.locator("#result_list tbody tr")
    expect(rows).to_have_count(1)
    screen.check("payments-search")
    rows.get_by_role("link", name=str(payment.pk)).click()
    expect(page).to_have_url(re.compile(rf"/admin/payments/payment/{payment.pk}/change/"))


def inline(page: Page, title: str) -> Any:
    """An inline table of the payment's page (its events, attempts, refunds), by heading."""
    return page.locator("div.inline-group").filter(
        has=page.get_by_role("heading", name=title, exact=True)
    )


def test_staff_find_a_paid_payment_read_its_story_and_refund_part_of_it(
    screen: Any,
    staff_device: TOTPDevice,
    card_payment: Any,
    sim: Any,
    published: list[tuple[str, Any, Any]],
) -> None:
    paid = drive(card_payment(amount=8800)).payment
    assert paid.status == S.SUCCEEDED
    PaymentFactory(client=paid.client)  # others in the list, which the search leaves out
    page: Page = screen.page

    sign_in(screen, staff_device)
    open_payment_by_id(screen, paid)

    attempts = inline(page, "Payment attempts")
    expect(attempts.locator("tbody tr.has_original")).to_have_count(1)
    expect(attempts).to_contain_text("stripe")
    expect(attempts).to_contain_text("88.00 BRL")
    expect(attempts).to_contain_text("succeeded")
    events = inline(page, "Payment events")
    expect(events).to_contain_text("processing")
    expect(events).to_contain_text("succeeded")
    screen.check("payment-page", show=inline(page, "Payment attempts"))

    amount = page.get_by_label("Refund, in BRL:")
    expect(amount).to_have_attribute("placeholder", "all that is left, 88.00 BRL")
    amount.fill("12,50")
    page.get_by_role("button", name="Refund").click()
    expect(page.get_by_role("heading", name="Confirm: Refund")).to_be_visible()
    expect(page.locator("#content-main")).to_contain_text("Refund 12.50 BRL of 88.00 BRL left?")
    screen.check("refund-confirm")
    assert not Refund.objects.filter(payment=paid).exists()  # nothing before "Yes"

    page.get_by_role("button", name="Yes, refund").click()

    refund = Refund.objects.get(payment=paid)
    assert (refund.amount, refund.actor) == (1250, f"staff:{STAFF}")
    expect(page.locator("ul.messagelist")).to_have_text(
        f"Refund of 12.50 BRL requested (refund {refund.id})."
    )
    screen.check("refund-requested")
    assert published == [("refund", str(refund.id), str(refund.job_token))]

    run_refund_jobs(refund.pk)  # the worker's part
    page.reload()

    paid.refresh_from_db()
    assert (paid.status, paid.amount_refunded) == (S.PARTIALLY_REFUNDED, 1250)
    assert sim.charges(paid.id)[0]["amount_refunded"] == 1250
    refunds = inline(page, "Refunds")
    expect(refunds.locator("tbody tr.has_original")).to_have_count(1)
    expect(refunds).to_contain_text("12.50 BRL")
    expect(refunds).to_contain_text("succeeded")
    expect(page.get_by_label("Refund, in BRL:")).to_have_attribute(
        "placeholder", "all that is left, 75.50 BRL"
    )
    expect(inline(page, "Payment events")).to_contain_text("partially_refunded")
    screen.check("payment-refunded", show=inline(page, "Payment events"))


def test_staff_resume_a_parked_payment_with_retry_now(
    screen: Any,
    staff_device: TOTPDevice,
    card_payment: Any,
    sim: Any,
    published: list[tuple[str, Any, Any]],
) -> None:
    sim.faults("stripe", down=True, down_mode="reset")  # every try and the lookup unanswered
    parked = drive(card_payment(amount=4200)).payment
    assert (parked.status, parked.parked_reason) == (S.PROCESSING, "charge_unconfirmed")
    sim.reset_faults()  # Stripe answers again
    page: Page = screen.page

    sign_in(screen, staff_device)
    open_payment_by_id(screen, parked)

    expect(inline(page, "Payment events")).to_contain_text("parked: charge_unconfirmed")
    expect(page.locator(".fieldBox.field-parked_reason")).to_contain_text(
        re.compile("charge unconfirmed", re.IGNORECASE)
    )
    screen.check("parked-payment-page")
    page.get_by_role("link", name="Retry now").click()
    expect(page.get_by_role("heading", name="Confirm: Retry now")).to_be_visible()
    expect(page.locator("#content-main")).to_contain_text("parked (charge_unconfirmed)")
    screen.check("retry-confirm")

    page.get_by_role("button", name="Yes, retry now").click()

    expect(page.locator("ul.messagelist")).to_have_text(
        "Retry now: the payment's next step runs at once."
    )
    parked.refresh_from_db()
    assert not parked.needs_reconciliation
    assert published == [("payment", str(parked.id), str(parked.dispatch_token))]
    expect(inline(page, "Payment events")).to_contain_text(f"staff:{STAFF}")
    screen.check("retry-requested")

    settled = drive(parked).payment  # the worker's part: the lookup, then the charge
    page.reload()

    assert settled.status == S.SUCCEEDED
    expect(page.locator(".fieldBox.field-status")).to_contain_text(
        re.compile("succeeded", re.IGNORECASE)
    )
    expect(page.locator(".fieldBox.field-parked_reason")).to_contain_text("-")
    screen.check("retried-payment-page", show=inline(page, "Payment events"))
