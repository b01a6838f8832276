import pytest
from django.core.exceptions import ValidationError

from gateways.models import Gateway

pytestmark = pytest.mark.django_db


def test_seed_routes_cards_to_stripe_and_pix_to_mercadopago_then_gerencianet() -> None:
    pix = [g.code for g in Gateway.objects.filter(enabled=True) if "pix" in g.methods]
    card = [g.code for g in Gateway.objects.filter(enabled=True) if "card" in g.methods]

    assert pix == ["mercadopago", "gerencianet"]  # ordered by priority
    assert card == ["stripe"]
    assert Gateway.objects.get(code="stripe").countries == []  # every country


@pytest.mark.parametrize(
    ("method", "currency", "country", "supported"),
    [
        ("pix", "BRL", "BR", True),
        ("pix", "USD", "BR", False),
        ("pix", "BRL", "AR", False),
        ("card", "BRL", "BR", False),
    ],
)
def test_supports(method: str, currency: str, country: str, supported: bool) -> None:
    gateway = Gateway.objects.get(code="mercadopago")

    assert gateway.supports(method=method, currency=currency, country=country) is supported


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("methods", ["card"]),  # Mercado Pago is configured for PIX only
        ("methods", []),
        ("methods", "pix"),
        ("currencies", ["brl"]),
        ("countries", ["XX"]),
        ("countries", "BR"),
    ],
)
def test_clean_refuses_bad_configuration(field: str, value: object) -> None:
    gateway = Gateway.objects.get(code="mercadopago")
    setattr(gateway, field, value)

    with pytest.raises(ValidationError) as raised:
        gateway.clean()

    assert field in raised.value.message_dict
