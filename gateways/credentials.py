"""Gateway credentials, only ever from the environment.

Each Gateway row reads `<credentials_prefix><NAME>` (STRIPE_API_KEY for the
default prefix STRIPE_). In sandbox mode a missing value falls back to the
well-known sandbox value the local simulators accept.
"""

import os
from dataclasses import dataclass

from django.conf import settings

from gateways.base import Misconfigured

DEFAULT_PREFIXES = {
    "stripe": "STRIPE_",
    "mercadopago": "MERCADOPAGO_",
    "gerencianet": "GERENCIANET_",
    "paypal": "PAYPAL_",
}

# What the simulators (gateways/simulators) accept; never valid at a real gateway.
SANDBOX_VALUES = {
    "stripe": {"API_KEY": "sk_test_paywave_sandbox", "WEBHOOK_SECRET": "whsec_paywave_sandbox"},
    "mercadopago": {
        "ACCESS_TOKEN": "TEST-paywave-sandbox",
        "WEBHOOK_SECRET": "mp-paywave-sandbox-secret",
    },
    "gerencianet": {
        "CLIENT_ID": "Client_Id_paywave_sandbox",
        "CLIENT_SECRET": "Client_Secret_paywave_sandbox",
        "PIX_KEY": "pix@paywave.example",
        "WEBHOOK_SECRET": "gn-paywave-sandbox-secret",
        "CERT_PEM": "",
    },
    "paypal": {
        "CLIENT_ID": "paywave-sandbox-paypal-client-id",
        "CLIENT_SECRET": "paywave-sandbox-paypal-client-secret",
        "WEBHOOK_ID": "WH-PAYWAVE-SANDBOX",
    },
}


@dataclass(frozen=True)
class Credentials:
    adapter: str
    prefix: str
    sandbox: bool

    def get(self, name: str) -> str:
        value = os.environ.get(f"{self.prefix}{name}", "")
        if not value and self.sandbox:
            value = SANDBOX_VALUES[self.adapter].get(name, "")
        return value

    def require(self, name: str) -> str:
        value = self.get(name)
        if not value:
            raise Misconfigured(f"{self.prefix}{name} is not set", code="missing_credentials")
        return value


def credentials_for(*, adapter: str, prefix: str = "") -> Credentials:
    return Credentials(
        adapter=adapter,
        prefix=prefix or DEFAULT_PREFIXES[adapter],
        sandbox=settings.PAYWAVE_SANDBOX,
    )
