"""BCB API Pix on the wire: patterns, request validation, problem+json errors."""

import base64
import binascii
import re
from datetime import datetime
from typing import Any

from gateways.simulators._money import minor_from_major
from gateways.simulators.routing import Request, Response

PROBLEM_BASE = "https://pix.bcb.gov.br/api/v2/error/"
TXID_PATTERN = re.compile(r"[a-zA-Z0-9]{26,35}")
DEVOLUTION_ID_PATTERN = re.compile(r"[a-zA-Z0-9]{1,35}")
AMOUNT_PATTERN = re.compile(r"\d{1,10}\.\d{2}")


def validate_cob(body: dict[str, Any]) -> Response | None:
    calendar = body.get("calendario", {})
    if not isinstance(calendar, dict):
        return invalid_cob("calendario deve ser um objeto", "calendario")
    expiry = calendar.get("expiracao", 86400)
    if isinstance(expiry, bool) or not isinstance(expiry, int) or expiry <= 0:
        return invalid_cob("expiracao deve ser um inteiro positivo", "calendario.expiracao")
    value = body.get("valor")
    original = value.get("original") if isinstance(value, dict) else None
    if not isinstance(original, str) or not AMOUNT_PATTERN.fullmatch(original):
        return invalid_cob("original deve seguir o padrão \\d{1,10}\\.\\d{2}", "valor.original")
    if minor_from_major(original) <= 0:
        return invalid_cob("original deve ser maior que zero", "valor.original")
    if not isinstance(body.get("chave"), str) or not body["chave"]:
        return invalid_cob("chave é obrigatória", "chave")
    debtor = body.get("devedor")
    if debtor is not None:
        if not isinstance(debtor, dict) or not debtor.get("nome"):
            return invalid_cob("devedor.nome é obrigatório", "devedor.nome")
        cpf, cnpj = debtor.get("cpf"), debtor.get("cnpj")
        if (cpf is None) == (cnpj is None):
            return invalid_cob("informe devedor.cpf ou devedor.cnpj", "devedor")
        if cpf is not None and not re.fullmatch(r"\d{11}", str(cpf)):
            return invalid_cob("cpf deve ter 11 dígitos", "devedor.cpf")
        if cnpj is not None and not re.fullmatch(r"[0-9A-Z]{12}\d{2}", str(cnpj)):
            return invalid_cob("cnpj deve ter 14 caracteres", "devedor.cnpj")
    request = body.get("solicitacaoPagador")
    if request is not None and (not isinstance(request, str) or len(request) > 140):
        return invalid_cob("solicitacaoPagador tem no máximo 140 caracteres", "solicitacaoPagador")
    extra = body.get("infoAdicionais")
    if extra is not None and (
        not isinstance(extra, list)
        or not all(isinstance(e, dict) and {"nome", "valor"} <= set(e) for e in extra)
    ):
        return invalid_cob("infoAdicionais é uma lista de {nome, valor}", "infoAdicionais")
    return None


def basic_credentials(request: Request) -> tuple[str, str]:
    scheme, _, encoded = request.header("authorization").partition(" ")
    if scheme.lower() != "basic":
        return "", ""
    try:
        client_id, _, client_secret = base64.b64decode(encoded).decode().partition(":")
    except (ValueError, binascii.Error):
        return "", ""
    return client_id, client_secret


def json_object(request: Request) -> dict[str, Any] | Response:
    try:
        body = request.json()
    except ValueError:
        return problem(400, "RequisicaoInvalida", "Requisição inválida.", "corpo não é JSON")
    if not isinstance(body, dict):
        return problem(400, "RequisicaoInvalida", "Requisição inválida.", "corpo não é um objeto")
    return body


def parse_time(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError("no UTC offset")
    return moment


def problem(
    status: int, kind: str, title: str, detail: str, violations: list[dict] | None = None
) -> Response:
    body = {
        "type": PROBLEM_BASE + kind,
        "title": title,
        "status": status,
        "detail": detail,
        "violacoes": violations or [],
    }
    return Response.json(status, body, content_type="application/problem+json")


def invalid_cob(reason: str, field: str) -> Response:
    return problem(
        400,
        "CobOperacaoInvalida",
        "Cobrança inválida.",
        "A requisição que busca alterar ou criar uma cobrança para pagamento "
        "imediato não respeita o schema ou está semanticamente errada.",
        [{"razao": reason, "propriedade": field}],
    )


def invalid_devolution(reason: str, field: str) -> Response:
    return problem(
        400,
        "DevolucaoOperacaoInvalida",
        "Devolução inválida.",
        "A requisição de devolução não respeita o schema ou está semanticamente errada.",
        [{"razao": reason, "propriedade": field}],
    )


def cob_not_found() -> Response:
    return problem(
        404,
        "CobNaoEncontrado",
        "Cobrança não encontrada.",
        "Não foi encontrada cobrança imediata com o txid informado.",
    )


def pix_not_found(e2eid: str) -> Response:
    return problem(404, "PixNaoEncontrado", "Pix não encontrado.", f"Pix {e2eid} não encontrado.")


def webhook_not_found(chave: str) -> Response:
    return problem(
        404,
        "WebhookNaoEncontrado",
        "Webhook não encontrado.",
        f"Nenhum webhook associado à chave {chave}.",
    )


def efi_error(status: int, name: str, message: str) -> Response:
    """An error of Efí's own endpoints (`/v2/gn/...`): `{"nome", "mensagem"}`, not problem+json."""
    return Response.json(status, {"nome": name, "mensagem": message})


def efi_json_object(request: Request) -> dict[str, Any] | Response:
    try:
        body = request.json()
    except ValueError:
        return efi_error(400, "json_invalido", "O corpo da requisição não é um JSON válido.")
    if not isinstance(body, dict):
        return efi_error(400, "json_invalido", "O corpo da requisição deve ser um objeto.")
    return body
