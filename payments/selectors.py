"""Reads on payments, always scoped to the wallet app that owns them."""

from datetime import datetime
from typing import Any
from uuid import UUID

from django.db.models import QuerySet

from paywave.api.errors import NotFound
from paywave.queries import one_or_none

from .cache import payment_cache_get, payment_cache_put
from .models import Payment


def _not_found() -> NotFound:
    # Another wallet app's payment is as invisible as one that does not exist.
    return NotFound("No such payment.", code="payment_not_found")


def payment_document_get(*, client_id: str, payment_id: UUID) -> dict[str, Any]:
    """The payment's representation: from the cache when hot, else the database (then cached)."""
    cached = payment_cache_get(payment_id)
    if cached is not None:
        if cached["client_id"] != client_id:
            raise _not_found()
        return cached["document"]
    payment = payment_get(client_id=client_id, payment_id=payment_id)
    return payment_cache_put(payment)


def payment_get(*, client_id: str, payment_id: UUID) -> Payment:
    payment = one_or_none(
        Payment.objects.prefetch_related("attempts").filter(pk=payment_id, client__pk=client_id)
    )
    if payment is None:
        raise _not_found()
    return payment


def payment_list(
    *,
    client_id: str,
    status: str | None = None,
    method: str | None = None,
    created_after: datetime | None = None,
    created_before: datetime | None = None,
) -> QuerySet[Payment]:
    payments = Payment.objects.filter(client__pk=client_id).prefetch_related("attempts")
    if status:
        payments = payments.filter(status=status)
    if method:
        payments = payments.filter(method=method)
    if created_after:
        payments = payments.filter(created_at__gte=created_after)
    if created_before:
        payments = payments.filter(created_at__lt=created_before)
    return payments
