"""What payments itself does about a payment change, once it commits (see apps.py)."""

from paywave.observability.metrics import record_transition

from .cache import payment_cache_put
from .events import PaymentChanged


def payment_cache_write(change: PaymentChanged) -> None:
    """Exactly what commits: stored in the cache without reading it back."""
    payment_cache_put(change.payment, change.document)


def payment_change_count(change: PaymentChanged) -> None:
    payment = change.payment
    record_transition(
        change.to_status,
        payment.method,
        payment.gateway or None,
        payment_id=payment.id,
        from_status=change.from_status or None,  # a creation comes from no status
    )
