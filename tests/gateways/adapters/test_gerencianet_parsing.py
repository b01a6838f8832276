"""What GerencianetAdapter reads from Efí's answers and errors, field by field.

The answers have the shapes of the BCB API Pix as Efí serves it (cob, devolução, the
RFC 7807 problems with `violacoes`, and Efí's own `nome`/`mensagem` errors). They reach
the real SDK through a stand-in for the HTTP session: no simulator, no network, no
database. Each answer is read into a whole ChargeResult, RefundResult, CallbackEvent or
error and compared whole, so a field read from the wrong key, or a default changed, fails.
"""

import json
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
import requests

from gateways.adapters import gerencianet as module
from gateways.adapters.gerencianet import GerencianetAdapter, _error_for, _expiry, txid_for
from gateways.base import (
    Ambiguous,
    CallbackEvent,
    CallbackKind,
    ChargeNotFound,
    ChargeResult,
    ChargeStatus,
    Declined,
    GatewayError,
    InvalidCallback,
    Misconfigured,
    PixCharge,
    RefundResult,
    RefundStatus,
    Retryable,
)
from gateways.credentials import SANDBOX_VALUES
from gateways.pix.brcode import BRCodeError, parse
from gateways.simulators._brcode import dynamic_brcode
from tests.gateways.adapters.conftest import charge_request, credentials

API = "http://efi.test"
TXID = txid_for("key-1")
E2E = "E09089356202612041200abcdefghijk"
WEBHOOK_SECRET = SANDBOX_VALUES["gerencianet"]["WEBHOOK_SECRET"]
PIX_KEY = SANDBOX_VALUES["gerencianet"]["PIX_KEY"]
BR_CODE = dynamic_brcode(
    location="pix.example.invalid/v2/cobv/9d36b84f", amount=1050,
    merchant_name="PAYWAVE SANDBOX", merchant_city="SAO PAULO",
)  # fmt: skip
BAD_BR_CODE = BR_CODE[:-4] + ("0000" if not BR_CODE.endswith("0000") else "FFFF")
# A cob created a minute ago, for an hour: open. The expired ones are from 2025.
CREATED_AT = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
CREATED = CREATED_AT.isoformat().replace("+00:00", "Z")
EXPIRES_AT = CREATED_AT + timedelta(hours=1)
PAST = "2025-01-01T10:00:00Z"
PAST_EXPIRY = datetime(2025, 1, 1, 11, tzinfo=UTC)
ABSENT = object()  # a field the answer leaves out


@pytest.fixture(autouse=True)
def _fresh_simulator() -> None:
    """No simulator here (the package's conftest resets one before every test)."""


