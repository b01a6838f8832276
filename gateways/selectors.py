"""Reading gateway configuration: which gateways may charge a payment, in order."""

from .models import Gateway


def gateway_candidates(*, method: str, currency: str, country: str) -> list[Gateway]:
    """Enabled gateways that support the method, currency and payer country, by priority.

    Circuit state is not considered here: the processing engine prefers closed
    circuits among these and falls back to open ones only when nothing else is left.
    """
    return [
        gateway
        for gateway in Gateway.objects.filter(enabled=True).order_by("priority", "code")
        if gateway.supports(method=method, currency=currency, country=country)
    ]


def gateway_get(code: str) -> Gateway | None:
    return Gateway.objects.filter(code=code).first()
