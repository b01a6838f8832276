"""Callbacks (webhooks) to PayWave: where each gateway sends them, how each signs them.

Deliveries are synchronous, attempted once and logged; a failure is reported in the
log and in the answer of the /_sim call that caused it, never raised. A logged
delivery can be sent again (re-signed with a fresh timestamp, as the gateways' own
retries are) to test duplicate handling.
"""

import base64
import hashlib
import hmac
import itertools
import logging
import threading
import time
import urllib.error
import urllib.request
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

logger = logging.getLogger("gateways.simulators.callbacks")


@dataclass(frozen=True)
class CallbackTarget:
    url: str = ""
    secret: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"url": self.url, "secret_set": bool(self.secret)}


@dataclass(frozen=True)
class Outgoing:
    url: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Delivery:
    id: int
    gateway: str
    event: str
    url: str = ""
    delivered: bool = False
    status: int | None = None
    error: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    body: str = ""
    attempted_at: float = field(default_factory=time.time)

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def stripe_signature_header(secret: str, payload: bytes, timestamp: int) -> str:
    signed = f"{timestamp}.".encode() + payload
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def mercadopago_signature_header(secret: str, data_id: str, request_id: str, ts: int) -> str:
    """`ts=<unix seconds>,v1=<hex>` over the manifest that the SDK's
    WebhookSignatureValidator rebuilds."""
    manifest = f"id:{data_id};request-id:{request_id};ts:{ts};"
    digest = hmac.new(secret.encode(), manifest.encode(), hashlib.sha256).hexdigest()
    return f"ts={ts},v1={digest}"


def paypal_signed_string(
    transmission_id: str, transmission_time: str, webhook_id: str, body: bytes
) -> str:
    """What PayPal signs for a webhook: `<transmission id>|<time>|<webhook id>|<CRC32 of body>`
    (the CRC as an unsigned decimal integer)."""
    return f"{transmission_id}|{transmission_time}|{webhook_id}|{zlib.crc32(body)}"


def paypal_transmission_signature(key: bytes, signed_string: str) -> str:
    """Base64 of an HMAC-SHA256 over PayPal's signed string. PayPal's own is RSA with the
    certificate at PAYPAL-CERT-URL; this one only the simulator's verify endpoint checks."""
    digest = hmac.new(key, signed_string.encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def with_query(url: str, params: Mapping[str, str]) -> str:
    """The URL with more query parameters (after any it already has)."""
    return url + ("&" if urlsplit(url).query else "?") + urlencode(params)


def efi_notification_url(webhook_url: str) -> str:
    """Where Efí posts for a registered webhookUrl: "/pix" appended to the URL's text.

    Efí appends to the string, query included, which is why its docs register
    "https://host/webhook?hmac=<secret>&ignorar=": the "/pix" then lands in the
    throwaway `ignorar` parameter and `hmac` survives intact. Registered as
    "...?hmac=<secret>" alone, the notification would carry hmac=<secret>/pix.
    """
    return webhook_url + "/pix"


Builder = Callable[[], Outgoing | None]


class CallbackSender:
    def __init__(
        self, targets: Mapping[str, CallbackTarget] | None = None, *, timeout_s: float = 5.0
    ) -> None:
        self._defaults = dict(targets or {})
        self._timeout_s = timeout_s
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._targets = dict(self._defaults)
            self._log: list[Delivery] = []
            self._builders: dict[int, tuple[str, str, Builder]] = {}
            self._ids = itertools.count(1)

    def target(self, gateway: str) -> CallbackTarget:
        with self._lock:
            return self._targets.get(gateway, CallbackTarget())

    def set_target(self, gateway: str, target: CallbackTarget) -> None:
        with self._lock:
            self._targets[gateway] = target

    def targets_json(self) -> dict[str, Any]:
        with self._lock:
            return {name: target.to_json() for name, target in self._targets.items()}

    def deliveries(self, gateway: str = "") -> list[Delivery]:
        with self._lock:
            return [d for d in self._log if not gateway or d.gateway == gateway]

    def deliver(self, gateway: str, event: str, build: Builder) -> Delivery:
        """Build (sign) and send one callback now; the outcome is logged and returned."""
        with self._lock:
            delivery = Delivery(id=next(self._ids), gateway=gateway, event=event)
            self._builders[delivery.id] = (gateway, event, build)
        self._send(delivery, build)
        with self._lock:
            self._log.append(delivery)
        return delivery

    def redeliver(self, delivery_id: int) -> Delivery | None:
        with self._lock:
            found = self._builders.get(delivery_id)
        if found is None:
            return None
        gateway, event, build = found
        return self.deliver(gateway, event, build)

    def _send(self, delivery: Delivery, build: Builder) -> None:
        outgoing = build()
        if outgoing is None:
            delivery.error = f"no callback URL configured for {delivery.gateway}"
            logger.warning("callback %s not sent: %s", delivery.event, delivery.error)
            return
        delivery.url, delivery.headers = outgoing.url, dict(outgoing.headers)
        delivery.body = outgoing.body.decode("utf-8", "replace")
        if urlsplit(outgoing.url).scheme not in ("http", "https"):
            delivery.error = f"not an http(s) URL: {outgoing.url}"
            return
        request = urllib.request.Request(  # noqa: S310 (scheme checked above)
            outgoing.url, data=outgoing.body, headers=outgoing.headers, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=self._timeout_s) as answer:  # noqa: S310
                delivery.status = answer.status
                delivery.delivered = 200 <= answer.status < 300
        except urllib.error.HTTPError as exc:
            delivery.status = exc.code
            delivery.error = f"HTTP {exc.code}"
        except (urllib.error.URLError, OSError) as exc:
            delivery.error = f"{type(exc).__name__}: {exc}"
        if not delivery.delivered:
            logger.warning(
                "callback %s to %s failed: %s", delivery.event, delivery.url, delivery.error
            )
