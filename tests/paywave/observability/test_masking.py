"""Nothing secret reaches a log line: messages, args, extra fields, tracebacks."""

import json
import logging
import random
import re
import uuid
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from paywave.observability import log_masking
from paywave.observability.log_masking import (
    REDACTED,
    MaskingFilter,
    keep_last4,
    mask_query,
    mask_text,
    mask_value,
)


def masked_record(msg: Any, *args: Any, exc: BaseException | None = None, **extra: Any):
    record = logging.LogRecord("payments.processing", logging.INFO, __file__, 1, msg, args, None)
    if exc is not None:
        record.exc_info = (type(exc), exc, exc.__traceback__)
    record.__dict__.update(extra)
    assert MaskingFilter().filter(record) is True
    return record


@pytest.mark.parametrize(
    ("text", "leak", "kept"),
    [
        ("card 4111 1111 1111 1111 refused", "4111 1111 1111 1111", "****1111"),
        ("pan=4242424242424242", "4242424242424242", "****4242"),
        ("amex 3782-822463-10005", "822463", "****0005"),
        ("card 4-1-1-1-1-1-1-1-1-1-1-1-1-1-1-1 refused", "4-1-1-1-1-1-1-1", "****1111"),
        ("card 4 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1", "4 1 1 1 1 1 1 1", "****1111"),
        ("cpf 123.456.789-09 on file", "123.456.789", "*89-09"),
        ("cpf 12345678909 on file", "12345678909", "8909"),
        ("cnpj 11.222.333/0001-81", "11.222.333", "01-81"),
        ("cnpj 11222333000181", "11222333000181", "0181"),
        ("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl", "eyJ",
         "Authorization: [REDACTED]"),
        ("headers {'Authorization': 'Basic dXNlcjpwYXNzd29yZA=='}", "dXNlcjpwYXNzd29yZA",
         "{'Authorization': '[REDACTED]'}"),
        ('{"password": "hunter2", "user": "ana"}', "hunter2", '"user": "ana"'),
        ("login with password=hunter2&next=/", "hunter2", "next=/"),
        ("client_secret: s3cr3t-value", "s3cr3t-value", "client_secret: [REDACTED]"),
        ('{"password": "correct horse battery", "user": "ana"}', "horse",
         '{"password": "[REDACTED]", "user": "ana"}'),
        ("secret_key=abc123def", "abc123def", "secret_key=[REDACTED]"),
        ("api_secret: q1w2e3r4 sent", "q1w2e3r4", "api_secret: [REDACTED] sent"),
        ("private_key='k3y-m4t3r14l'", "k3y-m4t3r14l", "private_key='[REDACTED]'"),
        ("card cvv=737 given", "737", "cvv=[REDACTED] given"),
        ("stripe key sk_live_51HxYzAbCdEfGh1234 rejected", "sk_live_51HxYzAbCdEf",
         "rejected"),
        ("key sk_test_4eC39HqLyjWDarjtT1zdp7dc", "sk_test_4eC39HqLyjWDarjtT1zdp7dc", "key"),
        ("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw is the secret", "whsec_MfKQ9r8GKYqr",
         "[REDACTED] is the secret"),
        ("mp token APP_USR-1234567890123456-112233-abcdef0123456789abcdef0123456789-123456789",
         "abcdef0123456789abcdef", "mp token"),
        ("broker amqp://paywave:s3cret@rabbitmq:5672//", "s3cret", "amqp://paywave:"),
        ("token eyJhbGciOiJIUzI1NiJ9.eyJjbGllbnRfaWQiOiIxIn0.abc in a query",
         "eyJhbGciOiJIUzI1NiJ9", "in a query"),
    ],
)  # fmt: skip
def test_secrets_card_numbers_and_tax_ids_are_masked(text: str, leak: str, kept: str) -> None:
    masked = mask_text(text)

    assert leak not in masked
    assert kept in masked
    assert mask_text(masked) == masked  # idempotent: every handler may run the filter