@dataclass
class Wire:
    """Stands in for the pooled `requests` session: answers the OAuth token request with a
    token, and every other request from a queue of (status, body); a body that is bytes
    goes as it is, anything else as JSON. Records what is sent."""

    answers: list[tuple[int, Any]] = field(default_factory=list)
    sent: list[dict[str, Any]] = field(default_factory=list)

    def request(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        if url.endswith("/oauth/token"):
            status, body = 200, {"access_token": "token-1", "token_type": "Bearer",
                                 "expires_in": 3600, "scope": "cob.write cob.read"}  # fmt: skip
        else:
            self.sent.append({"method": method.upper(), "url": url, **kwargs})
            status, body = self.answers.pop(0)
        response = requests.Response()
        response.status_code = status
        response._content = body if isinstance(body, bytes) else json.dumps(body).encode()
        response.headers["Content-Type"] = "application/json"
        response.url = url
        return response


@pytest.fixture
def wire(monkeypatch: pytest.MonkeyPatch) -> Wire:
    stand_in = Wire()
    monkeypatch.setattr(module, "pooled_session", lambda: stand_in)
    return stand_in


@pytest.fixture
def adapter() -> GerencianetAdapter:
    return GerencianetAdapter(
        code="gerencianet", timeout_seconds=5.0, credentials=credentials("gerencianet"),
        api_base=API,
    )  # fmt: skip


def cob(**fields: Any) -> dict[str, Any]:
    """An open cob as Efí answers it, with `fields` replaced (ABSENT: left out)."""
    answer: dict[str, Any] = {
        "calendario": {"criacao": CREATED, "expiracao": 3600},
        "txid": TXID,
        "revisao": 0,
        "loc": {"id": 789, "location": "pix.example.invalid/v2/cobv/9d36b84f", "tipoCob": "cob"},
        "location": "pix.example.invalid/v2/cobv/9d36b84f",
        "status": "ATIVA",
        "devedor": {"cpf": "52998224725", "nome": "Maria Silva"},
        "valor": {"original": "10.50"},
        "chave": PIX_KEY,
        "solicitacaoPagador": "PayWave",
        "pixCopiaECola": BR_CODE,
    }
    answer.update(fields)
    return {name: value for name, value in answer.items() if value is not ABSENT}


PIX = PixCharge(txid=TXID, br_code=BR_CODE, expires_at=EXPIRES_AT)


def result(**fields: Any) -> ChargeResult:
    """The ChargeResult of `cob()` (open, awaiting payment), with `fields` replaced."""
    expected: dict[str, Any] = {
        "status": ChargeStatus.AWAITING_PAYMENT,
        "reference": TXID,
        "raw_status": "ATIVA",
        "amount": 1050,
        "currency": "BRL",
        "pix": PIX,
    }
    expected.update(fields)
    return ChargeResult(**expected)


def described(error: BaseException) -> tuple[Any, ...]:
    """An error whole: its class, message (also as str()), code, gateway's words and status."""
    assert isinstance(error, GatewayError)
    assert str(error) == error.message
    return (type(error), error.message, error.code, error.gateway_message, error.http_status)


# Cobs: status, expiry, amount and PIX data, read whole.

EXPIRED = {"calendario": {"criacao": PAST, "expiracao": 3600}}
PAST_PIX = replace(PIX, expires_at=PAST_EXPIRY)

COBS = [
    pytest.param(cob(), result(), id="open"),
    pytest.param(cob(status="CONCLUIDA", pix=[{"endToEndId": E2E, "valor": "10.50"}]),
                 result(status=ChargeStatus.SUCCEEDED, raw_status="CONCLUIDA"), id="paid"),
    pytest.param(cob(status="REMOVIDA_PELO_USUARIO_RECEBEDOR"),
                 result(status=ChargeStatus.CANCELED, raw_status="REMOVIDA_PELO_USUARIO_RECEBEDOR"),
                 id="removed by us"),
    pytest.param(cob(status="REMOVIDA_PELO_PSP"),
                 result(status=ChargeStatus.CANCELED, raw_status="REMOVIDA_PELO_PSP"),
                 id="removed by the PSP"),
    pytest.param(cob(status="EM_ANALISE"), result(status=ChargeStatus.PENDING,
                 raw_status="EM_ANALISE"), id="a word Efí may add"),
    pytest.param(cob(status=ABSENT), result(status=ChargeStatus.PENDING, raw_status=""),
                 id="no status"),
    # Past its expiry, an open cob is expired; a paid or removed one stays what it is.
    pytest.param(cob(**EXPIRED), result(status=ChargeStatus.EXPIRED, pix=PAST_PIX),
                 id="open past its expiry"),
    pytest.param(cob(**EXPIRED, status="CONCLUIDA"),
                 result(status=ChargeStatus.SUCCEEDED, raw_status="CONCLUIDA", pix=PAST_PIX),
                 id="paid, past its expiry"),
    pytest.param(cob(**EXPIRED, status="REMOVIDA_PELO_PSP"),
                 result(status=ChargeStatus.CANCELED, raw_status="REMOVIDA_PELO_PSP",
                        pix=PAST_PIX), id="removed, past its expiry"),
    pytest.param(cob(**EXPIRED, status="EM_ANALISE"),
                 result(status=ChargeStatus.PENDING, raw_status="EM_ANALISE", pix=PAST_PIX),
                 id="unknown, past its expiry"),
    pytest.param(cob(calendario=ABSENT), result(pix=replace(PIX, expires_at=None)),
                 id="no calendar: no expiry"),
    # Amount: always reais.
    pytest.param(cob(valor={"original": "0.01"}), result(amount=1), id="one centavo"),
    pytest.param(cob(valor={"original": "1234567.89"}), result(amount=123456789), id="millions"),
    pytest.param(cob(valor={"original": "10"}), result(amount=1000), id="whole reais"),
    pytest.param(cob(valor=ABSENT), result(amount=None), id="no valor"),
    pytest.param(cob(valor=None), result(amount=None), id="null valor"),
    pytest.param(cob(valor={}), result(amount=None), id="no original"),
    pytest.param(cob(valor={"original": ""}), result(amount=None), id="empty original"),
    # PIX data.
    pytest.param(cob(pixCopiaECola=ABSENT), result(pix=None), id="no code"),
    pytest.param(cob(pixCopiaECola=""), result(pix=None), id="empty code"),
    pytest.param(cob(pixCopiaECola=None), result(pix=None), id="null code"),
    pytest.param(cob(pixCopiaECola=None, txid=ABSENT), result(pix=None, reference=""),
                 id="no txid"),
]  # fmt: skip


@pytest.mark.parametrize(("answer", "expected"), COBS)
def test_a_cob_is_read_whole(
    adapter: GerencianetAdapter, wire: Wire, answer: dict[str, Any], expected: ChargeResult
) -> None:
    wire.answers.append((200, answer))

    assert adapter.retrieve(TXID) == expected
    assert [(r["method"], r["url"]) for r in wire.sent] == [("GET", f"{API}/v2/cob/{TXID}")]


@pytest.mark.parametrize("code", [BAD_BR_CODE, "not a br code", BR_CODE + "é"])
def test_an_invalid_br_code_is_ambiguous_with_the_reason(
    adapter: GerencianetAdapter, wire: Wire, code: str
) -> None:
    """The cob may exist, but its code cannot be shown to a payer."""
    with pytest.raises(BRCodeError) as invalid:
        parse(code)
    wire.answers.append((201, cob(pixCopiaECola=code)))

    with pytest.raises(Ambiguous) as raised:
        adapter.charge(charge_request())

    assert described(raised.value) == (
        Ambiguous,
        "gerencianet: the PIX code in the answer is not a valid BR Code",
        "invalid_br_code",
        str(invalid.value),
        None,
    )
    assert str(invalid.value)  # the reason is said
    assert isinstance(raised.value.__cause__, BRCodeError)


@pytest.mark.parametrize(
    ("calendar", "expected"),
    [
        ({"criacao": "2026-12-04T10:00:00Z", "expiracao": 3600},
         datetime(2026, 12, 4, 11, tzinfo=UTC)),
        ({"criacao": "2026-12-04T10:00:00.123Z", "expiracao": 86400},
         datetime(2026, 12, 5, 10, 0, 0, 123000, tzinfo=UTC)),
        ({"criacao": "2026-12-04T10:00:00+00:00", "expiracao": 60},
         datetime(2026, 12, 4, 10, 1, tzinfo=UTC)),
        ({"criacao": "2026-12-04T07:00:00-03:00", "expiracao": 3600},
         datetime(2026, 12, 4, 8, tzinfo=timezone(timedelta(hours=-3)))),
        ({"criacao": "2026-12-04T10:00:00Z", "expiracao": "3600"},
         datetime(2026, 12, 4, 11, tzinfo=UTC)),
        ({"criacao": "2026-12-04T10:00:00Z", "expiracao": 0},
         datetime(2026, 12, 4, 10, tzinfo=UTC)),
        ({"criacao": "2026-12-04T10:00:00Z"}, None),
        ({"criacao": "2026-12-04T10:00:00Z", "expiracao": None}, None),
        ({"expiracao": 3600}, None),
        ({"criacao": "", "expiracao": 3600}, None),
        ({"criacao": None, "expiracao": 3600}, None),
        ({}, None),
        (None, None),
        (ABSENT, None),
        ({"criacao": "2026-12-04T10:00:00z", "expiracao": 60},
         datetime(2026, 12, 4, 10, 1, tzinfo=UTC)),
        ({"criacao": "yesterday", "expiracao": 3600}, None),
        ({"criacao": "2026-12-04T10:00:00Z", "expiracao": "an hour"}, None),
    ],
    ids=["Z", "milliseconds and Z", "+00:00", "-03:00", "seconds as a string", "no time",
         "no expiracao", "null expiracao", "no criacao", "empty criacao", "null criacao",
         "empty calendar", "null calendar", "no calendar", "lowercase z", "unreadable criacao",
         "unreadable expiracao"],
)  # fmt: skip
def test_the_expiry_is_the_creation_plus_the_seconds(calendar: Any, expected: Any) -> None:
    answer = {} if calendar is ABSENT else {"calendario": calendar}

    expiry = _expiry(answer)

    assert expiry == expected
    if expected is not None:
        assert expiry is not None
        assert expiry.utcoffset() == expected.utcoffset()


# What a charge sends.


def test_a_charge_sends_the_amount_debtor_and_expiry_and_reads_the_answer(
    adapter: GerencianetAdapter, wire: Wire
) -> None:
    wire.answers.append((201, cob()))

    charged = adapter.charge(charge_request(pix_expires_in=1800, key="key-1", payment_id="pw-1"))

    assert charged == result()
    [sent] = wire.sent
    assert (sent["method"], sent["url"]) == ("PUT", f"{API}/v2/cob/{TXID}")
    assert sent["json"] == {
        "calendario": {"expiracao": 1800},
        "devedor": {"cpf": "52998224725", "nome": "Maria Silva"},
        "valor": {"original": "10.50"},
        "chave": PIX_KEY,
        "solicitacaoPagador": "PayWave",
        "infoAdicionais": [{"nome": "payment_id", "valor": "pw-1"}],
    }


@pytest.mark.parametrize(
    ("tax_id", "description", "debtor", "words"),
    [
        ("11222333000181", "Order 42", {"cnpj": "11222333000181"}, "Order 42"),
        ("52998224725", "x" * 141, {"cpf": "52998224725"}, "x" * 140),
    ],
    ids=["a company", "a long description"],
)
def test_the_debtor_and_the_payer_s_words(
    adapter: GerencianetAdapter,
    wire: Wire,
    tax_id: str,
    description: str,
    debtor: dict[str, str],
    words: str,
) -> None:
    wire.answers.append((201, cob()))
    request = charge_request(description=description, amount=1)

    adapter.charge(replace(request, payer=replace(request.payer, tax_id=tax_id)))

    body = wire.sent[0]["json"]
    assert body["devedor"] == {**debtor, "nome": "Maria Silva"}
    assert (body["solicitacaoPagador"], body["valor"]) == (words, {"original": "0.01"})


def test_only_pix_is_charged_and_nothing_is_sent_otherwise(
    adapter: GerencianetAdapter, wire: Wire
) -> None:
    with pytest.raises(Declined) as raised:
        adapter.charge(charge_request(method="card", card_token="tok"))

    assert described(raised.value) == (
        Declined,
        "gerencianet: only PIX is configured",
        "method_not_supported",
        "",
        None,
    )
    assert wire.sent == []


# Refunds (devoluções).

PAID = cob(status="CONCLUIDA", pix=[
    {"endToEndId": E2E, "txid": TXID, "valor": "10.50", "chave": PIX_KEY,
     "horario": "2026-12-04T12:00:00.000Z"},
    {"endToEndId": "E09089356202612041300zzzzzzzzzzz", "txid": TXID, "valor": "1.00"},
])  # fmt: skip


def _devolution(**fields: Any) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "id": txid_for("rf-1"), "rtrId": "D09089356202612041300aaaaaaaaaaa", "valor": "4.00",
        "natureza": "ORIGINAL", "status": "EM_PROCESSAMENTO",
        "horario": {"solicitacao": "2026-12-04T13:00:00.000Z"},
    }  # fmt: skip
    answer.update(fields)
    return {name: value for name, value in answer.items() if value is not ABSENT}


