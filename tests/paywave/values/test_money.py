from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from paywave.values.money import Money, minor_unit_exponent


@pytest.mark.parametrize(
    ("amount", "currency", "expected"),
    [
        (1050, "BRL", "10.50"),
        (1, "BRL", "0.01"),
        (100, "USD", "1.00"),
        (99_999_999, "BRL", "999999.99"),
        (500, "JPY", "500"),
        (500, "CLP", "500"),
        (1234, "KWD", "1.234"),
        (1, "BHD", "0.001"),
    ],
)
def test_minor_units_to_decimal_string(amount: int, currency: str, expected: str) -> None:
    assert Money(amount, currency).to_decimal_string() == expected


@pytest.mark.parametrize(
    ("value", "currency", "expected"),
    [("10.50", "BRL", 1050), ("10.5", "BRL", 1050), ("0.01", "USD", 1), ("500", "JPY", 500)],
)
def test_decimal_to_minor_units(value: str, currency: str, expected: int) -> None:
    assert Money.from_decimal(value, currency) == Money(expected, currency)


@pytest.mark.parametrize(("value", "currency"), [("10.505", "BRL"), ("1.5", "JPY")])
def test_finer_than_minor_unit_is_refused(value: str, currency: str) -> None:
    with pytest.raises(ValueError, match="finer"):
        Money.from_decimal(value, currency)


@pytest.mark.parametrize("amount", [10.5, "1050", True, Decimal("10.50")])
def test_money_amount_is_an_integer(amount: object) -> None:
    with pytest.raises(TypeError):
        Money(amount, "BRL")  # type: ignore[arg-type]


@pytest.mark.parametrize("currency", ["brl", "BR", "BRLX", "12A"])
def test_money_currency_is_iso_shaped(currency: str) -> None:
    with pytest.raises(ValueError, match="ISO 4217"):
        Money(100, currency)


def test_exponents() -> None:
    assert [minor_unit_exponent(c) for c in ("BRL", "USD", "JPY", "KWD")] == [2, 2, 0, 3]


@given(
    amount=st.integers(min_value=-(10**15), max_value=10**15),
    currency=st.sampled_from(["BRL", "USD", "JPY", "KWD", "CLF"]),
)
def test_round_trip_is_exact(amount: int, currency: str) -> None:
    money = Money(amount, currency)
    assert Money.from_decimal(money.to_decimal_string(), currency) == money
