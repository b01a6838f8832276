"""Small pieces every adapter uses: header lookup, health timing, TLS failure reading,
an HTTP error status read as what the caller must do."""

import ssl
import time
from collections.abc import Callable, Mapping
from typing import Any

from gateways.base import (
    Ambiguous,
    ChargeNotFound,
    ChargeRequest,
    ChargeResult,
    ChargeStatus,
    Declined,
    ErrorDetails,
    GatewayError,
    HealthResult,
    Misconfigured,
    Retryable,
)
from gateways.transport import exception_chain

# OpenSSL reasons that say a certificate or key is wrong: on this side (ours missing,
# unreadable or refused) or the other (theirs not trusted). Retrying never fixes them.
_CERTIFICATE_REASONS = ("CERTIFICATE", "UNKNOWN_CA", "PEM_LIB", "KEY_VALUES_MISMATCH")


def header(headers: Mapping[str, str], name: str) -> str:
    """A header's value whatever the case of the names in `headers` (HTTP names are not
    case-sensitive; a plain dict of them is)."""
    if name in headers:
        return headers[name]
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value
    return ""


def replay_charge(
    charge: Callable[[ChargeRequest], ChargeResult], request: ChargeRequest
) -> ChargeResult:
    """find_charge for a gateway that keeps an idempotency key's answer: the create sent
    again with the same key answers the charge it made (or makes the one meant), and a
    refusal is a failed charge, not a missing one."""
    try:
        return charge(request)
    except Declined as exc:
        return ChargeResult(
            status=ChargeStatus.FAILED,
            reference="",
            raw_status="declined",
            failure_code=exc.code,
            failure_message=exc.message,
        )


def elapsed_ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


def probe_health(probe: Callable[[], Any]) -> HealthResult:
    """Healthy if the cheap authenticated call answers; its latency either way."""
    started = time.monotonic()
    try:
        probe()
    except GatewayError as exc:
        return HealthResult(False, elapsed_ms(started), f"{exc.outcome}: {exc.message}")
    return HealthResult(True, elapsed_ms(started))


def certificate_failure(exc: BaseException) -> str:
    """The TLS certificate problem behind `exc`, or "" if it is not one.

    A bare EOF or reset during a TLS exchange is not one: it can be a network
    failure after the request was sent, so it stays a transport error.
    """
    for link in exception_chain(exc):
        if isinstance(link, ssl.SSLCertVerificationError):
            return f"the server's certificate is not trusted: {link.verify_message}"
        if isinstance(link, ssl.SSLError) and not isinstance(
            link, ssl.SSLEOFError | ssl.SSLZeroReturnError
        ):
            reason = str(link.reason or "")
            if any(part in reason for part in _CERTIFICATE_REASONS):
                return f"TLS refused: {reason}"
    return ""


def error_for_status(
    status: int, details: ErrorDetails, *, gateway: str, subject: str
) -> GatewayError:
    """A gateway's HTTP error answer by what the caller must do (docs/gateways.md, "What a
    failure means"). `subject`: what the request makes there (a payment, a charge, ...).

    429 and 503 refuse the request before it is processed: Retryable. Any other 5xx (500,
    and 502 or 504 from a load balancer that lost the backend's answer) may come after the
    subject was made: Ambiguous. No status at all, or a success status on an answer that
    could not be read, says nothing of the outcome: Ambiguous too. (Stripe's 5xx are all
    Ambiguous: stripe.py.)
    """
    if status in (401, 403):
        return Misconfigured(f"{gateway}: credentials refused", **details)
    if status == 404:
        return ChargeNotFound(f"{gateway}: no such {subject}", **details)
    if status in (429, 503):
        return Retryable(f"{gateway}: HTTP {status}, not processed", **details)
    if status >= 500:
        return Ambiguous(f"{gateway}: HTTP {status}, the outcome is unknown", **details)
    if status == 0:
        return Ambiguous(f"{gateway}: no status recorded for the answer", **details)
    if 200 <= status < 300:
        return Ambiguous(f"{gateway}: unreadable answer (HTTP {status})", **details)
    return Declined(f"{gateway}: the {subject} was refused", **details)
