"""Efí's MED (Mecanismo Especial de Devolução) infractions, as the simulator keeps them.

Efí's own endpoints (`GET /v2/gn/infracoes`, `POST /v2/gn/infracoes/{id}/defesa`) have
no published schema for an infraction; this module's shape is the simulator's:

    {"idInfracao", "endToEndId", "txid", "valor": "50.00", "tipo": "SOLICITACAO_DEVOLUCAO",
     "motivo", "situacao", "prazoDefesa", "criacao", "atualizacao", "defesa": null |
     {"analise", "justificativa", "horario"}}

`situacao`: ABERTA (awaiting the merchant), EM_ANALISE (contested, the payer's PSP
decides), ACEITA (the money went back to the payer), REJEITADA (the merchant keeps it),
CANCELADA (withdrawn). The bucket holds {"data": <infraction>, "created", "updated"}
(datetimes, for the list's window) by idInfracao.
"""

import math
import uuid
from datetime import datetime, timedelta
from typing import Any

from gateways.simulators._money import major_string
from gateways.simulators.context import random_id, rfc3339
from gateways.simulators.routing import Request

INFRACTIONS = "gerencianet.disputes"
DEFENSE_WINDOW = timedelta(days=7)
OPEN_SITUATIONS = frozenset({"ABERTA", "EM_ANALISE"})
# What the merchant's defense makes of an open infraction.
ANALYSES = {"aceito": "ACEITA", "rejeitado": "EM_ANALISE"}
# How the control API's close ends one, from the merchant's side.
OUTCOMES = {"won": "REJEITADA", "lost": "ACEITA"}
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000


def new_infraction(
    pix: dict[str, Any], *, amount: int, reason: str, now: datetime
) -> dict[str, Any]:
    return {
        "idInfracao": str(uuid.uuid4()),
        "endToEndId": pix["endToEndId"],
        "txid": pix["txid"],
        "valor": major_string(amount),
        "tipo": "SOLICITACAO_DEVOLUCAO",
        "motivo": reason,
        "situacao": "ABERTA",
        "prazoDefesa": rfc3339(now + DEFENSE_WINDOW),
        "criacao": rfc3339(now),
        "atualizacao": rfc3339(now),
        "defesa": None,
    }


def move(stored: dict[str, Any], situacao: str, now: datetime) -> None:
    stored["data"]["situacao"] = situacao
    stored["data"]["atualizacao"] = rfc3339(now)
    stored["updated"] = now


def record_defense(stored: dict[str, Any], analise: str, justificativa: str, now: datetime) -> None:
    stored["data"]["defesa"] = {
        "analise": analise,
        "justificativa": justificativa,
        "horario": rfc3339(now),
    }
    move(stored, ANALYSES[analise], now)


def med_devolution(infraction: dict[str, Any], *, rtr_prefix: str, now: datetime) -> dict[str, Any]:
    """The return an accepted infraction makes on its pix, settled at once."""
    return {
        "id": "MED" + uuid.UUID(infraction["idInfracao"]).hex,  # [a-zA-Z0-9]{35}
        "rtrId": rtr_prefix + now.strftime("%Y%m%d%H%M") + random_id("", 11),
        "valor": infraction["valor"],
        "natureza": natureza(infraction["motivo"]),
        "horario": {"solicitacao": rfc3339(now), "liquidacao": rfc3339(now)},
        "status": "DEVOLVIDO",
    }


def natureza(reason: str) -> str:
    """BCB API Pix's nature of a MED return: fraud, or the PSPs' operational failure."""
    return "MED_FRAUDE" if "fraud" in reason.lower() else "MED_OPERACIONAL"


def touches_window(stored: dict[str, Any], start: datetime, end: datetime) -> bool:
    """Created or last changed within [start, end]."""
    return start <= stored["created"] <= end or start <= stored["updated"] <= end


def paging(request: Request) -> tuple[int, int]:
    """(page, page size) from `paginacao.paginaAtual` and `paginacao.itensPorPagina`;
    ValueError when either is not a number in range."""
    page = int(request.query_value("paginacao.paginaAtual", "0"))
    size = int(request.query_value("paginacao.itensPorPagina", str(DEFAULT_PAGE_SIZE)))
    if page < 0 or not 1 <= size <= MAX_PAGE_SIZE:
        raise ValueError(f"paginaAtual >= 0, itensPorPagina de 1 a {MAX_PAGE_SIZE}")
    return page, size


def one_page(
    items: list[dict[str, Any]], page: int, size: int
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    shown = items[page * size : (page + 1) * size]
    return shown, {
        "paginaAtual": page,
        "itensPorPagina": size,
        "quantidadeDePaginas": max(1, math.ceil(len(items) / size)),
        "quantidadeTotalDeItens": len(items),
    }
