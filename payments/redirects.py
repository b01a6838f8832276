"""The payer's round trip through a gateway's page that asks for approval (PayPal).

PayWave gives PayPal its own return and cancel pages, not the wallet app's: the
payer's browser comes back through PayWave, which takes the return as the first sign
of an approval (the capture is queued at once) and sends the payer on to the wallet
app's `return_url` (or `cancel_url`). The wallet app's `next_action` names the page
to send the payer to, as for 3-D Secure.
"""

from datetime import timedelta
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from gateways.base import ChargeResult

from .models import Payment, PaymentMethod


def payer_return_url(payment: Payment) -> str:
    return _public(reverse("paypal-return", kwargs={"payment_id": payment.id}))


def payer_cancel_url(payment: Payment) -> str:
    return _public(reverse("paypal-cancel", kwargs={"payment_id": payment.id}))


def awaiting_approval_changes(payment: Payment, result: ChargeResult) -> dict[str, Any]:
    """What a payment that waits for its payer's approval shows and keeps.

    The approval page is at `next_action.url` (and in `redirect_to_url`, the shape 3-D
    Secure has), the return named is the wallet app's own. Reconciliation first reads the
    order one poll interval from now, and the payment expires at `approval_expires_at`.
    """
    if payment.method != PaymentMethod.PAYPAL or not result.next_action:
        return {"next_action": result.next_action}
    url = str((result.next_action.get("redirect_to_url") or {}).get("url") or "")
    now = timezone.now()
    expires_at = payment.approval_expires_at or now + timedelta(
        seconds=settings.PAYWAVE_PAYPAL_APPROVAL_EXPIRES_SECONDS
    )
    return {
        "next_action": {
            "type": "redirect_to_url",
            "url": url,
            "redirect_to_url": {"url": url, "return_url": payment.return_url},
        },
        "approval_expires_at": expires_at,
        "next_attempt_at": now + timedelta(seconds=settings.PAYWAVE_APPROVAL_POLL_SECONDS),
    }


def wallet_app_url(url: str, payment: Payment, outcome: str) -> str:
    """The wallet app's page, told which payment the payer comes back from and how."""
    return url_with_query(url, {"payment_id": str(payment.id), "paypal": outcome})


def url_with_query(url: str, extra: dict[str, str]) -> str:
    """`url` with `extra` added to its query, the query it had kept as it was."""
    parts = urlsplit(url)
    added = urlencode(extra)
    return urlunsplit(parts._replace(query=f"{parts.query}&{added}" if parts.query else added))


def _public(path: str) -> str:
    return f"{settings.PAYWAVE_PUBLIC_URL}{path}"
