"""The PayWave-Signature header: `t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">`.

The key is the endpoint's whole secret (`whsec_...`) as UTF-8. docs/webhooks.md
and examples/verify_webhook.py show the receiving side.
"""

import hashlib
import hmac
import secrets

SIGNATURE_HEADER = "PayWave-Signature"
SECRET_PREFIX = "whsec_"  # noqa: S105 (a prefix, not a secret)


def webhook_secret_generate() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def signature(secret: str, timestamp: int, body: bytes) -> str:
    signed = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def signature_header(secret: str, timestamp: int, body: bytes) -> str:
    return f"t={timestamp},v1={signature(secret, timestamp, body)}"