@pytest.mark.parametrize(
    "text",
    [
        "payment 0b9e0c7e-3f5c-4a3e-9b1d-123456789012 charged",  # a UUID stays whole
        "payment 11111111-2222-3333-4444-555555555555 is searchable",
        "attempt 2 at mercadopago took 1234 ms",
        "mercadopago payment 1319489274 approved",  # a gateway id, not a card or CPF
        "amount 100000000 BRL",
        "idempotency key paywave-abc-stripe",
        "Idempotency-Key: order-1001",
        "invalid card 4111111111111112 (Luhn fails)",
        "basic configuration reloaded",
    ],
)
def test_ordinary_ids_and_words_are_left_alone(text: str) -> None:
    assert mask_text(text) == text


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("password", "hunter2", REDACTED),
        ("client_secret", "abc", REDACTED),
        ("X-Api-Key", "abc", REDACTED),
        ("Authorization", "Bearer abc", REDACTED),
        ("access_token", "abc", REDACTED),
        ("token", "abc", REDACTED),
        ("tax_id", "123.456.789-09", "***.***.*89-09"),
        ("payer_tax_id", "11222333000181", "**********0181"),
        ("card_number", 4111111111111111, "[card ****1111]"),
        ("gateway_reference", 1319489274123, 1319489274123),  # no card, stays a number
        ("dispatch_token", "2f1c", "2f1c"),
        ("payment_id", "0b9e0c7e-3f5c-4a3e-9b1d-123456789012",
         "0b9e0c7e-3f5c-4a3e-9b1d-123456789012"),
        ("headers", {"Authorization": "Bearer x", "Accept": "json"},
         {"Authorization": REDACTED, "Accept": "json"}),
        ("payer", {"name": "Ana", "tax_id": "12345678909", "cards": ["4242424242424242"]},
         {"name": "Ana", "tax_id": "*******8909", "cards": ["[card ****4242]"]}),
    ],
)  # fmt: skip
def test_fields_are_masked_by_name_and_by_content(name: str, value: Any, expected: Any) -> None:
    assert mask_value(value, name) == expected


def test_the_filter_masks_message_args_extra_and_traceback() -> None:
    try:
        raise RuntimeError("gateway said: password=hunter2 for 4111111111111111")
    except RuntimeError as exc:
        record = masked_record(
            "charging %s for payer %s",
            "4242 4242 4242 4242",
            {"tax_id": "123.456.789-09"},
            exc=exc,
            payer_tax_id="123.456.789-09",
            request_headers={"authorization": "Bearer abcdefghijklmnopqrstuvwxyz"},
        )

    line = logging.Formatter().format(record)
    for leak in ("4242 4242 4242 4242", "123.456.789", "hunter2", "4111111111111111", "abcdefghij"):
        assert leak not in line, leak
    assert "****4242" in record.getMessage()
    assert record.payer_tax_id == "***.***.*89-09"
    assert record.request_headers == {"authorization": REDACTED}
    assert "RuntimeError: gateway said: password=[REDACTED] for [card ****1111]" in line


def test_a_message_with_broken_arguments_is_kept_and_masked() -> None:
    record = masked_record("%d cards: %s", "not-a-number", "4111111111111111")

    assert "4111111111111111" not in record.getMessage()
    assert "****1111" in record.getMessage()


def test_keep_last4_keeps_separators() -> None:
    assert keep_last4("11.222.333/0001-81") == "**.***.***/**01-81"
    assert keep_last4("123") == "123"


def test_a_record_is_masked_once_however_many_handlers_filter_it() -> None:
    record = masked_record("login with password=%s", "hunter2", card="4111111111111111")
    masked_message, masked_card = record.msg, record.card

    record.card = "raw again"  # a second filter run must not re-mask (nor re-read) it
    assert MaskingFilter().filter(record) is True

    assert record.msg == masked_message == "login with password=[REDACTED]"
    assert masked_card == "[card ****1111]"
    assert record.card == "raw again"  # untouched by the second pass: it was done


def test_djangos_loggers_write_only_through_the_masking_handlers() -> None:
    for name in ("django", "django.request", "django.server"):
        chain = logging.getLogger(name)
        while chain is not None:
            for handler in chain.handlers:
                if type(handler).__module__.startswith("_pytest"):
                    continue  # the test run's own capture
                kinds = {type(f).__name__ for f in handler.filters}
                assert "MaskingFilter" in kinds, f"{chain.name}: {handler!r} is not masked"
            chain = chain.parent if chain.propagate else None


