"""The payer's flows on the hosted page: PIX paid, PIX expired, card 3-D Secure, PayPal."""

from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from django.test import Client
from django.utils import timezone

from payments.hosted_tokens import hosted_return_url
from payments.models import Payment
from payments.models import PaymentStatus as S
from tests.gateway_fixtures import drive

from ..callbacks.helpers import pay_pix, receive_and_process
from .helpers import BACK, page_get

pytestmark = pytest.mark.django_db


def _back_to_the_wallet_app(payment: Payment, status: str) -> str:
    return f"{BACK}&payment_id={payment.id}&status={status}"


def test_the_status_turns_paid_within_a_poll_of_the_pix_callback(
    hosted_pix: Any, capture: Any, django_capture_on_commit_callbacks: Any
) -> None:
    payment = drive(hosted_pix()).payment
    assert page_get(payment, "/status").json()["status"] == S.AWAITING_PAYMENT  # now cached

    with django_capture_on_commit_callbacks(execute=True):  # the cache is refreshed on commit
        receive_and_process(payment.gateway, pay_pix(capture, payment))

    state = page_get(payment, "/status", language="en").json()
    assert state == {
        "status": S.SUCCEEDED, "paid": True, "final": True,
        "redirect": _back_to_the_wallet_app(payment, S.SUCCEEDED), "label": "Paid",
    }  # fmt: skip
    html = page_get(payment).content.decode()
    assert 'id="status-text">Pago<' in html
    assert 'id="pix-qr"' not in html
    assert 'id="pix-code"' not in html
    assert f'data-redirect="{_back_to_the_wallet_app(payment, S.SUCCEEDED)}"' in html.replace(
        "&amp;", "&"
    )
    assert 'id="return-link"' in html
    assert page_get(payment, "/qrcode.png").status_code == 404


def test_an_expired_pix_shows_expired_and_no_qr_code(hosted_pix: Any) -> None:
    payment = drive(hosted_pix()).payment
    # Its code ran out; the expiry sweep has not made the payment `expired` yet.
    Payment.objects.filter(pk=payment.pk).update(
        pix_expires_at=timezone.now() - timedelta(seconds=1)
    )
    payment.refresh_from_db()

    response = page_get(payment, language="en")

    html = response.content.decode()
    assert response.status_code == 200
    assert 'id="status-text">Expired<' in html
    assert "This PIX code has expired." in html
    assert 'id="pix-qr"' not in html
    assert payment.pix_qr_code not in html
    assert page_get(payment, "/qrcode.png").status_code == 404
    assert page_get(payment, "/status").json()["status"] == S.EXPIRED
    assert page_get(payment, "/status").json()["final"] is True


def test_a_pix_the_sweep_expired_shows_expired(hosted_pix: Any) -> None:
    payment = drive(hosted_pix()).payment
    Payment.objects.filter(pk=payment.pk).update(status=S.EXPIRED)
    payment.refresh_from_db()

    html = page_get(payment).content.decode()

    assert 'id="status-text">Expirado<' in html
    assert "Este código PIX expirou." in html
    assert 'id="pix-qr"' not in html


def test_a_card_3ds_payment_links_to_the_challenge_and_comes_back_to_the_hosted_page(
    hosted_card: Any, capture: Any, django_capture_on_commit_callbacks: Any
) -> None:
    payment = drive(hosted_card("pm_card_authenticationRequired")).payment
    assert payment.status == S.REQUIRES_ACTION
    challenge = payment.next_action["redirect_to_url"]["url"]

    page = page_get(payment, language="en").content.decode()
    assert f'<a id="action-link" class="button" href="{challenge}"' in page.replace("&amp;", "&")
    assert "Confirm with your bank" in page

    # The payer completes the challenge: the gateway sends the browser to the hosted return
    # page (its own query added) and PayWave the callback.
    answer = httpx.post(challenge, data={"result": "succeed"}, follow_redirects=False)
    assert answer.status_code == 303
    back = urlsplit(answer.headers["Location"])
    expected = urlsplit(hosted_return_url(payment))
    assert (back.path, parse_qs(back.query)["t"]) == (expected.path, parse_qs(expected.query)["t"])
    assert parse_qs(back.query)["redirect_status"] == ["succeeded"]

    returned = Client().get(f"{back.path}?{back.query}", headers={"Accept-Language": "en"})
    assert returned.status_code == 200
    assert "Confirming your payment" in returned.content.decode()
    assert 'id="action-link"' not in returned.content.decode()  # answered: not offered again

    # The callback the challenge built (captured by the simulator, not sent) reaches PayWave.
    delivery = capture.http.get("/callbacks/deliveries", params={"gateway": "stripe"}).json()[-1]
    with django_capture_on_commit_callbacks(execute=True):  # the cache is refreshed on commit
        receive_and_process("stripe", delivery)

    state = page_get(payment, "/status").json()
    assert (state["status"], state["paid"], state["final"]) == (S.SUCCEEDED, True, True)
    assert state["redirect"] == _back_to_the_wallet_app(payment, S.SUCCEEDED)
    done = page_get(payment, "/return", language="en").content.decode()
    assert "Payment received. Thank you!" in done


def test_a_declined_card_ends_on_the_wallet_app_with_its_status(hosted_card: Any) -> None:
    payment = drive(hosted_card("pm_card_chargeDeclined")).payment
    assert payment.status == S.FAILED

    state = page_get(payment, "/status").json()

    assert (state["paid"], state["final"]) == (False, True)
    assert state["redirect"] == _back_to_the_wallet_app(payment, S.FAILED)
    assert "This payment was not completed." in page_get(payment, language="en").content.decode()


def test_a_paypal_payment_sends_the_payer_to_paypals_approval_page(paypal_payment: Any) -> None:
    payment = drive(paypal_payment(hosted=True, return_url=BACK)).payment
    assert payment.status == S.REQUIRES_ACTION

    html = page_get(payment, language="en").content.decode().replace("&amp;", "&")

    assert f'<a id="action-link" class="button" href="{payment.next_action["url"]}"' in html
    assert "Continue to PayPal" in html