RTR = "D09089356202612041300aaaaaaaaaaa"
DEVOLUTIONS = [
    pytest.param(_devolution(), RefundResult(RefundStatus.PENDING, RTR, 400, "EM_PROCESSAMENTO"),
                 id="processing"),
    pytest.param(_devolution(status="DEVOLVIDO"),
                 RefundResult(RefundStatus.SUCCEEDED, RTR, 400, "DEVOLVIDO"), id="returned"),
    pytest.param(_devolution(status="NAO_REALIZADO"),
                 RefundResult(RefundStatus.FAILED, RTR, 400, "NAO_REALIZADO"), id="not made"),
    pytest.param(_devolution(status="AGENDADO"),
                 RefundResult(RefundStatus.PENDING, RTR, 400, "AGENDADO"), id="another word"),
    pytest.param(_devolution(status=ABSENT), RefundResult(RefundStatus.PENDING, RTR, 400, ""),
                 id="no status"),
    pytest.param(_devolution(rtrId=ABSENT),
                 RefundResult(RefundStatus.PENDING, txid_for("rf-1"), 400, "EM_PROCESSAMENTO"),
                 id="no rtrId: our id"),
    pytest.param(_devolution(rtrId=None),
                 RefundResult(RefundStatus.PENDING, txid_for("rf-1"), 400, "EM_PROCESSAMENTO"),
                 id="null rtrId"),
    pytest.param(_devolution(rtrId=ABSENT, id=ABSENT),
                 RefundResult(RefundStatus.PENDING, "", 400, "EM_PROCESSAMENTO"), id="no ids"),
    pytest.param(_devolution(valor=ABSENT), RefundResult(RefundStatus.PENDING, RTR, 0,
                 "EM_PROCESSAMENTO"), id="no valor"),
    pytest.param(_devolution(valor="0.01"), RefundResult(RefundStatus.PENDING, RTR, 1,
                 "EM_PROCESSAMENTO"), id="one centavo"),
    pytest.param(_devolution(valor="1234567.89"), RefundResult(RefundStatus.PENDING, RTR,
                 123456789, "EM_PROCESSAMENTO"), id="millions"),
]  # fmt: skip


