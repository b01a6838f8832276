"""The hosted payment page's reads: which payment a link opens, and what its pages show.

The page shows the payment's status, except that a PIX whose code has expired shows
`expired` at once (the expiry sweep makes the payment `expired` a little later). Once
the payment is final the payer goes on to the wallet app's `return_url`, with
`payment_id` and `status` added to its query: like the gateways' own redirects, that
says where the payer has been; the payment's status is what the wallet app trusts.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit
from uuid import UUID

from django.utils import timezone
from django.utils.dateparse import parse_datetime

from paywave.queries import one_or_none

from .cache import payment_cache_get, payment_cache_put
from .hosted_tokens import HostedLinkInvalid, hosted_token_check
from .models import Payment, PaymentMethod, PaymentStatus
from .redirects import url_with_query
from .serializers import PAYABLE_STATUSES

PAID_STATUSES = frozenset(
    {PaymentStatus.SUCCEEDED, PaymentStatus.PARTIALLY_REFUNDED, PaymentStatus.REFUNDED}
)


@dataclass(frozen=True)
class HostedStatus:
    """What the page's poll reads (`GET /pay/<id>/status`)."""

    status: str
    paid: bool
    final: bool
    redirect: str | None  # the wallet app's return_url, once final

    def as_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "paid": self.paid,
            "final": self.final,
            "redirect": self.redirect,
        }


@dataclass(frozen=True)
class HostedPage:
    payment: Payment
    state: HostedStatus
    merchant: str
    action_url: str | None  # the gateway's page: 3-D Secure challenge, PayPal approval
    pix_code: str | None  # shown (with its QR image) while the PIX can be paid
    pix_expires_at: datetime | None


def hosted_payment_get(payment_id: UUID, token: str) -> Payment:
    """The hosted payment the token opens; raises HostedLinkInvalid / HostedLinkExpired."""
    hosted_token_check(payment_id, token)
    payment = one_or_none(
        Payment.objects.select_related("client").filter(pk=payment_id, hosted=True)
    )
    if payment is None:
        raise HostedLinkInvalid
    return payment


def hosted_status_get(payment_id: UUID, token: str) -> HostedStatus:
    """The poll's answer, from the cached payment document when hot (no query)."""
    hosted_token_check(payment_id, token)
    cached = payment_cache_get(payment_id)
    document = cached["document"] if cached is not None else None
    if document is None:
        document = payment_cache_put(hosted_payment_get(payment_id, token))
    if not document.get("hosted"):
        raise HostedLinkInvalid
    pix = document.get("pix") or {}
    return hosted_status(
        payment_id=document["id"],
        status=document["status"],
        pix_expires_at=parse_datetime(pix["expires_at"]) if pix.get("expires_at") else None,
        return_url=document.get("return_url") or "",
    )


def hosted_page_get(payment: Payment) -> HostedPage:
    state = hosted_status(
        payment_id=str(payment.id),
        status=payment.status,
        pix_expires_at=payment.pix_expires_at,
        return_url=payment.return_url,
    )
    payable_pix = (
        payment.method == PaymentMethod.PIX
        and state.status == PaymentStatus.AWAITING_PAYMENT
        and bool(payment.pix_qr_code)
    )
    return HostedPage(
        payment=payment,
        state=state,
        merchant=payment.client.name,
        action_url=_action_url(payment) if state.status == PaymentStatus.REQUIRES_ACTION else None,
        pix_code=payment.pix_qr_code if payable_pix else None,
        pix_expires_at=payment.pix_expires_at if payable_pix else None,
    )


def hosted_status(
    *, payment_id: str, status: str, pix_expires_at: datetime | None, return_url: str
) -> HostedStatus:
    if (
        status == PaymentStatus.AWAITING_PAYMENT
        and pix_expires_at is not None
        and pix_expires_at <= timezone.now()
    ):
        status = PaymentStatus.EXPIRED
    final = status not in PAYABLE_STATUSES
    redirect = None
    if final and return_url:
        redirect = url_with_query(return_url, {"payment_id": payment_id, "status": status})
    return HostedStatus(status=status, paid=status in PAID_STATUSES, final=final, redirect=redirect)


def _action_url(payment: Payment) -> str | None:
    """The gateway's page the payer must visit (3-D Secure, PayPal approval), if any."""
    action = payment.next_action or {}
    url = str((action.get("redirect_to_url") or {}).get("url") or action.get("url") or "")
    # Only a web page: never a javascript: or data: URL in the page's link.
    return url if urlsplit(url).scheme in ("https", "http") else None
