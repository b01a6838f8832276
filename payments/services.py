"""Writes on payments; each is one transaction."""

from typing import Any
from uuid import UUID

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from gateways.base import Payer
from paywave.api.errors import NotFound
from paywave.domain_events import publish
from paywave.encryption import crypto
from paywave.queries import insert_row

from .cache import payment_cache_refresh
from .dispatch import gateway_cancel_dispatch, payment_dispatch
from .events import PaymentChanged
from .models import Payment, PaymentEvent, PaymentMethod, PaymentStatus
from .serializers import payment_document
from .transitions import payment_transition


def payment_create(
    *,
    client_id: str,
    amount: int,
    currency: str,
    method: str,
    payer: Payer,
    card_token: str = "",
    pix_expires_in: int | None = None,
    wallet_id: UUID | None = None,
    description: str = "",
    metadata: dict[str, str] | None = None,
    return_url: str = "",
    cancel_url: str = "",
    hosted: bool = False,
) -> tuple[Payment, dict[str, Any]]:
    """Store a pending payment and publish its job once the transaction commits.

    Its creation is its first change (from no status to pending), published in the
    transaction: a subscriber may refuse it (wallets: a `wallet_id` that is not the
    app's own active wallet in `currency`), and nothing is stored.
    Returns the payment and its representation (the API answer, also cached).
    """
    # No savepoint inside the caller's transaction (idempotent_call's): a refusal rolls
    # back the whole of it, the key's answer with the payment.
    with transaction.atomic(savepoint=False):
        payment = Payment(
            client_id=client_id,
            amount=amount,
            currency=currency,
            method=method,
            **payer_columns(payer),
            card_token=card_token if method == PaymentMethod.CARD else "",
            pix_expires_in=(
                pix_expires_in or settings.PAYWAVE_PIX_DEFAULT_EXPIRES_IN
                if method == PaymentMethod.PIX
                else None
            ),
            wallet_id=wallet_id,
            description=description,
            metadata=metadata or {},
            return_url=return_url,
            cancel_url=cancel_url if method == PaymentMethod.PAYPAL else "",
            hosted=hosted,
        )
        insert_row(payment)
        event = PaymentEvent(
            payment=payment,
            from_status="",
            to_status=PaymentStatus.PENDING,
            reason="accepted",
            actor=f"client:{client_id}",
        )
        insert_row(event)
        document = payment_document(payment, attempts=())  # a new payment has none
        publish(
            PaymentChanged(
                payment=payment,
                from_status=event.from_status,
                to_status=event.to_status,
                reason=event.reason,
                actor=event.actor,
                document=document,
            )
        )
        transaction.on_commit(lambda: payment_dispatch(payment.id, payment.dispatch_token))
    return payment, document


def payer_columns(payer: Payer) -> dict[str, str]:
    """A new payment's payer columns: the e-mail normalized, it and the tax id also
    blind-indexed (staff search them without decrypting), the tax id's last four shown."""
    email = payer.email.strip().lower()
    return {
        "payer_name": payer.name,
        "payer_email": email,
        "payer_email_hash": crypto.blind_index(email) if email else "",
        "payer_tax_id": payer.tax_id,
        "payer_tax_id_hash": crypto.blind_index(payer.tax_id) if payer.tax_id else "",
        "payer_tax_id_last4": payer.tax_id[-4:],
        "payer_country": payer.country,
    }


def payment_update_details(
    *,
    client_id: str,
    payment_id: UUID,
    changes: dict[str, Any],
) -> Payment:
    """Change the mutable fields (description, metadata); allowed in every status."""
    allowed = {key: changes[key] for key in ("description", "metadata") if key in changes}
    with transaction.atomic():
        updated = Payment.objects.filter(pk=payment_id, client__pk=client_id).update(
            version=F("version") + 1, updated_at=timezone.now(), **allowed
        )
        if not updated:
            raise NotFound("No such payment.", code="payment_not_found")
        transaction.on_commit(lambda: payment_cache_refresh(payment_id), robust=True)
    return Payment.objects.prefetch_related("attempts").get(pk=payment_id)


def payment_cancel(*, client_id: str, payment_id: UUID, actor: str) -> Payment:
    """Cancel a payment that is still pending or awaiting a PIX transfer (else 409)."""
    if not Payment.objects.filter(pk=payment_id, client__pk=client_id).exists():
        raise NotFound("No such payment.", code="payment_not_found")
    with transaction.atomic():
        payment = payment_transition(
            payment_id=payment_id,
            from_statuses=(PaymentStatus.PENDING, PaymentStatus.AWAITING_PAYMENT),
            to_status=PaymentStatus.CANCELED,
            reason=f"canceled by {actor}",
            actor=actor,
            failure_code="canceled",
            failure_message="The payment was canceled.",
        )
        if payment.gateway_reference:  # a PIX charge the payer could still pay: withdraw it
            transaction.on_commit(lambda: gateway_cancel_dispatch(payment_id))
    return Payment.objects.prefetch_related("attempts").get(pk=payment_id)
