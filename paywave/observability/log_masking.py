"""Keep secrets, card numbers and tax ids out of the logs, whatever a caller passes.

`MaskingFilter` rewrites each record before any handler formats it: the message
(rendered with its args), the extra fields (by name and by value, nested dicts and
lists included), the exception text and the stack. Masking is idempotent, so
every handler may run the filter again.
"""

import functools
import itertools
import logging
import re
import traceback
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote_plus

from paywave.values.cards import luhn_valid
from paywave.values.tax_ids import is_valid_cnpj, is_valid_cpf

REDACTED = "[REDACTED]"
_MASKED = "paywave_masked"  # set on a record once masked: every handler runs the filter

# The attributes every LogRecord has; anything else came from `extra=` or a filter.
STANDARD_ATTRIBUTES = frozenset(
    logging.LogRecord("", 0, "", 0, "", (), None).__dict__.keys()
    | {"message", "asctime", "taskName", _MASKED}
)

# Field names whose value is never logged (compared word by word: `client_secret`,
# `X-Api-Key`); tax ids keep their last four characters.
SECRET_WORDS = frozenset(
    {"password", "passwd", "pass", "pwd", "secret", "secrets", "authorization", "cookie",
     "credential", "credentials", "signature", "hmac", "apikey", "jwt"}
)  # fmt: skip
SECRET_PAIRS = frozenset({("api", "key"), ("private", "key"), ("secret", "key")})
TOKEN_NAMES = frozenset({"token", "access_token", "refresh_token", "id_token", "auth_token"})
# Query parameters are masked by name: the secret names above, and short names that carry
# credentials in URLs (`?key=` of many APIs, `?sig=` of signed URLs, `?t=` of the hosted
# payment page's links). Names stay.
QUERY_SECRET_NAMES = frozenset({"key", "sig", "auth", "t"})
TAX_ID_NAMES = re.compile(r"tax[_-]?id|\bcpf\b|\bcnpj\b", re.IGNORECASE)
_UUID = re.compile(r"([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})")

_KEY_VALUE = re.compile(
    r"""(?ix)
    (?P<key>["']?\b(?:authorization|proxy-authorization|password|passwd|pwd|secret
        |client[_-]?secret|api[_-]?secret|secret[_-]?key|private[_-]?key|api[_-]?key
        |x-api-key|access[_-]?token|refresh[_-]?token|token|cookie|set-cookie
        |cvc|cvv|security[_-]?code)\b["']?\s*[:=]\s*)
    (?:(?P<quote>["'])(?:(?:bearer|basic|token)\s+)?(?!\[REDACTED\])(?P<quoted>[^"']*)(?P=quote)
      |(?:(?:bearer|basic|token)\s+)?(?P<value>(?!\[REDACTED\])[^\s"',;&}\]]+))
    """
)
# name=value at the start of a query string, or after its `?` / `&` / `;` in a URL.
_QUERY_PARAMETER = re.compile(
    r"""(?P<head>(?:^|(?<=[?&;]))(?P<name>[A-Za-z0-9_.~%+\[\]-]{1,64})=)(?P<value>[^&;#\s'"<>]+)"""
)
_SCHEMES = re.compile(r"\b(Bearer|Basic|bearer) +[A-Za-z0-9._~+/=-]{16,}")
_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*")
_URL_PASSWORD = re.compile(r"(?P<head>\b[a-z][a-z0-9+.-]*://[^:/?#\s@]*:)[^@/?#\s]+(?=@)", re.I)
_API_KEYS = re.compile(
    r"\b(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{6,}|\bwhsec_[A-Za-z0-9+/=]{6,}"
    r"|\b(?:APP_USR|TEST)-\d{6,}-\d{6}-[0-9a-f]{16,}-\d+",
)
# 13-19 digits, single spaces or dashes allowed between them (as paywave.values.cards sees them).
_PAN = re.compile(r"(?<![\dA-Za-z])(?:\d[ -]?){12,18}\d(?![\dA-Za-z])")
_CPF_FORMATTED = re.compile(r"(?<!\d)\d{3}\.\d{3}\.\d{3}-\d{2}(?!\d)")
_CNPJ_FORMATTED = re.compile(
    r"(?<![\dA-Z])[\dA-Z]{2}\.[\dA-Z]{3}\.[\dA-Z]{3}/[\dA-Z]{4}-\d{2}(?!\d)"
)
_BARE_TAX_ID = re.compile(r"(?<![\dA-Za-z])(?:\d{11}|[\dA-Z]{12}\d{2})(?![\dA-Za-z])")


