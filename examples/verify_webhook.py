"""Verify PayWave webhook deliveries: a standalone example for wallet apps (stdlib only).

    verify(secret, header, body) -> bool

`secret` is the endpoint's secret (whsec_...) from the answer that created it,
`header` the PayWave-Signature header, `body` the raw request body as bytes,
before any JSON parsing. Run it as a tiny receiver:

    WEBHOOK_SECRET=whsec_... python verify_webhook.py 8080

It answers 204 to a delivery it verified (a 2xx tells PayWave it arrived) and
400 to anything else. See docs/webhooks.md.
"""

import hashlib
import hmac
import json
import os
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MAX_BODY = 1024 * 1024


def verify(
    secret: str, header: str, body: bytes, tolerance: int = 300, now: float | None = None
) -> bool:
    """True if `header` signs `body` with `secret` at a time within `tolerance` seconds of now."""
    timestamp, signatures = None, []
    for part in (header or "").split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isdigit():
            timestamp = int(value)
        elif key == "v1":
            signatures.append(value)
    if timestamp is None or not signatures:
        return False
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        return False  # too old (a replay) or from a clock far off
    signed = f"{timestamp}.".encode() + body
    expected = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return any(hmac.compare_digest(expected, candidate) for candidate in signatures)


def make_receiver(secret: str, host: str = "127.0.0.1", port: int = 8080) -> ThreadingHTTPServer:
    """An HTTP server that verifies each delivery and handles each event id once."""
    seen: set[str] = set()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            declared = self.headers.get("Content-Length", "")
            length = int(declared) if declared.isdigit() else 0
            if not 0 < length <= MAX_BODY:
                return self._answer(400)
            body = self.rfile.read(length)  # the raw bytes: verify before parsing
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
