"""Reaching a hosted payment's pages as the payer's browser would."""

from typing import Any
from urllib.parse import parse_qs, urlsplit

from django.test import Client

from payments.hosted_tokens import hosted_token
from payments.models import Payment

BACK = "https://wallet.example/checkout/done?order=1001"
EXPECTED_CSP = (
    "default-src 'none'; img-src 'self'; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


def page_get(
    payment: Payment,
    suffix: str = "",
    *,
    token: str | None = None,
    language: str | None = "pt-BR,pt;q=0.9",
) -> Any:
    """GET /pay/<id><suffix>?t=<token> (the payment's own token unless one is given)."""
    headers = {"Accept-Language": language} if language is not None else {}
    query = {"t": hosted_token(payment) if token is None else token}
    return Client().get(f"/pay/{payment.id}{suffix}", query, headers=headers)


def token_of(url: str) -> str:
    return parse_qs(urlsplit(url).query)["t"][0]