@pytest.mark.parametrize(
    "name",
    ["hmac", "token", "secret", "signature", "key", "password", "access_token", "api_key",
     "apikey", "client_secret", "sig", "X-Amz-Signature", "refresh_token", "api%5Fkey"],
)  # fmt: skip
def test_secret_query_parameters_keep_their_name_and_lose_their_value(name: str) -> None:
    url = f"POST https://paywave.example/cb?page=2&{name}=s3cr3t%2Bv4lue==&status=ok done"

    masked = mask_text(url)

    assert "s3cr3t" not in masked
    assert masked == f"POST https://paywave.example/cb?page=2&{name}={REDACTED}&status=ok done"
    assert mask_query(f"{name}=s3cr3t&cursor=abc") == f"{name}={REDACTED}&cursor=abc"


def test_ordinary_query_parameters_are_left_alone() -> None:
    text = "GET /api/v1/payments?status=pending&limit=10&cursor=cD0yMDI2&keyword=x"

    assert mask_text(text) == text


@pytest.mark.django_db(transaction=True)
def test_efis_callback_secret_never_reaches_a_request_line(
    live_server: Any, json_lines: Any, gateways: Any
) -> None:
    secret = "gn-paywave-sandbox-secret"  # the sandbox's Efí callback secret: it is accepted
    url = f"{live_server.url}/webhooks/gerencianet?hmac={secret}&ignorar=1"

    response = httpx.post(url, content=b'{"pix": []}', headers={"X-Request-ID": "efi-1"})

    assert response.status_code == 400  # an empty notification: refused, and logged
    lines = json_lines.records()
    assert lines
    assert not [line for line in lines if secret in json.dumps(line)]
    (request_line,) = json_lines.about(logger_name="paywave.requests", request_id="efi-1")
    assert request_line["message"] == f"POST /webhooks/gerencianet?hmac={REDACTED}&ignorar=1 400"
    assert request_line["http_path"] == "/webhooks/gerencianet"
    assert request_line["http_query"] == f"hmac={REDACTED}&ignorar=1"
    (django_line,) = json_lines.about(logger_name="django.request", request_id="efi-1")
    assert django_line["http_query"] == f"hmac={REDACTED}&ignorar=1"


@pytest.mark.parametrize("rule", range(len(log_masking._RULES)))
@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_whatever_a_masking_rule_matches_the_shortcut_lets_through(rule: int, data: Any) -> None:
    """The shortcut skips the rules only for text none of them could match: every match
    of every rule (generated from the rule's own pattern) contains what the shortcut
    looks for."""
    pattern = log_masking._RULES[rule][0]
    text = data.draw(st.from_regex(pattern))
    match = pattern.search(text)
    assert match is not None
    assert log_masking._may_need_masking(match.group())


# The shortcut as one case-insensitive search, which it answers as.
_SHORTCUT_AS_ONE_SEARCH = re.compile(
    r"\d[ -]?\d|=|://|(?i:eyj|sk_|rk_|whsec_|app_usr|test-|authorization|passw|pwd|secret|key"
    r"|token|cookie|cvc|cvv|security|bearer|basic)"
)
# The words' letters in every case, the characters a case-insensitive search folds into
# them (long s, Kelvin sign, dotless i, dotted I), and a few separators and digits.
_SHORTCUT_ALPHABET = (
    "eyjskrwhcapustioznbqvEYJSKRWHCAPUSTIOZNBQV\u017f\u212a\u0131\u0130\u00e9_-=:/ 0123"
)


@settings(max_examples=3000, deadline=None)
@given(text=st.text(alphabet=_SHORTCUT_ALPHABET, max_size=24))
def test_the_shortcut_answers_as_one_case_insensitive_search(text: str) -> None:
    expected = _SHORTCUT_AS_ONE_SEARCH.search(text) is not None
    assert log_masking._may_need_masking(text) is expected, ascii(text)


_SHORTCUT_WORDS = _SHORTCUT_AS_ONE_SEARCH.pattern.split("(?i:")[1].rstrip(")").split("|")
_FOLDED = {"s": "\u017f", "k": "\u212a", "i": "\u0131"}


@pytest.mark.parametrize("word", _SHORTCUT_WORDS)
def test_every_word_of_the_shortcut_in_every_case(word: str) -> None:
    folded = "".join(_FOLDED.get(char, char) for char in word)
    for variant in (word, word.upper(), word.title(), folded, f"a {word.upper()} b"):
        assert _SHORTCUT_AS_ONE_SEARCH.search(variant), variant
        assert log_masking._may_need_masking(variant), ascii(variant)
    assert not log_masking._may_need_masking(word[:-1])


