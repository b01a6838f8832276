"""Brazilian taxpayer ids: CPF (people) and CNPJ (companies), check digits verified.

CNPJ may be alphanumeric (Receita Federal, from July 2026): twelve characters of
[0-9A-Z] and two numeric check digits, each character worth its ASCII code - 48.
"""

import re

_SEPARATORS = re.compile(r"[.\-/ ]")
_CPF = re.compile(r"[0-9]{11}")
_CNPJ = re.compile(r"[0-9A-Z]{12}[0-9]{2}")


def normalize_tax_id(raw: str) -> str:
    return _SEPARATORS.sub("", raw).upper()


def _check_digit(values: list[int], weights: list[int]) -> int:
    remainder = sum(v * w for v, w in zip(values, weights, strict=True)) % 11
    return 0 if remainder < 2 else 11 - remainder


def is_valid_cpf(digits: str) -> bool:
    if not _CPF.fullmatch(digits) or len(set(digits)) == 1:
        return False
    values = [int(d) for d in digits]
    first = _check_digit(values[:9], list(range(10, 1, -1)))
    second = _check_digit(values[:10], list(range(11, 1, -1)))
    return values[9] == first and values[10] == second


_CNPJ_WEIGHTS_1 = [5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2]
_CNPJ_WEIGHTS_2 = [6, 5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2]


def is_valid_cnpj(value: str) -> bool:
    if not _CNPJ.fullmatch(value) or len(set(value)) == 1:
        return False
    values = [ord(c) - 48 for c in value]
    first = _check_digit(values[:12], _CNPJ_WEIGHTS_1)
    second = _check_digit(values[:13], _CNPJ_WEIGHTS_2)
    return values[12] == first and values[13] == second


def tax_id_kind(normalized: str) -> str | None:
    """ "cpf", "cnpj", or None when the value is neither with valid check digits."""
    if len(normalized) == 11 and is_valid_cpf(normalized):
        return "cpf"
    if len(normalized) == 14 and is_valid_cnpj(normalized):
        return "cnpj"
    return None
