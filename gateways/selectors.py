"""Reading gateway configuration: which gateways may charge a payment, in order."""

from .models import Gateway
from .table import gateway_table


def gateway_candidates(*, method: str, currency: str, country: str) -> list[Gateway]:
    """Enabled gateways that support the method, currency and payer country, by priority.

    Circuit state is not considered here: the processing engine prefers closed
    circuits among these and falls back to open ones only when nothing else is left.
    """
    return [
        gateway
        for gateway in gateway_table()
        if gateway.enabled and gateway.supports(method=method, currency=currency, country=country)
    ]


def gateway_get(code: str) -> Gateway | None:
    return Gateway.objects.filter(code=code).first()


def gateway_routed(code: str, *, enabled_only: bool = False) -> Gateway | None:
    """A gateway as routing sees it (the cached table: gateways.table)."""
    for gateway in gateway_table():
        if gateway.code == code and (gateway.enabled or not enabled_only):
            return gateway
    return None