@pytest.mark.parametrize(("answer", "expected"), DEVOLUTIONS)
def test_a_devolution_is_read_whole(
    adapter: GerencianetAdapter, wire: Wire, answer: dict[str, Any], expected: RefundResult
) -> None:
    wire.answers += [(200, PAID), (201, answer)]

    refunded = adapter.refund(reference=TXID, amount=400, idempotency_key="rf-1")

    assert refunded == expected
    look_up, devolve = wire.sent
    assert (look_up["method"], look_up["url"]) == ("GET", f"{API}/v2/cob/{TXID}")
    assert (devolve["method"], devolve["url"]) == (
        "PUT",
        f"{API}/v2/pix/{E2E}/devolucao/{txid_for('rf-1')}",
    )
    assert devolve["json"] == {"valor": "4.00"}


@pytest.mark.parametrize(
    "paid",
    [cob(status="ATIVA"), cob(status="CONCLUIDA", pix=[]), cob(status="CONCLUIDA", pix=None)],
    ids=["no pix", "empty pix", "null pix"],
)
def test_nothing_paid_is_nothing_to_refund(
    adapter: GerencianetAdapter, wire: Wire, paid: dict[str, Any]
) -> None:
    wire.answers.append((200, paid))

    with pytest.raises(Declined) as raised:
        adapter.refund(reference=TXID, amount=400, idempotency_key="rf-1")

    assert described(raised.value) == (
        Declined,
        "gerencianet: nothing was paid to refund",
        "not_paid",
        "",
        None,
    )
    assert len(wire.sent) == 1  # the look-up only


