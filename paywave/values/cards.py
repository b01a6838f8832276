"""Spot primary account numbers (card numbers) so they are refused, never stored.

A run of 13-19 digits (spaces or dashes allowed between them) counts as a card
number when it passes the Luhn check and has the length of a card brand that
starts with those digits; phone numbers and tax ids mostly do not.
"""

import re

_CANDIDATE = re.compile(r"(?<!\d)(?:\d[ -]?){12,18}\d(?!\d)")


def luhn_valid(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def _brand_length_fits(digits: str) -> bool:
    length = len(digits)
    if digits[0] == "4":
        return length in (13, 16, 19)
    if digits[:2] in ("34", "37"):
        return length == 15
    if digits[:2] in ("36", "38", "30"):
        return length in (14, 16)
    if digits[0] == "5" or 2221 <= int(digits[:4]) <= 2720:
        return length == 16
    if digits[0] == "6" or digits[:2] == "35":
        return 16 <= length <= 19
    return False


def looks_like_card_number(text: str) -> bool:
    for match in _CANDIDATE.finditer(text):
        digits = re.sub(r"[ -]", "", match.group())
        if luhn_valid(digits) and _brand_length_fits(digits):
            return True
    return False
