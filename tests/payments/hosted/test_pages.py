"""The hosted page: what it shows the payer, in which language, under which headers."""

import re
from typing import Any

import pytest
from django.contrib.staticfiles import finders

from payments.hosted_tokens import hosted_token
from payments.qrcode import qr_code_png
from tests.gateway_fixtures import drive

from .helpers import EXPECTED_CSP, page_get

pytestmark = pytest.mark.django_db


@pytest.fixture
def awaiting(hosted_pix: Any) -> Any:
    payment = drive(hosted_pix()).payment
    assert payment.status == "awaiting_payment"
    return payment


def test_a_pix_page_shows_the_qr_code_the_copy_code_amount_and_merchant(awaiting: Any) -> None:
    response = page_get(awaiting)

    assert response.status_code == 200
    html = response.content.decode()
    token = hosted_token(awaiting)
    qr = re.search(r'<img id="pix-qr"[^>]* src="([^"]+)"', html)
    assert qr is not None
    assert qr.group(1).startswith(f"/pay/{awaiting.id}/qrcode.png?t=")
    assert re.search(
        r'<textarea id="pix-code"[^>]* readonly[^>]*>' + re.escape(awaiting.pix_qr_code), html
    )
    assert '<label for="pix-code"' in html
    assert re.search(r'<button type="button" id="copy-button"', html)
    assert 'id="amount" class="amount">R$ 10,50<' in html
    assert f'id="merchant">{awaiting.client.name}<' in html
    assert re.search(r'id="status"[^>]*role="status"[^>]*aria-live="polite"', html)
    assert 'id="status-text">Aguardando pagamento<' in html
    assert re.search(r'<time id="pix-countdown"[^>]*data-expires-at="\d+">\d\d:\d\d<', html)
    assert f'data-status-url="/pay/{awaiting.id}/status?t=' in html
    assert token  # the page's links carry the same token
    # The automatic return can be stopped (WCAG 2.2.1); the icon is PayWave's own file.
    assert re.search(r'<button type="button" id="stay-button"[^>]*hidden>Ficar nesta página<', html)
    assert '<link rel="icon" href="/static/payments/hosted/favicon.svg"' in html


def test_the_pages_headers(awaiting: Any) -> None:
    for suffix in ("", "/status", "/qrcode.png", "/return"):
        response = page_get(awaiting, suffix)

        assert response.status_code == 200, suffix
        assert response["Content-Security-Policy"] == EXPECTED_CSP
        assert response["Referrer-Policy"] == "no-referrer"
        assert response["Cache-Control"] == "no-store"
        assert response["X-Frame-Options"] == "DENY"


def test_the_csp_is_on_the_hosted_pages_only(api: Any) -> None:
    assert "Content-Security-Policy" not in api.get("/api/v1/payments")


def test_the_page_loads_nothing_from_elsewhere_and_nothing_inline(awaiting: Any) -> None:
    html = page_get(awaiting).content.decode()

    assert not re.search(r"https?://", html)
    assert "<style" not in html
    assert " style=" not in html
    assert not re.search(r"<script(?![^>]*\bsrc=)", html)  # every script is a file
    assert not re.search(r"\son[a-z]+=", html)  # no inline event handlers
    resources = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert resources
    assert all(url.startswith("/") for url in resources)
    for static in ("payments/hosted/hosted.css", "payments/hosted/hosted.js"):
        assert f"/static/{static}" in html
        assert finders.find(static)


def test_the_qr_code_image_is_the_payments_br_code(awaiting: Any) -> None:
    response = page_get(awaiting, "/qrcode.png")

    assert response["Content-Type"] == "image/png"
    assert response.content == qr_code_png(awaiting.pix_qr_code)


@pytest.mark.parametrize(
    ("accept_language", "lang", "amount", "status"),
    [
        ("pt-BR,pt;q=0.9,en;q=0.8", "pt-BR", "R$ 10,50", "Aguardando pagamento"),
        ("en-US,en;q=0.9,pt-BR;q=0.8", "en", "R$10.50", "Waiting for payment"),
        ("fr-FR,en;q=0.5", "en", "R$10.50", "Waiting for payment"),
        ("fr-FR", "pt-BR", "R$ 10,50", "Aguardando pagamento"),
        (None, "pt-BR", "R$ 10,50", "Aguardando pagamento"),
    ],
)
def test_the_language_follows_the_browser(
    awaiting: Any, accept_language: str | None, lang: str, amount: str, status: str
) -> None:
    response = page_get(awaiting, language=accept_language)

    html = response.content.decode()
    assert f'<html lang="{lang}">' in html
    assert response["Content-Language"] == lang
    assert f'id="amount" class="amount">{amount}<' in html
    assert f'id="status-text">{status}<' in html


def test_a_page_before_the_pix_code_is_ready_waits(hosted_pix: Any) -> None:
    payment = hosted_pix()  # pending: no code yet

    html = page_get(payment).content.decode()

    assert 'id="waiting"' in html
    assert 'id="pix-qr"' not in html
    assert page_get(payment, "/qrcode.png").status_code == 404
    assert page_get(payment, "/status").json() == {
        "status": "pending", "paid": False, "final": False, "redirect": None,
        "label": "Preparando seu pagamento",
    }  # fmt: skip


def test_the_status_json_while_the_pix_waits(awaiting: Any) -> None:
    response = page_get(awaiting, "/status", language="en")

    assert response["Content-Type"] == "application/json"
    assert response.json() == {
        "status": "awaiting_payment", "paid": False, "final": False, "redirect": None,
        "label": "Waiting for payment",
    }  # fmt: skip


def test_only_get_and_head(awaiting: Any) -> None:
    from django.test import Client

    response = Client().post(f"/pay/{awaiting.id}?t={hosted_token(awaiting)}")

    assert response.status_code == 405