# Notifications.


def _notice(*entries: dict[str, Any]) -> dict[str, Any]:
    return {"pix": list(entries)}


PAID_PIX = {
    "endToEndId": E2E, "txid": TXID, "chave": PIX_KEY, "valor": "10.50",
    "horario": "2026-12-04T12:00:00.000Z", "infoPagador": "pedido 42",
}  # fmt: skip


@pytest.mark.parametrize(
    ("body", "amount"),
    [
        (_notice(PAID_PIX), 1050),
        (_notice({**PAID_PIX, "valor": "0.01"}), 1),
        (_notice({**PAID_PIX, "valor": 10.5}), 1050),
        (_notice({**PAID_PIX, "valor": 7}), 700),
        (_notice(PAID_PIX, {**PAID_PIX, "endToEndId": "E2", "txid": "other", "valor": "1.00"}),
         1050),
    ],
    ids=["as sent", "one centavo", "a number", "whole reais", "the first of two"],
)  # fmt: skip
def test_a_notification_is_read_whole(
    adapter: GerencianetAdapter, body: dict[str, Any], amount: int
) -> None:
    event = adapter.parse_callback(
        headers={},
        query={"hmac": WEBHOOK_SECRET, "ignorar": "/pix"},
        body=json.dumps(body).encode(),
    )

    assert event == CallbackEvent(
        gateway="gerencianet",
        event_id=E2E,
        kind=CallbackKind.PAYMENT_UPDATED,
        reference=TXID,
        txid=TXID,
        amount=amount,
        raw=body,
    )


