import pytest
from hypothesis import given
from hypothesis import strategies as st

from paywave.values.tax_ids import (
    _check_digit,
    is_valid_cnpj,
    is_valid_cpf,
    normalize_tax_id,
    tax_id_kind,
)


@pytest.mark.parametrize(
    ("raw", "kind"),
    [
        ("123.456.789-09", "cpf"),
        ("12345678909", "cpf"),
        ("529.982.247-25", "cpf"),
        ("11.222.333/0001-81", "cnpj"),
        ("11222333000181", "cnpj"),
        ("12.ABC.345/01DE-35", "cnpj"),  # Receita Federal's alphanumeric example
        ("12.abc.345/01de-35", "cnpj"),
    ],
)
def test_valid_tax_ids(raw: str, kind: str) -> None:
    assert tax_id_kind(normalize_tax_id(raw)) == kind


@pytest.mark.parametrize(
    "raw",
    [
        "123.456.789-00",  # wrong check digits
        "111.111.111-11",  # repeated digits pass the arithmetic but are invalid
        "00000000000",
        "11.222.333/0001-82",
        "11111111111111",
        "12.ABC.345/01DE-36",
        "1234567890",  # too short
        "123456789012",  # 12: neither
        "ABCDEFGHIJK",
        "",
    ],
)
def test_invalid_tax_ids(raw: str) -> None:
    assert tax_id_kind(normalize_tax_id(raw)) is None


def _cpf_from(base: str) -> str:
    values = [int(d) for d in base]
    first = _check_digit(values, list(range(10, 1, -1)))
    second = _check_digit([*values, first], list(range(11, 1, -1)))
    return f"{base}{first}{second}"


@given(st.text(alphabet="0123456789", min_size=9, max_size=9).filter(lambda s: len(set(s)) > 1))
def test_any_cpf_with_computed_digits_is_valid_and_one_digit_off_is_not(base: str) -> None:
    cpf = _cpf_from(base)
    assert is_valid_cpf(cpf)
    tampered = cpf[:-1] + str((int(cpf[-1]) + 1) % 10)
    assert not is_valid_cpf(tampered)


@given(st.text(alphabet="0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=12, max_size=12))
def test_any_cnpj_with_computed_digits_is_valid(base: str) -> None:
    values = [ord(c) - 48 for c in base]
    first = _check_digit(values, [5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2])
    second = _check_digit([*values, first], [6, 5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2])
    cnpj = f"{base}{first}{second}"
    assert is_valid_cnpj(cnpj) == (len(set(cnpj)) > 1)
