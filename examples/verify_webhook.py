"""Verify PayWave webhook deliveries: a standalone example for wallet apps (stdlib only).

    verify(secret, header, body) -> bool

`secret` is the endpoint's secret (whsec_...) from the answer that created it,
`header` the PayWave-Signature header, `body` the raw request body as bytes,
before any JSON parsing. Run it as a tiny receiver:

    WEBHOOK_SECRET=whsec_... python verify_webhook.py 8080

It answers 204 to a delivery it verified (a 2xx tells PayWave it arrived) and
400 to anything else, a malformed PayWave-Signature header included. See
docs/webhooks.md.
"""

import hashlib
import hmac
import json
import os
import re
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MAX_BODY = 1024 * 1024
MAX_HEADER = 4096
_SIGNATURE = re.compile(r"[0-9a-f]{64}")  # lowercase hex SHA-256
_TIMESTAMP = re.compile(r"[0-9]{1,12}")  # ASCII digits only; no float can overflow


def parse_signature_header(header: str) -> tuple[int, list[bytes]] | None:
    """(t, the well-formed v1 values) of a PayWave-Signature header, or None if malformed."""
    if not isinstance(header, str) or len(header) > MAX_HEADER:
        return None
    timestamp, signatures = None, []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t":
            if timestamp is not None or not _TIMESTAMP.fullmatch(value):
                return None
            timestamp = int(value)
        elif key == "v1" and _SIGNATURE.fullmatch(value):
            signatures.append(value.encode("ascii"))
    if timestamp is None or not signatures:
        return None
    return timestamp, signatures


def verify(
    secret: str, header: str, body: bytes, tolerance: int = 300, now: float | None = None
) -> bool:
    """True if `header` signs `body` with `secret` at a time within `tolerance` seconds of now.

    False for anything else, a missing or malformed header included: it never raises.
    """
    parsed = parse_signature_header(header)
    if parsed is None:
        return False
    timestamp, signatures = parsed
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        return False  # too old (a replay) or from a clock far off
    signed = f"{timestamp}.".encode() + body
    expected = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest().encode("ascii")
    # Constant time, on the whole 64 characters: never ==, never a prefix of it.
    return any(hmac.compare_digest(expected, candidate) for candidate in signatures)


def make_receiver(secret: str, host: str = "127.0.0.1", port: int = 8080) -> ThreadingHTTPServer:
    """An HTTP server that verifies each delivery and handles each event id once."""
    seen: set[str] = set()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            declared = self.headers.get("Content-Length", "")
            length = int(declared) if declared.isascii() and declared.isdigit() else 0
            if not 0 < length <= MAX_BODY:
                return self._answer(400)
            body = self.rfile.read(length)  # the raw bytes: verify before parsing
            # A missing, malformed or wrong signature is a 400, never an error of ours.
            if not verify(secret, self.headers.get("PayWave-Signature", ""), body):
                return self._answer(400)
            event = json.loads(body)
            if event["id"] not in seen:  # deliveries are at least once: dedupe on the id
                seen.add(event["id"])
                print(f"{event['type']} {event['id']}", flush=True)  # handle the event here
            return self._answer(204)

        def _answer(self, status: int) -> None:
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    return ThreadingHTTPServer((host, port), Handler)


if __name__ == "__main__":
    server = make_receiver(
        os.environ["WEBHOOK_SECRET"], port=int(sys.argv[1]) if sys.argv[1:] else 8080
    )
    print(f"listening on http://{server.server_address[0]}:{server.server_address[1]}/")
    server.serve_forever()