@pytest.mark.parametrize(
    ("query", "body", "message"),
    [
        ({}, _notice(PAID_PIX), "gerencianet: wrong or missing callback secret"),
        ({"hmac": "gn-guess"}, _notice(PAID_PIX), "gerencianet: wrong or missing callback secret"),
        ({"hmac": WEBHOOK_SECRET}, b"not json", "malformed Gerencianet notification"),
        ({"hmac": WEBHOOK_SECRET}, b"\xff", "malformed Gerencianet notification"),
        ({"hmac": WEBHOOK_SECRET}, {}, "malformed Gerencianet notification"),
        ({"hmac": WEBHOOK_SECRET}, _notice(), "malformed Gerencianet notification"),
        ({"hmac": WEBHOOK_SECRET}, _notice({k: v for k, v in PAID_PIX.items() if k != "txid"}),
         "malformed Gerencianet notification"),
        ({"hmac": WEBHOOK_SECRET}, _notice({k: v for k, v in PAID_PIX.items() if k != "valor"}),
         "malformed Gerencianet notification"),
        ({"hmac": WEBHOOK_SECRET}, _notice({**PAID_PIX, "valor": "10.505"}),
         "malformed Gerencianet notification"),
        ({"hmac": WEBHOOK_SECRET}, _notice({**PAID_PIX, "valor": "dez"}),
         "malformed Gerencianet notification"),
        ({"hmac": WEBHOOK_SECRET}, _notice({**PAID_PIX, "valor": None}),
         "malformed Gerencianet notification"),
        # A PIX sent to the key without a charge: no txid, nothing of PayWave's.
        ({"hmac": WEBHOOK_SECRET}, _notice({**PAID_PIX, "txid": None}),
         "malformed Gerencianet notification"),
        ({"hmac": WEBHOOK_SECRET}, _notice({**PAID_PIX, "txid": ""}),
         "malformed Gerencianet notification"),
        ({"hmac": WEBHOOK_SECRET}, _notice({**PAID_PIX, "endToEndId": None}),
         "malformed Gerencianet notification"),
    ],
    ids=["no secret", "another secret", "not json", "not utf-8", "no pix", "empty pix", "no txid",
         "no valor", "sub-centavo", "not a number", "null valor", "null txid", "empty txid",
         "null endToEndId"],
)  # fmt: skip
def test_a_wrong_or_malformed_notification_is_invalid(
    adapter: GerencianetAdapter, query: dict[str, str], body: Any, message: str
) -> None:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()

    with pytest.raises(InvalidCallback) as refused:
        adapter.parse_callback(headers={}, query=query, body=raw)

    assert str(refused.value) == message


# Errors: what each status means, and the code and words picked from the body.

