"""Amounts: integer minor units inside, each gateway's own spelling on the wire."""

from decimal import Decimal, InvalidOperation


class AmountError(ValueError):
    """A wire amount that is not a positive value with at most two decimal places."""


def minor_from_major(value: object) -> int:
    """Centavos from a major-unit amount (Decimal, int or decimal string); exact or refused."""
    if isinstance(value, bool) or not isinstance(value, Decimal | int | str):
        raise AmountError(f"not a decimal amount: {value!r}")
    try:
        amount = Decimal(value) if not isinstance(value, Decimal) else value
    except InvalidOperation as exc:
        raise AmountError(f"not a decimal amount: {value!r}") from exc
    if not amount.is_finite():
        raise AmountError(f"not a finite amount: {value!r}")
    minor = amount * 100
    if minor != minor.to_integral_value():
        raise AmountError(f"more than two decimal places: {value!r}")
    return int(minor)


def major_string(minor: int) -> str:
    """ "10.50" for 1050: how BCB API Pix and BR Codes write amounts."""
    sign = "-" if minor < 0 else ""
    whole, cents = divmod(abs(minor), 100)
    return f"{sign}{whole}.{cents:02d}"


def major_number(minor: int) -> float:
    """Mercado Pago's JSON number for an amount.

    The wire format is a JSON number; a float made from the exact two-decimal value
    has that value as its shortest repr, so `json.dumps` writes it exactly.
    """
    return float(Decimal(minor) / 100)
