import pytest

from paywave.values.cards import looks_like_card_number, luhn_valid


@pytest.mark.parametrize(
    "text",
    [
        "4242424242424242",
        "4111 1111 1111 1111",
        "5555-5555-5555-4444",
        "378282246310005",  # Amex
        "6011111111111117",  # Discover
        "6362970000457013",  # Elo
        "2223003122003222",  # Mastercard 2-series
        "my card is 4000056655665556 thanks",
    ],
)
def test_card_numbers_are_spotted(text: str) -> None:
    assert looks_like_card_number(text)


@pytest.mark.parametrize(
    "text",
    [
        "pm_card_visa",
        "4242424242424241",  # Luhn fails
        "5511912345678",  # a Brazilian phone number with country code
        "12345678909",  # a CPF
        "11222333000181",  # a CNPJ
        "order 2026112200001",
        "",
    ],
)
def test_other_numbers_are_not(text: str) -> None:
    assert not looks_like_card_number(text)


def test_luhn() -> None:
    assert luhn_valid("79927398713")
    assert not luhn_valid("79927398710")