BODIES: dict[str, tuple[dict[str, Any], str, str]] = {
    # The BCB API Pix's problem (RFC 7807): the first violation says what was wrong.
    "a problem with violations": (
        {"type": "https://pix.bcb.gov.br/api/v2/error/CobOperacaoInvalida",
         "title": "Cobrança inválida.", "status": 400,
         "detail": "A requisição não respeita o schema.",
         "violacoes": [{"razao": "O campo cob.devedor.cpf não respeita o schema.",
                        "propriedade": "cob.devedor.cpf"}, {"razao": "second"}]},
        "https://pix.bcb.gov.br/api/v2/error/CobOperacaoInvalida",
        "O campo cob.devedor.cpf não respeita o schema."),
    "a violation without a reason": (
        {"type": "CobOperacaoInvalida", "title": "Cobrança inválida.", "detail": "schema",
         "violacoes": [{"propriedade": "cob.valor"}]}, "CobOperacaoInvalida", "schema"),
    "a violation that is not an object": (
        {"type": "CobOperacaoInvalida", "title": "Cobrança inválida.", "detail": "schema",
         "violacoes": ["cob.valor"]}, "CobOperacaoInvalida", "schema"),
    "no violations": (
        {"type": "CobNaoEncontrado", "title": "Cobrança não encontrada.",
         "detail": "Não foi encontrada cobrança imediata com o txid informado.", "violacoes": []},
        "CobNaoEncontrado", "Não foi encontrada cobrança imediata com o txid informado."),
    "only a title": ({"type": "Indisponivel", "title": "Serviço indisponível.",
                      "violacoes": None}, "Indisponivel", "Serviço indisponível."),
    # Efí's own errors: a name and a message (the message is not read).
    "a name": ({"nome": "documento_bloqueado", "mensagem": "O documento está bloqueado",
                "type": "ignored", "title": "a title"}, "documento_bloqueado", "a title"),
    "a name and a detail": ({"nome": "valor_invalido", "detail": "valor"}, "valor_invalido",
                            "valor"),
    "an empty body": ({}, "{status}", ""),
}  # fmt: skip

CLASSES = [
    (0, Ambiguous, "gerencianet: no status recorded for the answer"),
    (300, Declined, "gerencianet: the charge was refused"),
    (400, Declined, "gerencianet: the charge was refused"),
    (401, Misconfigured, "gerencianet: credentials refused"),
    (402, Declined, "gerencianet: the charge was refused"),
    (403, Misconfigured, "gerencianet: credentials refused"),
    (404, ChargeNotFound, "gerencianet: no such charge"),
    (409, Declined, "gerencianet: the charge was refused"),
    (422, Declined, "gerencianet: the charge was refused"),
    (428, Declined, "gerencianet: the charge was refused"),
    (429, Retryable, "gerencianet: HTTP 429, not processed"),
    (430, Declined, "gerencianet: the charge was refused"),
    (499, Declined, "gerencianet: the charge was refused"),
    (500, Ambiguous, "gerencianet: HTTP 500, the outcome is unknown"),
    (501, Ambiguous, "gerencianet: HTTP 501, the outcome is unknown"),
    (502, Ambiguous, "gerencianet: HTTP 502, the outcome is unknown"),
    (503, Retryable, "gerencianet: HTTP 503, not processed"),
    (504, Ambiguous, "gerencianet: HTTP 504, the outcome is unknown"),
]


@pytest.mark.parametrize("body", BODIES, ids=BODIES)
@pytest.mark.parametrize(("status", "kind", "message"), CLASSES, ids=[str(c[0]) for c in CLASSES])
def test_an_error_answer_is_read_by_its_status_with_the_gateway_s_words(
    status: int, kind: type[GatewayError], message: str, body: str
) -> None:
    answer, code, words = BODIES[body]

    error = _error_for(status, answer, gateway="gerencianet")

    assert described(error) == (kind, message, code.format(status=status), words, status)


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (400, BODIES["a problem with violations"][0],
         (Declined, "gerencianet: the charge was refused",
          "https://pix.bcb.gov.br/api/v2/error/CobOperacaoInvalida",
          "O campo cob.devedor.cpf não respeita o schema.", 400)),
        (404, BODIES["no violations"][0],
         (ChargeNotFound, "gerencianet: no such charge", "CobNaoEncontrado",
          "Não foi encontrada cobrança imediata com o txid informado.", 404)),
        (400, ["not", "an", "object"],
         (Declined, "gerencianet: the charge was refused", "400", "", 400)),
        (502, b"<html>bad gateway</html>",
         (Ambiguous, "gerencianet: HTTP 502, the outcome is unknown", "502", "", 502)),
        (200, b"<html>ok</html>",
         (Ambiguous, "gerencianet: unreadable answer (HTTP 200)", "", "", 200)),
    ],
    ids=["a problem", "not found", "a list", "an HTML 502", "an HTML 200"],
)  # fmt: skip
def test_an_answer_is_read_as_an_error_whole(
    adapter: GerencianetAdapter, wire: Wire, status: int, body: Any, expected: tuple[Any]
) -> None:
    wire.answers.append((status, body))

    with pytest.raises(GatewayError) as raised:
        adapter.retrieve(TXID)

    assert described(raised.value) == expected
