"""Money as staff read it and type it: exact both ways, for every minor-unit exponent."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from paywave.values.money_text import money_display, money_parse

CURRENCIES = ["BRL", "USD", "JPY", "CLP", "KWD", "BHD", "CLF"]


@pytest.mark.parametrize(
    ("amount", "currency", "shown"),
    [
        (8800, "BRL", "88.00 BRL"),
        (1, "BRL", "0.01 BRL"),
        (123_456_789, "BRL", "1,234,567.89 BRL"),
        (-400, "BRL", "-4.00 BRL"),
        (0, "USD", "0.00 USD"),
        (1000, "JPY", "1,000 JPY"),
        (1234, "KWD", "1.234 KWD"),
        (12345, "CLF", "1.2345 CLF"),
        (None, "BRL", "-"),
    ],
)
def test_amounts_are_shown_in_major_units_with_their_currency(
    amount: int | None, currency: str, shown: str
) -> None:
    assert money_display(amount, currency) == shown


@pytest.mark.parametrize(
    ("typed", "currency", "minor"),
    [
        ("12.50", "BRL", 1250),
        ("12,50", "BRL", 1250),
        ("12,5", "BRL", 1250),
        (" 12 ", "BRL", 1200),
        ("0.01", "BRL", 1),
        ("0,10", "USD", 10),
        ("12.500", "BRL", 1250),  # zeros past the minor unit change nothing
        ("1000", "JPY", 1000),
        ("1000.0", "JPY", 1000),
        ("1.234", "KWD", 1234),
        ("1,2345", "CLF", 12345),
        ("92233720368547758.07", "BRL", 9_223_372_036_854_775_807),
        ("0.29", "BRL", 29),  # float(0.29) * 100 is 28.999999999999996
        ("1.005", "KWD", 1005),
    ],
)
def test_typed_major_units_become_exact_minor_units(typed: str, currency: str, minor: int) -> None:
    money = money_parse(typed, currency)
    assert (money.amount, money.currency) == (minor, currency)


@pytest.mark.parametrize(
    ("typed", "currency", "says"),
    [
        ("12.505", "BRL", "finer than 0.01 BRL"),
        ("1.5", "JPY", "finer than 1 JPY"),
        ("0", "BRL", "greater than zero"),
        ("0,00", "BRL", "greater than zero"),
        ("-5", "BRL", "like 12.50 or 12,50"),
        ("1,234.56", "BRL", "no thousands separators"),
        ("1.234,56", "BRL", "no thousands separators"),
        ("12.", "BRL", "like"),
        (".50", "BRL", "like"),
        ("", "BRL", "like"),
        ("abc", "BRL", "like"),
        ("1e3", "BRL", "like"),
        ("NaN", "BRL", "like"),
        ("Infinity", "BRL", "like"),
        ("١٢", "BRL", "like"),  # Arabic-Indic digits, which Decimal() would take
        ("12 50", "BRL", "like"),
        ("R$ 12,50", "BRL", "like"),
        ("12", "JPY", ""),
        ("1000", "JPY", ""),
        ("1,2", "JPY", "finer than 1 JPY"),
        ("x", "JPY", "like 1250:"),
    ],
)
def test_anything_else_is_refused_with_a_reason(typed: str, currency: str, says: str) -> None:
    if not says:
        assert money_parse(typed, currency).amount == int(typed)
        return
    with pytest.raises(ValueError, match=says):
        money_parse(typed, currency)


@given(
    amount=st.integers(min_value=1, max_value=10**18),
    currency=st.sampled_from(CURRENCIES),
    comma=st.booleans(),
)
def test_what_is_shown_is_typed_back_to_the_same_minor_units(
    amount: int, currency: str, comma: bool
) -> None:
    shown = money_display(amount, currency)
    number, code = shown.split(" ")
    typed = number.replace(",", "")
    if comma:
        typed = typed.replace(".", ",")

    assert code == currency
    assert money_parse(typed, currency).amount == amount
