"""Money as staff read and type it, converted exactly (never through floats).

Shown: "1,234.56 BRL", "1,000 JPY", "-4.00 BRL": major units with the currency's
minor-unit exponent, grouped by thousands, then the ISO 4217 code.
Typed: "12.50" or "12,50" (either decimal separator), no grouping, no sign.
"""

import re
from decimal import Decimal

from .money import Money, minor_unit_exponent

# ASCII digits only: Decimal() would also take "١٢" or "1e3".
_TYPED = re.compile(r"(?P<whole>[0-9]{1,19})(?:[.,](?P<fraction>[0-9]{1,18}))?")


def money_display(amount: int | None, currency: str) -> str:
    """'88.00 BRL' for 8800 BRL; '-' when there is no amount."""
    if amount is None:
        return "-"
    value = Money(amount, currency).to_decimal()
    return f"{value:,.{minor_unit_exponent(currency)}f} {currency}"


def money_parse(text: str, currency: str) -> Money:
    """Major units typed by a person, exactly in minor units: '12,50' BRL -> 1250.

    Raises ValueError with a message for that person.
    """
    exponent = minor_unit_exponent(currency)
    match = _TYPED.fullmatch(text.strip())
    if match is None:
        example = f"{Decimal(1250).scaleb(-exponent):.{exponent}f}"
        like = f"{example} or {example.replace('.', ',')}" if exponent else example
        raise ValueError(
            f"Enter an amount in {currency} like {like}: digits and at most one decimal "
            "separator, no thousands separators."
        )
    fraction = (match["fraction"] or "").rstrip("0")
    if len(fraction) > exponent:
        raise ValueError(f"{currency} has no amounts finer than {money_display(1, currency)}.")
    money = Money.from_decimal(Decimal(f"{match['whole']}.{fraction or '0'}"), currency)
    if money.amount <= 0:
        raise ValueError("Enter an amount greater than zero.")
    return money


# The symbols payers in Brazil and English readers know; others are written as their code.
_SYMBOLS = {"BRL": "R$", "USD": "US$", "EUR": "€", "GBP": "£"}


def money_for_payer(amount: int, currency: str, language: str) -> str:
    """Money as the payer's language writes it: 'R$ 1.234,50' (pt-BR), 'R$1,234.50' (en)."""
    value = Money(amount, currency).to_decimal()
    english = f"{value:,.{minor_unit_exponent(currency)}f}"
    symbol = _SYMBOLS.get(currency)
    if language.lower().startswith("pt"):
        number = english.translate(str.maketrans(",.", ".,"))
        return f"{symbol} {number}" if symbol else f"{currency} {number}"
    return f"{symbol}{english}" if symbol else f"{currency} {english}"
