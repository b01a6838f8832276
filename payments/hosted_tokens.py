"""The hosted payment page's link: `/pay/<id>?t=<token>`, the payer's only credential.

The token is `django.core.signing` of `[payment id, expires_at]` (salt
"paywave.hosted", signed with DJANGO_SECRET_KEY; SECRET_KEY_FALLBACKS still verify). It
carries no timestamp of its own: `expires_at` is derived from what a payment has from
its creation on, so the same payment always gets the same token, and the payment
document that embeds it (cached per version, replayed for an `Idempotency-Key`, sent
in webhook events) never goes stale:

- PIX: when its code expires, `created_at + pix.expires_in`, plus `PIX_GRACE` so that
  the payer still sees the outcome (paid at the last second, or "expired");
- card and PayPal: `created_at + PAYWAVE_HOSTED_PAGE_TTL_SECONDS`.

A token opens the pages of its own payment only; nothing else about the payer is needed.
"""

from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode
from uuid import UUID

from django.conf import settings
from django.core import signing
from django.urls import reverse
from django.utils import timezone

from .models import Payment, PaymentMethod

SALT = "paywave.hosted"
# A PIX page outlives its code this long, to show how it ended.
PIX_GRACE = timedelta(minutes=15)


class HostedLinkInvalid(Exception):
    """Missing, tampered with, or another payment's: 403."""


class HostedLinkExpired(Exception):
    """Genuine and of this payment, but past its expiry: 410."""


def hosted_link_expires_at(payment: Payment) -> datetime:
    if payment.method == PaymentMethod.PIX:
        return payment.created_at + payment.pix_lifetime + PIX_GRACE
    return payment.created_at + timedelta(seconds=settings.PAYWAVE_HOSTED_PAGE_TTL_SECONDS)


def hosted_token(payment: Payment) -> str:
    expires_at = int(hosted_link_expires_at(payment).timestamp())
    return signing.Signer(salt=SALT).sign_object([str(payment.id), expires_at])


def hosted_token_check(payment_id: UUID, token: str) -> None:
    """Raise unless `token` opens `payment_id`'s pages now."""
    try:
        signed_id, expires_at = signing.Signer(salt=SALT).unsign_object(token)
    except (signing.BadSignature, ValueError, TypeError):
        raise HostedLinkInvalid from None
    if signed_id != str(payment_id) or not isinstance(expires_at, int):
        raise HostedLinkInvalid
    if datetime.fromtimestamp(expires_at, UTC) <= timezone.now():
        raise HostedLinkExpired


def hosted_url(payment: Payment, name: str = "hosted-page") -> str:
    """The absolute URL of one of the payment's hosted pages, its token included."""
    path = reverse(name, kwargs={"payment_id": payment.id})
    query = urlencode({"t": hosted_token(payment)})
    return f"{settings.PAYWAVE_PUBLIC_URL}{path}?{query}"


def hosted_return_url(payment: Payment) -> str:
    """Where a hosted card payment's 3-D Secure page sends the payer back."""
    return hosted_url(payment, "hosted-return")