@pytest.mark.parametrize(
    "text", ["\u017fecret: x", "to\u212aen: x", "author\u0131zation: x", "PASSWORD: x", "Cookie: x"]
)
def test_the_shortcut_folds_case_as_the_rules_do(text: str) -> None:
    assert log_masking._may_need_masking(text)
    assert mask_text(text) != text


def _every_rule(text: str) -> str:
    """mask_text without its shortcuts: every rule over every piece but the UUIDs."""
    pieces = log_masking._UUID.split(text)
    return "".join(p if i % 2 else log_masking._apply_rules(p) for i, p in enumerate(pieces))


def test_a_field_that_is_one_id_skips_the_rules_and_loses_nothing_to_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Request and task ids (32 hex digits, UUIDs) are on every line: the rules are skipped
    for them, which must be what running them gives, digit-heavy ids included."""
    rule_runs: list[str] = []
    every_rule = log_masking._apply_rules

    def counted(text: str) -> str:
        rule_runs.append(text)
        return every_rule(text)

    rng = random.Random(7)
    ids = [uuid.UUID(int=rng.getrandbits(128)) for _ in range(2000)]
    texts = [str(i) for i in ids] + [i.hex for i in ids] + [i.hex.upper() for i in ids]
    texts += [
        "4111111111111111" + "0" * 16,  # a card's digits, then more digits
        "4111111111111111abcdef0123456789",
        "52998224725" + "a" * 21,  # a CPF's digits against letters
        "0" * 32,
        "12345678-1234-1234-1234-123456789012",
    ]
    for text in texts:
        assert _every_rule(text) == text
    monkeypatch.setattr(log_masking, "_apply_rules", counted)
    for text in texts:
        assert mask_text(text) == text
        assert mask_value(text, "request_id") == text
    assert rule_runs == []  # skipped, not run and found empty
    # Not one id: the rules run.
    assert mask_text("4111111111111111 " + "a" * 32) == "[card ****1111] " + "a" * 32
    assert mask_text("52998224725") == "*******4725"
    assert rule_runs


@pytest.fixture
def nothing_remembered() -> Any:
    remembered = getattr(log_masking, "_NOTHING_TO_MASK", {})
    remembered.clear()
    yield remembered
    remembered.clear()


def test_a_short_text_left_as_it_was_is_answered_again_without_the_rules(
    monkeypatch: pytest.MonkeyPatch, nothing_remembered: Any
) -> None:
    """A line's fields repeat on every line of a payment's story (its status, gateway, the
    wallet app, the task): the rules' answer for them is kept."""
    texts = ["processing", "bench-app-3", "payment.transition", "stripe 200 in 12 ms"]
    assert [mask_text(text) for text in texts] == texts
    monkeypatch.setattr(log_masking, "_may_need_masking", _refused)
    monkeypatch.setattr(log_masking, "_apply_rules", _refused)

    assert [mask_text(text) for text in texts] == texts


def test_a_text_a_rule_changed_is_never_kept(nothing_remembered: Any) -> None:
    card = "card 4111 1111 1111 1111"
    secret = "password=hunter22"

    first = [mask_text(card), mask_text(secret)]
    again = [mask_text(card), mask_text(secret)]

    assert first == again == ["card [card ****1111]", "password=[REDACTED]"]
    assert card not in nothing_remembered
    assert secret not in nothing_remembered


def test_what_is_kept_is_bounded_and_long_texts_and_ids_are_not_kept(
    nothing_remembered: Any,
) -> None:
    mask_text("a long line of text " * 10)
    mask_text(str(uuid.uuid4()))
    mask_text(uuid.uuid4().hex)

    assert not nothing_remembered
    for number in range(log_masking._REMEMBERED_TEXTS + 10):
        mask_text(f"status-{number:x}-ok")
    assert 0 < len(nothing_remembered) <= log_masking._REMEMBERED_TEXTS
    assert not any(len(text) > log_masking._REMEMBERED_LENGTH for text in nothing_remembered)


def _refused(*args: Any) -> Any:
    raise AssertionError("the rules ran for a text they left as it was")