@functools.lru_cache(maxsize=4096)  # a log's field and parameter names are few
def is_secret_name(name: str) -> bool:
    lowered = name.lower().replace("-", "_")
    if lowered in TOKEN_NAMES:
        return True
    words = [word for word in lowered.split("_") if word]
    return bool(SECRET_WORDS.intersection(words)) or any(
        pair in SECRET_PAIRS for pair in itertools.pairwise(words)
    )


def is_secret_query_parameter(name: str) -> bool:
    name = unquote_plus(name)
    return is_secret_name(name) or name.lower() in QUERY_SECRET_NAMES


def _query_parameter(match: re.Match[str]) -> str:
    if is_secret_query_parameter(match.group("name")):
        return f"{match.group('head')}{REDACTED}"
    return match.group()


def mask_query(query: str) -> str:
    """A raw query string (`hmac=...&page=2`) with secret parameters' values masked."""
    return _QUERY_PARAMETER.sub(_query_parameter, query)


def keep_last4(value: str) -> str:
    """Every letter and digit but the last four becomes '*'; separators stay."""
    chars = list(value)
    seen = 0
    for index in range(len(chars) - 1, -1, -1):
        if chars[index].isalnum():
            seen += 1
            if seen > 4:
                chars[index] = "*"
    return "".join(chars)


def _pan(match: re.Match[str]) -> str:
    digits = re.sub(r"[ -]", "", match.group())
    return f"[card ****{digits[-4:]}]" if luhn_valid(digits) else match.group()


def _redacted_value(match: re.Match[str]) -> str:
    quote = match.group("quote") or ""  # a quoted value goes whole, spaces and all
    return f"{match.group('key')}{quote}{REDACTED}{quote}"


def _bare_tax_id(match: re.Match[str]) -> str:
    value = match.group()
    if (len(value) == 11 and is_valid_cpf(value)) or (len(value) == 14 and is_valid_cnpj(value)):
        return keep_last4(value)
    return value


_RULES: list[tuple[re.Pattern[str], str | Callable[[re.Match[str]], str]]] = [
    (_JWT, REDACTED),
    (_API_KEYS, REDACTED),
    (_URL_PASSWORD, rf"\g<head>{REDACTED}"),
    (_QUERY_PARAMETER, _query_parameter),
    (_KEY_VALUE, lambda m: _redacted_value(m)),
    (_SCHEMES, rf"\1 {REDACTED}"),
    (_PAN, _pan),
    (_CPF_FORMATTED, lambda m: keep_last4(m.group())),
    (_CNPJ_FORMATTED, lambda m: keep_last4(m.group())),
    (_BARE_TAX_ID, _bare_tax_id),
]


# What every rule above needs somewhere in the text to match: two digits in a row or one
# space or dash apart (tax ids, cards written in any grouping), `=` (query parameters),
# `://` (URL passwords), or one of these words. Most log text (a status, a gateway's name)
# has none, and one look then spares ten substitutions.
_TWO_DIGITS_CLOSE = re.compile(r"\d[ -]?\d")
_WORDS = (
    r"eyj|sk_|rk_|whsec_|app_usr|test-|authorization|passw|pwd|secret|key|token|cookie|cvc"
    r"|cvv|security|bearer|basic"
)
_LOWER_CASE_WORDS = re.compile(_WORDS)
_WORDS_IN_ANY_CASE = re.compile(_WORDS, re.IGNORECASE)


