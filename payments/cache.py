"""Payment representations cached by id, never older than the database (see versioned_cache).

The cached payload holds the payer's name and e-mail, so it is encrypted with
PAYWAVE_ENCRYPTION_KEYS like the row it comes from (Redis may be snapshotted to disk
or read by anyone with its password). A payload no configured key opens (its key was
removed) is a miss.
"""

import json
import logging
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from paywave.cache.versioned import versioned_cache
from paywave.encryption import crypto

from .models import Payment
from .serializers import payment_document

logger = logging.getLogger(__name__)


def _key(payment_id: Any) -> str:
    # v2: encrypted payloads (v1 entries, plain JSON, expire within the cache TTL).
    return f"payment:v2:{payment_id}"


def payment_cache_get(payment_id: Any) -> dict[str, Any] | None:
    """{"client_id": ..., "document": {...}} or None on a miss."""
    sealed = versioned_cache().get(_key(payment_id))
    if sealed is None:
        return None
    try:
        return json.loads(crypto.decrypt(sealed))
    except ImproperlyConfigured:
        logger.warning("cached payment %s cannot be decrypted: dropped", payment_id)
        payment_cache_delete(payment_id)
        return None


def payment_cache_delete(payment_id: Any) -> None:
    versioned_cache().delete(_key(payment_id))


def payment_cache_put(payment: Payment, document: dict[str, Any] | None = None) -> dict[str, Any]:
    document = document if document is not None else payment_document(payment)
    entry = {"client_id": str(payment.client_id), "document": document}
    versioned_cache().put(
        _key(payment.id),
        payment.version,
        crypto.encrypt(json.dumps(entry, separators=(",", ":"))),
        settings.PAYWAVE_PAYMENT_CACHE_TTL,
    )
    return document


def payment_cache_refresh(payment_id: Any) -> None:
    """Store the committed state; called on commit by every write."""
    payment = Payment.objects.prefetch_related("attempts").filter(pk=payment_id).first()
    if payment is not None:
        payment_cache_put(payment)
