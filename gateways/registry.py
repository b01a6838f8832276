"""Adapters for Gateway rows, built once per row version and reused (SDK clients, tokens)."""

import threading
from typing import Protocol

from django.conf import settings

from gateways.adapters.gerencianet import GerencianetAdapter
from gateways.adapters.mercadopago import MercadoPagoAdapter
from gateways.adapters.paypal import PayPalAdapter
from gateways.adapters.stripe import StripeAdapter
from gateways.base import GatewayAdapter
from gateways.credentials import Credentials, credentials_for
from gateways.models import AdapterKind, Gateway


class _AdapterClass(Protocol):
    """How every adapter is built (the base class leaves credentials and api_base out)."""

    def __call__(
        self, *, code: str, timeout_seconds: float, credentials: Credentials, api_base: str | None
    ) -> GatewayAdapter: ...


_ADAPTERS: dict[str, _AdapterClass] = {
    AdapterKind.STRIPE: StripeAdapter,
    AdapterKind.MERCADOPAGO: MercadoPagoAdapter,
    AdapterKind.GERENCIANET: GerencianetAdapter,
    AdapterKind.PAYPAL: PayPalAdapter,
}

# Where each adapter's API lives in the simulators (gateways/simulators).
SIMULATOR_PREFIXES: dict[str, str] = {
    AdapterKind.STRIPE: "/stripe",
    AdapterKind.MERCADOPAGO: "/mercadopago",
    AdapterKind.GERENCIANET: "/gerencianet",
    AdapterKind.PAYPAL: "/paypal",
}

_built: dict[tuple[str, str, str, bool], GatewayAdapter] = {}
_lock = threading.Lock()


def adapter_for(gateway: Gateway) -> GatewayAdapter:
    """The adapter for this row; rebuilt when the row or the sandbox switch changes."""
    key = (gateway.code, gateway.updated_at.isoformat(), settings.PAYWAVE_SIMULATOR_URL,
           settings.PAYWAVE_SANDBOX)  # fmt: skip
    with _lock:
        adapter = _built.get(key)
        if adapter is None:
            adapter = _build(gateway)
            for stale in [k for k in _built if k[0] == gateway.code]:
                del _built[stale]
            _built[key] = adapter
    return adapter


def _build(gateway: Gateway) -> GatewayAdapter:
    api_base = None
    if settings.PAYWAVE_SANDBOX:
        api_base = settings.PAYWAVE_SIMULATOR_URL.rstrip("/") + SIMULATOR_PREFIXES[gateway.adapter]
    return _ADAPTERS[gateway.adapter](
        code=gateway.code,
        timeout_seconds=gateway.timeout_ms / 1000,
        credentials=credentials_for(adapter=gateway.adapter, prefix=gateway.credentials_prefix),
        api_base=api_base,
    )
