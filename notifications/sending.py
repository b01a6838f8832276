"""One signed POST of an event to an endpoint, bounded in time and in what is read back."""

import json
import threading
import time
from dataclasses import dataclass
from datetime import UTC
from typing import Any

import httpx
from django.conf import settings

from .models import Event
from .signing import SIGNATURE_HEADER, signature_header
from .transport import CheckedAddressTransport, UnsafeAddress

USER_AGENT = "PayWave-Webhooks/1.0 (+https://paywave.example/docs/webhooks)"
EXCERPT_CHARS = 500
_READ_AT_MOST = 4096  # bytes of the answer read for the excerpt; the rest is not downloaded


@dataclass(frozen=True)
class SendResult:
    status_code: int | None
    latency_ms: int
    response_excerpt: str = ""
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def event_payload(event: Event) -> dict[str, Any]:
    created_at = event.created_at.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return {"id": event.public_id, "type": event.type, "created_at": created_at, "data": event.data}


def event_body(event: Event) -> bytes:
    return json.dumps(event_payload(event), separators=(",", ":"), ensure_ascii=False).encode()


def _text(raw: str) -> str:
    # NUL cannot be stored in a PostgreSQL text column.
    return raw.replace("\x00", "\ufffd")[:EXCERPT_CHARS]


_shared: httpx.Client | None = None
_shared_lock = threading.Lock()


def _client() -> httpx.Client:
    """One client for every delivery of the process (httpx clients are thread-safe).

    Building one per POST costs a new TLS context (the CA bundle read and parsed) and a
    new connection; this one keeps connections to wallet apps alive between deliveries.
    Every connection it opens goes to an address checked by `notifications.addresses`
    (outside the sandbox: public only), see `notifications.transport`.
    """
    global _shared
    if _shared is None:
        with _shared_lock:
            if _shared is None:
                transport = CheckedAddressTransport(
                    limits=httpx.Limits(max_connections=64, max_keepalive_connections=32),
                    allow_private=lambda: settings.PAYWAVE_WEBHOOK_ALLOW_PRIVATE,
                )
                # trust_env=False: an HTTP(S)_PROXY from the environment would be mounted in
                # place of the transport above and resolve the name itself, unchecked.
                _shared = httpx.Client(transport=transport, follow_redirects=False, trust_env=False)
    return _shared


def webhook_post(*, url: str, secret: str, body: bytes) -> SendResult:
    """POST `body` signed with `secret`; never raises for what the network or receiver does."""
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "Accept-Encoding": "identity",  # the excerpt is read raw: nothing to decompress
        SIGNATURE_HEADER: signature_header(secret, int(time.time()), body),
    }
    started = time.monotonic()

    def elapsed_ms() -> int:
        return int((time.monotonic() - started) * 1000)

    connect = settings.PAYWAVE_WEBHOOK_CONNECT_TIMEOUT
    read = settings.PAYWAVE_WEBHOOK_READ_TIMEOUT
    timeout = httpx.Timeout(connect=connect, read=read, write=read, pool=connect)
    try:
        # No redirects: a 3xx is a failure, never a trip to wherever it points.
        with _client().stream(
            "POST", url, content=body, headers=headers, timeout=timeout, follow_redirects=False
        ) as response:
            latency = elapsed_ms()
            received = bytearray()
            for chunk in response.iter_raw():
                received += chunk
                if len(received) >= _READ_AT_MOST:
                    break
    except UnsafeAddress as exc:  # raised when the connection is opened, see transport.py
        return SendResult(None, elapsed_ms(), error=_text(f"refused: {exc}"))
    except httpx.TimeoutException as exc:
        return SendResult(None, elapsed_ms(), error=_text(f"timeout ({type(exc).__name__})"))
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        return SendResult(None, elapsed_ms(), error=_text(f"{type(exc).__name__}: {exc}"))
    excerpt = _text(bytes(received).decode("utf-8", errors="replace"))
    error = "" if 200 <= response.status_code < 300 else f"HTTP {response.status_code}"
    return SendResult(response.status_code, latency, excerpt, error)
