"""The hosted page's token: signed, expiring, for one payment only; no login."""

from datetime import timedelta
from typing import Any

import pytest
from django.conf import LazySettings
from django.core import signing
from django.utils import timezone

from payments.hosted_tokens import (
    SALT,
    HostedLinkExpired,
    HostedLinkInvalid,
    hosted_link_expires_at,
    hosted_token,
    hosted_token_check,
)
from payments.models import Payment

from .helpers import page_get

pytestmark = pytest.mark.django_db

SUFFIXES = ["", "/status", "/qrcode.png", "/return"]


def _age(payment: Payment, **ago: float) -> Payment:
    Payment.objects.filter(pk=payment.pk).update(created_at=timezone.now() - timedelta(**ago))
    payment.refresh_from_db()
    return payment


def test_a_token_is_deterministic_and_opens_its_payment(hosted_pix: Any) -> None:
    payment = hosted_pix()

    assert hosted_token(payment) == hosted_token(Payment.objects.get(pk=payment.pk))
    hosted_token_check(payment.id, hosted_token(payment))


def test_a_pix_link_lasts_until_its_code_expires_and_a_card_link_the_setting(
    hosted_pix: Any, hosted_card: Any, settings: LazySettings
) -> None:
    settings.PAYWAVE_HOSTED_PAGE_TTL_SECONDS = 7200
    pix, card = hosted_pix(pix_expires_in=600), hosted_card()

    assert hosted_link_expires_at(pix) - pix.created_at == timedelta(minutes=10 + 15)
    assert hosted_link_expires_at(card) - card.created_at == timedelta(hours=2)


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_a_tampered_token_is_a_403_page(hosted_pix: Any, suffix: str) -> None:
    payment = hosted_pix()
    token = hosted_token(payment)
    tampered = token[:-1] + ("A" if token[-1] != "A" else "B")

    response = page_get(payment, suffix, token=tampered)

    assert response.status_code == 403
    if suffix == "/status":  # the page's script reads it: an answer it can read
        assert response.json() == {"error": {"code": "link_invalid"}}
    else:
        assert response["Content-Type"].startswith("text/html")
        assert b'id="error-title"' in response.content
    assert b"Ana Souza" not in response.content


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_a_missing_token_is_a_403_page(hosted_pix: Any, suffix: str) -> None:
    assert page_get(hosted_pix(), suffix, token="").status_code == 403


def test_another_payments_token_is_a_403_and_shows_nothing_of_either(hosted_pix: Any) -> None:
    mine, theirs = hosted_pix(amount=1111), hosted_pix(amount=2222)

    response = page_get(mine, token=hosted_token(theirs))

    assert response.status_code == 403
    html = response.content.decode()
    assert "11,11" not in html
    assert "22,22" not in html
    assert theirs.client.name not in html
    assert mine.client.name not in html
    assert str(theirs.id) not in html


def test_a_token_signed_for_a_payment_that_is_not_hosted_is_refused(pix_payment: Any) -> None:
    payment = pix_payment()  # not hosted: PayWave never gives out such a link

    assert page_get(payment).status_code == 403


def test_a_token_signed_with_another_salt_is_refused(hosted_pix: Any) -> None:
    payment = hosted_pix()
    expires = int(hosted_link_expires_at(payment).timestamp())
    forged = signing.Signer(salt="not-" + SALT).sign_object([str(payment.id), expires])

    with pytest.raises(HostedLinkInvalid):
        hosted_token_check(payment.id, forged)
    assert page_get(payment, token=forged).status_code == 403


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_an_expired_link_is_a_410_page_in_the_payers_language(
    hosted_card: Any, settings: LazySettings, suffix: str
) -> None:
    settings.PAYWAVE_HOSTED_PAGE_TTL_SECONDS = 3600
    payment = _age(hosted_card(), hours=2)

    with pytest.raises(HostedLinkExpired):
        hosted_token_check(payment.id, hosted_token(payment))
    pt = page_get(payment, suffix)
    en = page_get(payment, suffix, language="en-US,en;q=0.9")

    assert (pt.status_code, en.status_code) == (410, 410)
    if suffix == "/status":  # the page's script reads it: an answer it can read
        assert pt.json() == en.json() == {"error": {"code": "link_expired"}}
    else:
        assert "Link de pagamento expirado" in pt.content.decode()
        assert "Payment link expired" in en.content.decode()
    assert b"10,50" not in pt.content
    assert b"10.50" not in en.content


def test_the_error_pages_are_in_the_payers_language(hosted_pix: Any) -> None:
    payment = hosted_pix()

    pt = page_get(payment, token="nope")
    en = page_get(payment, token="nope", language="en")

    assert '<html lang="pt-BR">' in pt.content.decode()
    assert "Link de pagamento inválido" in pt.content.decode()
    assert '<html lang="en">' in en.content.decode()
    assert "Invalid payment link" in en.content.decode()
    for response in (pt, en):
        assert response["Cache-Control"] == "no-store"
        assert "default-src 'none'" in response["Content-Security-Policy"]
