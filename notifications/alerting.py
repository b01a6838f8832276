"""Operator alerts out of the building: an email and a JSON POST.

Published by paywave.observability.alerts.
"""

import json
import logging
from datetime import UTC, datetime
from typing import Any

import httpx
from django.conf import settings
from django.core.mail import send_mail

logger = logging.getLogger(__name__)

EMAIL = "email"
WEBHOOK = "webhook"


def alert_channels() -> list[str]:
    channels = []
    if settings.PAYWAVE_ALERT_EMAILS:
        channels.append(EMAIL)
    if settings.PAYWAVE_ALERT_WEBHOOK_URL:
        channels.append(WEBHOOK)
    return channels


def alert_send(
    *, kind: str, message: str, context: dict[str, Any], channels: list[str] | None = None
) -> list[str]:
    """Send the alert on `channels` (default: all configured); the channels that failed."""
    failed = []
    for channel in alert_channels() if channels is None else channels:
        try:
            if channel == EMAIL:
                _email(kind, message, context)
            elif channel == WEBHOOK:
                _post(kind, message, context)
        except Exception:
            logger.warning("operator alert %s: %s channel failed", kind, channel, exc_info=True)
            failed.append(channel)
    return failed


def _email(kind: str, message: str, context: dict[str, Any]) -> None:
    lines = [message, "", *(f"{name}: {value}" for name, value in sorted(context.items()))]
    window = settings.PAYWAVE_ALERT_DEDUPE_SECONDS
    lines += ["", f"Mailed at most once every {window} s; the logs (alert={kind}) have them all."]
    send_mail(
        subject=f"[PayWave alert] {kind}: {message}"[:200].replace("\n", " "),
        message="\n".join(lines),
        from_email=settings.PAYWAVE_ALERT_EMAIL_FROM,
        recipient_list=settings.PAYWAVE_ALERT_EMAILS,
    )


def _post(kind: str, message: str, context: dict[str, Any]) -> None:
    body = {
        "alert": kind,
        "message": message,
        "context": context,
        "at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
    }
    timeout = httpx.Timeout(
        connect=settings.PAYWAVE_WEBHOOK_CONNECT_TIMEOUT,
        read=settings.PAYWAVE_WEBHOOK_READ_TIMEOUT,
        write=settings.PAYWAVE_WEBHOOK_READ_TIMEOUT,
        pool=settings.PAYWAVE_WEBHOOK_CONNECT_TIMEOUT,
    )
    response = httpx.post(
        settings.PAYWAVE_ALERT_WEBHOOK_URL,
        content=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "User-Agent": "PayWave-Alerts/1.0"},
        timeout=timeout,
    )
    response.raise_for_status()
