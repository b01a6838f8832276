"""Money is an integer amount of minor units plus an ISO 4217 currency code.

Conversion to a decimal string happens only at a gateway SDK's edge.
"""

from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings

# ISO 4217 minor-unit exponents for currencies whose exponent is not 2.
_EXPONENTS = {
    "BHD": 3, "BIF": 0, "CLF": 4, "CLP": 0, "DJF": 0, "GNF": 0, "IQD": 3, "ISK": 0,
    "JOD": 3, "JPY": 0, "KMF": 0, "KRW": 0, "KWD": 3, "LYD": 3, "OMR": 3, "PYG": 0,
    "RWF": 0, "TND": 3, "UGX": 0, "UYI": 0, "UYW": 4, "VND": 0, "VUV": 0, "XAF": 0,
    "XOF": 0, "XPF": 0,
}  # fmt: skip


def minor_unit_exponent(currency: str) -> int:
    return _EXPONENTS.get(currency, 2)


def supported_currencies() -> frozenset[str]:
    return frozenset(settings.PAYWAVE_CURRENCIES)


@dataclass(frozen=True)
class Money:
    amount: int
    currency: str

    def __post_init__(self) -> None:
        if isinstance(self.amount, bool) or not isinstance(self.amount, int):
            raise TypeError("Money.amount is an integer number of minor units")
        if len(self.currency) != 3 or not self.currency.isalpha() or not self.currency.isupper():
            raise ValueError(f"not an ISO 4217 currency code: {self.currency!r}")

    def to_decimal(self) -> Decimal:
        """Major units, exactly: 1050 BRL -> Decimal('10.50')."""
        exponent = minor_unit_exponent(self.currency)
        return Decimal(self.amount).scaleb(-exponent).quantize(Decimal(1).scaleb(-exponent))

    def to_decimal_string(self) -> str:
        return format(self.to_decimal(), "f")

    @classmethod
    def from_decimal(cls, value: Decimal | str, currency: str) -> "Money":
        """Parse major units exactly; refuse anything finer than the currency's minor unit."""
        exponent = minor_unit_exponent(currency)
        scaled = Decimal(value).scaleb(exponent)
        if scaled != scaled.to_integral_value():
            raise ValueError(f"{value} {currency} is finer than the currency's minor unit")
        return cls(int(scaled), currency)