def _may_need_masking(text: str) -> bool:
    # Substring tests and plain searches: one case-insensitive alternation tried at every
    # position cost four times as much, on each of a line's dozen strings. Lower-casing
    # folds ASCII text exactly as the rules' case-insensitive patterns do; other text (the
    # rare line with a long s or a dotless i, which those patterns take for "s" and "i") is
    # searched case-insensitively.
    if "=" in text or "://" in text or _TWO_DIGITS_CLOSE.search(text):
        return True
    if text.isascii():
        return _LOWER_CASE_WORDS.search(text.lower()) is not None
    return _WORDS_IN_ANY_CASE.search(text) is not None


def _mask_piece(text: str) -> str:
    if not _may_need_masking(text):
        return text
    return _apply_rules(text)


def _apply_rules(text: str) -> str:
    for pattern, replacement in _RULES:
        text = pattern.sub(replacement, text)
    return text


def mask_text(text: str) -> str:
    if text in _NOTHING_TO_MASK:
        return text
    if _may_need_masking(text):
        # UUIDs (payment ids) are left whole: their digit groups could pass for a card.
        if _IDENTIFIER.fullmatch(text):
            return text  # a lone id: new with each request or task, never kept
        pieces = _UUID.split(text)
        masked = "".join(p if index % 2 else _mask_piece(p) for index, p in enumerate(pieces))
        if masked != text:
            return masked
    if len(text) <= _REMEMBERED_LENGTH:
        if len(_NOTHING_TO_MASK) >= _REMEMBERED_TEXTS:
            _NOTHING_TO_MASK.clear()
        _NOTHING_TO_MASK[text] = None
    return text


# Short texts the rules left as they were (a status, a gateway, a wallet app's name: most
# of a line's fields, again on every line of a payment's story): asked again, they are
# answered without the rules. Only what is written to the logs as it is is kept here; a
# text any rule changed is never kept, nor a lone id (a request's, a task's, a payment's:
# new with each, they would only push out the rest; the rules skip them anyway).
_NOTHING_TO_MASK: dict[str, None] = {}
_REMEMBERED_LENGTH = 64
_REMEMBERED_TEXTS = 4096


# A field that is one id and nothing else (a UUID, or 32 hex digits: request and task
# ids on every line) holds nothing any rule masks: no rule's match fits inside it (a card
# number or tax id must stand apart from letters and digits), so the rules are skipped.
_IDENTIFIER = re.compile(rf"{_UUID.pattern}|[0-9a-fA-F]{{32}}")


@functools.lru_cache(maxsize=4096)
def _is_tax_id_name(name: str) -> bool:
    return TAX_ID_NAMES.search(name) is not None


def mask_value(value: Any, name: str = "", depth: int = 0) -> Any:
    """A copy of `value` fit for a log: by field name first, then by content."""
    if name and is_secret_name(name) and value not in (None, ""):
        return REDACTED
    if depth > 6:
        return REDACTED
    if isinstance(value, str):
        if name and _is_tax_id_name(name):
            return keep_last4(value)
        return mask_text(value)
    if isinstance(value, bool | int | float | None):
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**10:
            masked = mask_value(str(value), name, depth)  # a card or tax id passed as a number
            return value if masked == str(value) else masked
        return value
    if isinstance(value, dict):
        return {str(k): mask_value(v, str(k), depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [mask_value(item, name, depth + 1) for item in value]
    return mask_text(str(value))


class MaskingFilter(logging.Filter):
    """Mask the record in place, once however many handlers run it; never drops one."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, _MASKED, False):
            return True
        try:
            message = record.getMessage()
        except Exception:  # bad format arguments: keep everything, masked, as text
            message = f"{record.msg} {record.args!r}"
        record.msg = mask_text(str(message))
        record.args = None
        for name in list(record.__dict__):
            if name not in STANDARD_ATTRIBUTES:
                setattr(record, name, mask_value(record.__dict__[name], name))
        if record.exc_info and not record.exc_text:
            record.exc_text = "".join(traceback.format_exception(*record.exc_info)).rstrip()
        if record.exc_text:
            record.exc_text = mask_text(record.exc_text)
        if record.stack_info:
            record.stack_info = mask_text(record.stack_info)
        setattr(record, _MASKED, True)
        return True
