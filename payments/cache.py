"""Payment representations cached by id, never older than the database (see versioned_cache)."""

from typing import Any

from django.conf import settings

from paywave.versioned_cache import versioned_cache

from .models import Payment
from .serializers import payment_document


def _key(payment_id: Any) -> str:
    return f"payment:v1:{payment_id}"


def payment_cache_get(payment_id: Any) -> dict[str, Any] | None:
    """{"client_id": ..., "document": {...}} or None on a miss."""
    return versioned_cache().get(_key(payment_id))


def payment_cache_put(payment: Payment, document: dict[str, Any] | None = None) -> dict[str, Any]:
    document = document if document is not None else payment_document(payment)
    versioned_cache().put(
        _key(payment.id),
        payment.version,
        {"client_id": str(payment.client_id), "document": document},
        settings.PAYWAVE_PAYMENT_CACHE_TTL,
    )
    return document


def payment_cache_refresh(payment_id: Any) -> None:
    """Store the committed state; called on commit by every write."""
    payment = Payment.objects.prefetch_related("attempts").filter(pk=payment_id).first()
    if payment is not None:
        payment_cache_put(payment)
