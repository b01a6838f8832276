"""What a simulator run accepts and where it calls back: constructor values or environment."""

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from gateways.simulators.callbacks import CallbackTarget
from gateways.simulators.faults import DEFAULT_HANG_MS

# The well-known sandbox values; they must match SANDBOX_VALUES in gateways/credentials.py
# (a test checks), so `make run` works with no configuration at all.
SANDBOX_GERENCIANET_CLIENT_ID = "Client_Id_paywave_sandbox"
SANDBOX_GERENCIANET_CLIENT_SECRET = "Client_Secret_paywave_sandbox"  # noqa: S105 (sandbox only)
SANDBOX_PAYPAL_CLIENT_ID = "paywave-sandbox-paypal-client-id"
SANDBOX_PAYPAL_CLIENT_SECRET = "paywave-sandbox-paypal-client-secret"  # noqa: S105 (sandbox only)
# PayPal signs with its own key, not a shared secret: its callback target's `secret` is the
# webhook id, which PayPal puts in the signed string and the receiver passes to
# /v1/notifications/verify-webhook-signature.
SANDBOX_WEBHOOK_SECRETS = {
    "stripe": "whsec_paywave_sandbox",
    "mercadopago": "mp-paywave-sandbox-secret",
    "gerencianet": "gn-paywave-sandbox-secret",
    "paypal": "WH-PAYWAVE-SANDBOX",
}


def default_callbacks() -> dict[str, CallbackTarget]:
    """No URL (nothing is sent until one is set), the sandbox secrets."""
    return {name: CallbackTarget("", secret) for name, secret in SANDBOX_WEBHOOK_SECRETS.items()}


@dataclass(frozen=True)
class SimulatorConfig:
    # None accepts any test-mode secret key (sk_test_...); a set accepts only those keys.
    stripe_api_keys: frozenset[str] | None = None
    # None accepts any non-empty bearer token; a set accepts only those tokens.
    mercadopago_access_tokens: frozenset[str] | None = None
    gerencianet_client_id: str = SANDBOX_GERENCIANET_CLIENT_ID
    gerencianet_client_secret: str = SANDBOX_GERENCIANET_CLIENT_SECRET
    paypal_client_id: str = SANDBOX_PAYPAL_CLIENT_ID
    paypal_client_secret: str = SANDBOX_PAYPAL_CLIENT_SECRET
    callbacks: Mapping[str, CallbackTarget] = field(default_factory=default_callbacks)
    callback_timeout_s: float = 5.0
    hang_ms: int = DEFAULT_HANG_MS  # how long a `timeout_rate` fault holds the connection
    public_url: str = ""  # base of links in answers (3-D Secure page); default: the server's URL
    # SQLite file that keeps the state across restarts (store.py); "" keeps it in memory only.
    state_file: str = ""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "SimulatorConfig":
        """SIM_<GATEWAY>_WEBHOOK_URL / _WEBHOOK_SECRET (PayPal's: the webhook id),
        SIM_GERENCIANET_CLIENT_ID / _SECRET, SIM_PAYPAL_CLIENT_ID / _SECRET,
        SIM_STRIPE_API_KEYS / SIM_MERCADOPAGO_ACCESS_TOKENS (comma-separated), SIM_HANG_MS,
        SIM_CALLBACK_TIMEOUT_S, SIM_PUBLIC_URL, SIM_STATE_FILE."""
        env = os.environ if environ is None else environ
        callbacks = {
            name: CallbackTarget(
                env.get(f"SIM_{name.upper()}_WEBHOOK_URL", ""),
                env.get(f"SIM_{name.upper()}_WEBHOOK_SECRET", secret),
            )
            for name, secret in SANDBOX_WEBHOOK_SECRETS.items()
        }
        return cls(
            stripe_api_keys=_key_set(env.get("SIM_STRIPE_API_KEYS", "")),
            mercadopago_access_tokens=_key_set(env.get("SIM_MERCADOPAGO_ACCESS_TOKENS", "")),
            gerencianet_client_id=env.get(
                "SIM_GERENCIANET_CLIENT_ID", SANDBOX_GERENCIANET_CLIENT_ID
            ),
            gerencianet_client_secret=env.get(
                "SIM_GERENCIANET_CLIENT_SECRET", SANDBOX_GERENCIANET_CLIENT_SECRET
            ),
            paypal_client_id=env.get("SIM_PAYPAL_CLIENT_ID", SANDBOX_PAYPAL_CLIENT_ID),
            paypal_client_secret=env.get("SIM_PAYPAL_CLIENT_SECRET", SANDBOX_PAYPAL_CLIENT_SECRET),
            callbacks=callbacks,
            callback_timeout_s=float(env.get("SIM_CALLBACK_TIMEOUT_S", "5")),
            hang_ms=int(env.get("SIM_HANG_MS", str(DEFAULT_HANG_MS))),
            public_url=env.get("SIM_PUBLIC_URL", ""),
            state_file=env.get("SIM_STATE_FILE", ""),
        )


def _key_set(text: str) -> frozenset[str] | None:
    keys = frozenset(part.strip() for part in text.split(",") if part.strip())
    return keys or None
