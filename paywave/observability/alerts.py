"""Operator alerts: something a person must look at.

Each alert is a log line at ERROR with a stable `alert` field (what Kibana and
log-based alerting key on), and the context that makes it actionable.

It is also mailed to PAYWAVE_ALERT_EMAILS and POSTed to PAYWAVE_ALERT_WEBHOOK_URL by
the sender an app registers (notifications, from its AppConfig.ready, publishes its
`notifications.send_alert` job), called after the caller's transaction commits (at
once outside one), at most once per (kind, dedupe_key) in PAYWAVE_ALERT_DEDUPE_SECONDS:
a storm of one kind sends one message, the rest are in the logs. With no sender
registered an alert is logged only. Nothing here raises into the caller.
"""

import logging
import threading
import time
from collections.abc import Callable
from functools import partial
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import transaction

from paywave.observability.metrics import operator_alerts_start_at_zero, record_operator_alert

logger = logging.getLogger("paywave.alerts")

# What sends an alert's messages: the app that sends them registers it, as the kernel
# imports no app. `send(kind, message, context)` raises if it cannot.
_senders: list[Callable[[str, str, dict[str, Any]], None]] = []
# Dedupe when the cache cannot answer: per process, rather than one message per alert.
_sent_here: dict[str, float] = {}
_sent_here_lock = threading.Lock()


class AlertKind:
    GATEWAYS_EXHAUSTED = "gateways_exhausted"
    CIRCUIT_OPENED = "circuit_opened"
    GATEWAY_MISCONFIGURED = "gateway_misconfigured"
    PAYMENT_PARKED = "payment_parked"
    INVALID_GATEWAY_ANSWER = "invalid_gateway_answer"
    LEDGER_INCONSISTENT = "ledger_inconsistent"
    REFUND_PARKED = "refund_parked"
    PAID_AFTER_CANCEL = "paid_after_cancel"
    WEBHOOK_ENDPOINT_DISABLED = "webhook_endpoint_disabled"
    AMOUNT_MISMATCH = "gateway_amount_mismatch"  # a charge read back is not the payment's
    CHARGE_REVERSED = "charge_reversed"  # a charge read back was refunded or disputed
    EXTRA_PAYMENT_REFUNDED = "extra_payment_refunded"  # a second payment for one payment
    ORPHAN_UNRESOLVED = "orphan_unresolved"  # a charge left behind that nobody could withdraw
    DISPUTE_OPENED = "dispute_opened"  # a payer disputes a payment: evidence may be due
    DISPUTE_RECEIVABLE = "dispute_receivable"  # a dispute took more than its wallet held
    DISPUTE_UNMATCHED = "dispute_unmatched"  # a dispute PayWave cannot tie to its payment

    @classmethod
    def all(cls) -> list[str]:
        return [value for name, value in vars(cls).items() if name.isupper()]


operator_alerts_start_at_zero(AlertKind.all())


def alert_sender_register(send: Callable[[str, str, dict[str, Any]], None]) -> None:
    """`send(kind, message, context)` hands the alert to its channels; it raises if it cannot."""
    _senders[:] = [send]


def operator_alert(kind: str, message: str, *, dedupe_key: str = "", **context: Any) -> None:
    """Log the alert now; mail and POST it after the commit. `dedupe_key` narrows the dedupe."""
    logger.error(message, extra={"alert": kind, **context})
    record_operator_alert(kind)
    try:
        if settings.PAYWAVE_ALERT_EMAILS or settings.PAYWAVE_ALERT_WEBHOOK_URL:
            safe = {
                name: value if isinstance(value, str | int | float | bool | None) else str(value)
                for name, value in context.items()
            }
            send = partial(_publish_alert, kind, message, dedupe_key, safe)
            transaction.on_commit(send, robust=True)
    except Exception:
        logger.warning("operator alert %s not sent (logged only)", kind, exc_info=True)


def _first_in_window(kind: str, dedupe_key: str) -> bool:
    window = settings.PAYWAVE_ALERT_DEDUPE_SECONDS
    key = f"paywave:alert:{kind}:{dedupe_key}"
    try:
        return bool(cache.add(key, 1, timeout=window))
    except Exception:
        now = time.monotonic()
        with _sent_here_lock:
            if now - _sent_here.get(key, float("-inf")) < window:
                return False
            _sent_here[key] = now
            return True


def _publish_alert(kind: str, message: str, dedupe_key: str, context: dict[str, Any]) -> None:
    try:
        if not _senders:
            logger.warning("operator alert %s not sent: no alert sender (logged only)", kind)
            return
        if not _first_in_window(kind, dedupe_key):
            return
        _senders[0](kind, message, context)
    except Exception:
        logger.warning("operator alert %s not sent (logged only)", kind, exc_info=True)
