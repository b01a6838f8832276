"""Operator alerts: something a person must look at.

Each alert is a log line at ERROR with a stable `alert` field (what Kibana and
log-based alerting key on), and the context that makes it actionable.
"""

import logging
from typing import Any

logger = logging.getLogger("paywave.alerts")


class AlertKind:
    GATEWAYS_EXHAUSTED = "gateways_exhausted"
    CIRCUIT_OPENED = "circuit_opened"
    GATEWAY_MISCONFIGURED = "gateway_misconfigured"
    PAYMENT_PARKED = "payment_parked"
    INVALID_GATEWAY_ANSWER = "invalid_gateway_answer"
    LEDGER_INCONSISTENT = "ledger_inconsistent"
    REFUND_PARKED = "refund_parked"
    PAID_AFTER_CANCEL = "paid_after_cancel"


def operator_alert(kind: str, message: str, **context: Any) -> None:
    logger.error(message, extra={"alert": kind, **context})
