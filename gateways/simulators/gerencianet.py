"""Gerencianet / Efí PIX under /gerencianet: BCB API Pix `cob`, devolução, webhooks, OAuth,
and Efí's MED infractions (gerencianet_med.py).

`POST /oauth/token` takes HTTP Basic auth with the configured client id and secret
and issues a bearer token valid for an hour; every /v2 route wants one. Errors are
problem+json. A cob is keyed by its txid, so a repeated `PUT /v2/cob/{txid}` with the
same body answers the existing cob; with another body it is refused. The charge's
`reference` is the `infoAdicionais` entry named "payment_id" (what PayWave's adapter
sends), or the txid when there is none.

An infraction (a MED return request, opened by the control API) blocks its amount on
the pix: a devolução that would dig into it is refused. Its changes are posted to the
pix notifications' URL as `{"infracoes": [<infraction>]}` (the simulator's rendering).

Over the mTLS listener (see server.py) the same routes need a client certificate
signed by the configured CA; over plain HTTP they do not (sandbox).
"""

import copy
import json
import re
import secrets
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from gateways.simulators._brcode import dynamic_brcode, qr_png_base64
from gateways.simulators._money import major_string, minor_from_major
from gateways.simulators.callbacks import (
    Builder,
    CallbackTarget,
    Delivery,
    Outgoing,
    efi_notification_url,
    with_query,
)
from gateways.simulators.context import (
    GatewaySimulator,
    SimulationError,
    canonical,
    end_to_end_id,
    random_id,
    rfc3339,
    utc_now,
)
from gateways.simulators.faults import RefundFault
from gateways.simulators.gerencianet_med import (
    ANALYSES,
    INFRACTIONS,
    OPEN_SITUATIONS,
    OUTCOMES,
    med_devolution,
    move,
    new_infraction,
    one_page,
    paging,
    record_defense,
    touches_window,
)
from gateways.simulators.gerencianet_wire import (
    AMOUNT_PATTERN,
    DEVOLUTION_ID_PATTERN,
    TXID_PATTERN,
    basic_credentials,
    cob_not_found,
    efi_error,
    efi_json_object,
    invalid_cob,
    invalid_devolution,
    json_object,
    parse_time,
    pix_not_found,
    problem,
    validate_cob,
    webhook_not_found,
)
from gateways.simulators.routing import Request, Response, Route, route
from gateways.simulators.store import ChargeRecord, RefundRecord

EFI_ISPB = "09089356"
TOKEN_LIFETIME_S = 3600
SCOPES = (
    "cob.write cob.read pix.write pix.read webhook.write webhook.read "
    "payloadlocation.write payloadlocation.read"
)
MERCHANT_NAME = "PAYWAVE SANDBOX"
MERCHANT_CITY = "SAO PAULO"
LOCATION_HOST = "pix-sim.invalid/gerencianet/v2"  # BR Code location; nobody fetches it here
_DEVOLUTION_STATUSES = {
    RefundFault.SUCCEEDED: "DEVOLVIDO",
    RefundFault.PENDING: "EM_PROCESSAMENTO",
    RefundFault.FAILED: "NAO_REALIZADO",
}
# Why a devolução was not made, in its `motivo` (BCB API Pix: the PSP's own words).
DEVOLUTION_REFUSED = "Devolução recusada pelo PSP do pagador: conta de destino encerrada."
REFERENCE_FIELD = "payment_id"  # the infoAdicionais entry that carries PayWave's payment id
_ERROR_NAMES = {
    400: ("RequisicaoInvalida", "Requisição inválida"),
    401: ("AcessoNegado", "Acesso Negado"),
    403: ("AcessoNegado", "Acesso Negado"),
    404: ("NaoEncontrado", "Não Encontrado"),
    429: ("LimiteDeRequisicoesExcedido", "Limite de requisições excedido"),
    502: ("GatewayInvalido", "Gateway inválido"),
    503: ("ServicoIndisponivel", "Serviço indisponível"),
}


Notice = tuple[str, Builder]  # a callback to send once the lock is released: (event, builder)


class GerencianetSimulator(GatewaySimulator):
    name = "gerencianet"

    def routes(self) -> list[Route]:
        p = "/gerencianet"
        return [
            route("POST", f"{p}/oauth/token", self._token),
            route("PUT", f"{p}/v2/cob/{{txid}}", self._guard(self._create_cob)),
            route("GET", f"{p}/v2/cob/{{txid}}", self._guard(self._get_cob)),
            route("PATCH", f"{p}/v2/cob/{{txid}}", self._guard(self._patch_cob)),
            route("GET", f"{p}/v2/cob", self._guard(self._list_cobs)),
            route("GET", f"{p}/v2/loc/{{id}}/qrcode", self._guard(self._qrcode)),
            route("GET", f"{p}/v2/pix/{{e2eid}}", self._guard(self._get_pix)),
            route("PUT", f"{p}/v2/pix/{{e2eid}}/devolucao/{{id}}", self._guard(self._devolve)),
            route("GET", f"{p}/v2/pix/{{e2eid}}/devolucao/{{id}}", self._guard(self._devolution)),
            route("PUT", f"{p}/v2/webhook/{{chave}}", self._guard(self._put_webhook)),
            route("GET", f"{p}/v2/webhook/{{chave}}", self._guard(self._get_webhook)),
            route("DELETE", f"{p}/v2/webhook/{{chave}}", self._guard(self._delete_webhook)),
            route("GET", f"{p}/v2/gn/infracoes", self._guard(self._list_infractions)),
            route(
                "POST",
                f"{p}/v2/gn/infracoes/{{id}}/defesa",
                self._guard_notifying(self._defend),
            ),
        ]

    def error_response(self, status: int, message: str) -> Response:
        default = ("ErroInternoDoServidor", "Erro Interno do Servidor")
        kind, title = _ERROR_NAMES.get(status, default if status >= 500 else ("Erro", "Erro"))
        return problem(status, kind, title, message)

    # OAuth.

    def _token(self, request: Request) -> Response:
        config = self.context.config
        client_id, client_secret = basic_credentials(request)
        if not (
            secrets.compare_digest(client_id, config.gerencianet_client_id)
            and secrets.compare_digest(client_secret, config.gerencianet_client_secret)
        ):
            return Response.json(
                401,
                {"error": "invalid_client", "error_description": "Invalid or inactive credentials"},
            )
        try:
            grant = request.json().get("grant_type")
        except (ValueError, AttributeError):
            grant = None
        if grant != "client_credentials":
            return Response.json(
                400,
                {
                    "error": "unsupported_grant_type",
                    "error_description": "grant_type must be client_credentials",
                },
            )
        token = "sim-gn-" + secrets.token_urlsafe(24)
        with self.store.lock:
            self.store.bucket("gerencianet.tokens")[token] = time.monotonic() + TOKEN_LIFETIME_S
        return Response.json(
            200,
            {
                "access_token": token,
                "token_type": "Bearer",
                "expires_in": TOKEN_LIFETIME_S,
                "scope": SCOPES,
            },
        )

    def _guard(self, handler: Callable[[Request], Response]) -> Callable[[Request], Response]:
        return self._guard_notifying(lambda request: (handler(request), []))

    def _guard_notifying(
        self, handler: Callable[[Request], tuple[Response, list[Notice]]]
    ) -> Callable[[Request], Response]:
        """A valid bearer token, the handler under the store's lock, then the notifications
        it made (outside the lock: a receiver calling back must not wait for it)."""

        def guarded(request: Request) -> Response:
            with self.store.lock:
                expires = self.store.bucket("gerencianet.tokens").get(request.bearer_token)
            if expires is None or expires < time.monotonic():
                return problem(
                    401,
                    "AcessoNegado",
                    "Acesso Negado",
                    "Token de acesso ausente, inválido ou expirado.",
                )
            with self.store.lock:
                response, notifications = handler(request)
            for event, build in notifications:
                self.context.callbacks.deliver(self.name, event, build)
            return response

        return guarded

    # Cobs.

    def _create_cob(self, request: Request) -> Response:
        txid = request.params["txid"]
        if not TXID_PATTERN.fullmatch(txid):
            return invalid_cob("txid deve seguir o padrão [a-zA-Z0-9]{26,35}", "txid")
        body = json_object(request)
        if isinstance(body, Response):
            return body
        cobs = self.store.bucket("gerencianet.cobs")
        fingerprint = canonical(body)
        if txid in cobs:
            if cobs[txid]["fingerprint"] != fingerprint:
                return invalid_cob("txid já utilizado por outra cobrança", "txid")
            return Response.json(201, self._show(txid))
        problem = validate_cob(body)
        if problem is not None:
            return problem
        now = utc_now()
        amount = minor_from_major(body["valor"]["original"])
        location = f"{LOCATION_HOST}/{uuid.uuid4().hex}"
        fault = self.br_code_fault()
        loc_id = self.store.next_number()
        cob: dict[str, Any] = {
            "calendario": {
                "criacao": rfc3339(now),
                "expiracao": int(body.get("calendario", {}).get("expiracao", 86400)),
            },
            "txid": txid,
            "revisao": 0,
            "loc": {"id": loc_id, "location": location, "tipoCob": "cob", "criacao": rfc3339(now)},
            "location": location,
            "status": "ATIVA",
            "valor": {"original": major_string(amount)},
            "chave": body["chave"],
            "pixCopiaECola": fault.finish(
                dynamic_brcode(
                    location=location,
                    amount=fault.amount(amount),
                    merchant_name=MERCHANT_NAME,
                    merchant_city=MERCHANT_CITY,
                )
            ),
        }
        for optional in ("devedor", "solicitacaoPagador", "infoAdicionais"):
            if optional in body:
                cob[optional] = body[optional]
        cobs[txid] = {"data": cob, "fingerprint": fingerprint, "amount": amount, "created": now}
        self.store.bucket("gerencianet.locs")[str(loc_id)] = txid
        self.store.add_charge(
            ChargeRecord(
                gateway=self.name,
                id=txid,
                idempotency_key=txid,
                reference=_reference(body) or txid,
                amount=amount,
                currency="BRL",
                status="ATIVA",
            )
        )
        return Response.json(201, self._show(txid))

    def _get_cob(self, request: Request) -> Response:
        if request.params["txid"] not in self.store.bucket("gerencianet.cobs"):
            return cob_not_found()
        return Response.json(200, self._show(request.params["txid"]))

    def _patch_cob(self, request: Request) -> Response:
        txid = request.params["txid"]
        stored = self.store.bucket("gerencianet.cobs").get(txid)
        if stored is None:
            return cob_not_found()
        body = json_object(request)
        if isinstance(body, Response):
            return body
        if body != {"status": "REMOVIDA_PELO_USUARIO_RECEBEDOR"}:
            return invalid_cob(
                "o simulador só altera status para REMOVIDA_PELO_USUARIO_RECEBEDOR", "status"
            )
        cob = stored["data"]
        if cob["status"] != "ATIVA":
            return invalid_cob(f"a cobrança está {cob['status']}, não ATIVA", "status")
        cob["status"] = "REMOVIDA_PELO_USUARIO_RECEBEDOR"
        cob["revisao"] += 1
        self.store.update_charge(self.name, txid, status=cob["status"])
        return Response.json(200, self._show(txid))

    def _list_cobs(self, request: Request) -> Response:
        try:
            start = parse_time(request.query_value("inicio"))
            end = parse_time(request.query_value("fim"))
        except ValueError:
            return problem(
                400,
                "ConsultaCobsInvalida",
                "Consulta inválida.",
                "inicio e fim são obrigatórios, em RFC 3339.",
                [{"razao": "inicio e fim em RFC 3339", "propriedade": "inicio"}],
            )
        status = request.query_value("status")
        cobs = [
            self._show(txid)
            for txid, stored in self.store.bucket("gerencianet.cobs").items()
            if start <= stored["created"] <= end
            and (not status or stored["data"]["status"] == status)
        ]
        paging = {
            "paginaAtual": 0,
            "itensPorPagina": 100,
            "quantidadeDePaginas": 1,
            "quantidadeTotalDeItens": len(cobs),
        }
        parameters = {"inicio": rfc3339(start), "fim": rfc3339(end), "paginacao": paging}
        return Response.json(200, {"parametros": parameters, "cobs": cobs[:100]})

    def _qrcode(self, request: Request) -> Response:
        txid = self.store.bucket("gerencianet.locs").get(request.params["id"])
        if txid is None:
            return problem(
                404,
                "LocationNaoEncontrado",
                "Location não encontrada.",
                f"Location {request.params['id']} não encontrada.",
            )
        code = self.store.bucket("gerencianet.cobs")[txid]["data"]["pixCopiaECola"]
        return Response.json(
            200,
            {
                "qrcode": code,
                "imagemQrcode": "data:image/png;base64," + qr_png_base64(code),
                "linkVisualizacao": f"{self.context.public_url}/_sim/pix/{txid}",
            },
        )

    # Received PIX and devoluções.

    def _get_pix(self, request: Request) -> Response:
        pix = self._received(request.params["e2eid"])
        if pix is None:
            return pix_not_found(request.params["e2eid"])
        return Response.json(200, copy.deepcopy(pix))

    def _devolve(self, request: Request) -> Response:
        e2eid, devolution_id = request.params["e2eid"], request.params["id"]
        pix = self._received(e2eid)
        if pix is None:
            return pix_not_found(e2eid)
        if not DEVOLUTION_ID_PATTERN.fullmatch(devolution_id):
            return invalid_devolution("id deve seguir o padrão [a-zA-Z0-9]{1,35}", "id")
        body = json_object(request)
        if isinstance(body, Response):
            return body
        valor = body.get("valor")
        if not isinstance(valor, str) or not AMOUNT_PATTERN.fullmatch(valor):
            return invalid_devolution("valor deve seguir o padrão \\d{1,10}\\.\\d{2}", "valor")
        amount = minor_from_major(valor)
        for existing in pix.get("devolucoes", []):
            if existing["id"] == devolution_id:
                if existing["valor"] != valor:
                    return invalid_devolution("id já utilizado com outro valor", "id")
                return Response.json(201, copy.deepcopy(existing))
        if amount <= 0 or amount > self._available(pix):
            return invalid_devolution("valor maior que o disponível para devolução", "valor")
        now = rfc3339(utc_now())
        fault = self.refund_fault()
        devolution: dict[str, Any] = {
            "id": devolution_id,
            "rtrId": "D" + EFI_ISPB + utc_now().strftime("%Y%m%d%H%M") + random_id("", 11),
            "valor": valor,
            "natureza": "ORIGINAL",
            "horario": {"solicitacao": now},
            "status": _DEVOLUTION_STATUSES[fault],
        }
        pix.setdefault("devolucoes", []).append(devolution)
        self.store.add_refund(
            RefundRecord(
                gateway=self.name,
                id=devolution["rtrId"],
                charge_id=pix["txid"],
                idempotency_key=devolution_id,
                amount=amount,
                status=devolution["status"],
            )
        )
        self._end(pix, devolution, fault)
        return Response.json(201, copy.deepcopy(devolution))

    def _end(self, pix: dict[str, Any], devolution: dict[str, Any], fault: RefundFault) -> None:
        """A devolução that ends as `fault` says: settled (liquidacao) or not made (motivo)."""
        if not fault.settles():
            return
        devolution["status"] = _DEVOLUTION_STATUSES[fault]
        if fault is RefundFault.FAILED:
            devolution["motivo"] = DEVOLUTION_REFUSED
        else:
            devolution["horario"]["liquidacao"] = rfc3339(utc_now())
            self._record_returned(pix)
        self.store.update_refund(self.name, devolution["rtrId"], status=devolution["status"])

    def _available(self, pix: dict[str, Any]) -> int:
        """What a devolução may still take: paid, less what is returned or on its way back,
        less what an open infraction blocks."""
        returned = sum(
            minor_from_major(d["valor"])
            for d in pix.get("devolucoes", [])
            if d["status"] != "NAO_REALIZADO"
        )
        blocked = sum(
            minor_from_major(stored["data"]["valor"])
            for stored in self._infractions_on(pix["endToEndId"])
            if stored["data"]["situacao"] in OPEN_SITUATIONS
        )
        return minor_from_major(pix["valor"]) - returned - blocked

    def _record_returned(self, pix: dict[str, Any]) -> None:
        returned = sum(
            minor_from_major(d["valor"]) for d in pix["devolucoes"] if d["status"] == "DEVOLVIDO"
        )
        self.store.update_charge(self.name, pix["txid"], amount_refunded=returned)

    def _devolution(self, request: Request) -> Response:
        pix = self._received(request.params["e2eid"])
        for devolution in (pix or {}).get("devolucoes", []):
            if devolution["id"] == request.params["id"]:
                return Response.json(200, copy.deepcopy(devolution))
        return problem(
            404,
            "DevolucaoNaoEncontrada",
            "Devolução não encontrada.",
            f"Devolução {request.params['id']} não encontrada.",
        )

    # Webhooks.

    def _put_webhook(self, request: Request) -> Response:
        body = json_object(request)
        if isinstance(body, Response):
            return body
        url = body.get("webhookUrl")
        if not isinstance(url, str) or not re.match(r"https?://", url):
            return problem(
                400,
                "WebhookOperacaoInvalida",
                "Webhook inválido.",
                "webhookUrl deve ser uma URL http(s).",
                [{"razao": "URL inválida", "propriedade": "webhookUrl"}],
            )
        webhook = {
            "webhookUrl": url,
            "chave": request.params["chave"],
            "criacao": rfc3339(utc_now()),
        }
        self.store.bucket("gerencianet.webhooks")[request.params["chave"]] = webhook
        return Response.json(200, webhook)

    def _get_webhook(self, request: Request) -> Response:
        webhook = self.store.bucket("gerencianet.webhooks").get(request.params["chave"])
        if webhook is None:
            return webhook_not_found(request.params["chave"])
        return Response.json(200, webhook)

    def _delete_webhook(self, request: Request) -> Response:
        if self.store.bucket("gerencianet.webhooks").pop(request.params["chave"], None) is None:
            return webhook_not_found(request.params["chave"])
        return Response(204)

    # The /_sim side: the payer pays, Efí notifies.

    def has_cob(self, txid: str) -> bool:
        with self.store.lock:
            return txid in self.store.bucket("gerencianet.cobs")

    def pay(self, txid: str) -> tuple[dict[str, Any], Delivery]:
        with self.store.lock:
            stored = self.store.bucket("gerencianet.cobs").get(txid)
            if stored is None:
                raise SimulationError(404, f"no Gerencianet cob {txid}")
            cob = stored["data"]
            if cob["status"] != "ATIVA":
                raise SimulationError(409, f"cob {txid} is {cob['status']}")
            expires_at = stored["created"] + timedelta(seconds=cob["calendario"]["expiracao"])
            if utc_now() > expires_at:
                raise SimulationError(409, f"cob {txid} expired at {rfc3339(expires_at)}")
            pix = {
                "endToEndId": end_to_end_id(EFI_ISPB),
                "txid": txid,
                "valor": cob["valor"]["original"],
                "chave": cob["chave"],
                "horario": rfc3339(utc_now()),
                "infoPagador": "PayWave sandbox payment",
            }
            cob["status"] = "CONCLUIDA"
            cob["pix"] = [pix]
            self.store.bucket("gerencianet.pix")[pix["endToEndId"]] = txid
            self.store.update_charge(self.name, txid, status="CONCLUIDA")
            snapshot = self._show(txid)
            webhook = self.store.bucket("gerencianet.webhooks").get(cob["chave"])
        registered = webhook["webhookUrl"] if webhook else None
        delivery = self.context.callbacks.deliver(
            self.name, "pix", self._notification_builder({"pix": [dict(pix)]}, registered)
        )
        return snapshot, delivery

    def _notification_builder(
        self, payload: dict[str, Any], registered_url: str | None
    ) -> Callable[[], Outgoing | None]:
        """Efí's notification: `payload` posted to the webhook registered for the key, else
        to the control target, with "/pix" appended (efi_notification_url)."""

        def build() -> Outgoing | None:
            webhook_url = registered_url or _webhook_url(self.context.callbacks.target(self.name))
            if not webhook_url:
                return None
            body = json.dumps(payload).encode()
            headers = {"Content-Type": "application/json"}
            return Outgoing(efi_notification_url(webhook_url), headers, body)

        return build

    # MED infractions (gerencianet_med.py): Efí's routes.

    def _list_infractions(self, request: Request) -> Response:
        try:
            start = parse_time(request.query_value("inicio"))
            end = parse_time(request.query_value("fim"))
            page, size = paging(request)
        except ValueError:
            return efi_error(
                400,
                "parametros_invalidos",
                "inicio e fim são obrigatórios, em RFC 3339; paginacao.paginaAtual >= 0 e "
                "paginacao.itensPorPagina de 1 a 1000.",
            )
        found = sorted(
            (
                stored
                for stored in self.store.bucket(INFRACTIONS).values()
                if touches_window(stored, start, end)
            ),
            key=lambda stored: (stored["created"], stored["data"]["idInfracao"]),
        )
        shown, paginacao = one_page([copy.deepcopy(s["data"]) for s in found], page, size)
        parameters = {"inicio": rfc3339(start), "fim": rfc3339(end), "paginacao": paginacao}
        return Response.json(200, {"parametros": parameters, "infracoes": shown})

    def _defend(self, request: Request) -> tuple[Response, list[Notice]]:
        stored = self.store.bucket(INFRACTIONS).get(request.params["id"])
        if stored is None:
            return _infraction_not_found(request.params["id"]), []
        body = efi_json_object(request)
        if isinstance(body, Response):
            return body, []
        analise, justificativa = body.get("analise"), body.get("justificativa", "")
        if not isinstance(analise, str) or analise not in ANALYSES:
            return efi_error(400, "json_invalido", 'analise deve ser "aceito" ou "rejeitado".'), []
        if not isinstance(justificativa, str) or (analise == "rejeitado" and not justificativa):
            return efi_error(
                400, "json_invalido", "justificativa é obrigatória para contestar a infração."
            ), []
        infraction, now = stored["data"], utc_now()
        if infraction["situacao"] != "ABERTA":
            return efi_error(
                400,
                "infracao_nao_permite_defesa",
                f"A infração está {infraction['situacao']}: só uma infração ABERTA aceita defesa.",
            ), []
        if now > parse_time(infraction["prazoDefesa"]):
            return efi_error(
                400, "prazo_defesa_expirado", "O prazo para a defesa desta infração terminou."
            ), []
        record_defense(stored, analise, justificativa, now)
        if infraction["situacao"] == "ACEITA":
            self._return_to_payer(infraction, now)
        return Response.json(200, copy.deepcopy(infraction)), [self._infraction_notice(infraction)]

    # MED infractions: the control API's side (POST /_sim/disputes, .../{id}/close).

    def disputed_charge(self, payment_id: str) -> str | None:
        """The newest paid (CONCLUIDA) cob whose `infoAdicionais` payment_id is `payment_id`."""
        paid = [
            record
            for record in self.store.charges(gateway=self.name, reference=payment_id)
            if record.status == "CONCLUIDA"
        ]
        return max(paid, key=lambda record: record.created_at).id if paid else None

    def open_dispute(
        self, charge_id: str, *, amount: int | None, reason: str, kind: str
    ) -> tuple[dict[str, Any], Delivery]:
        if kind not in ("", "pix_med"):
            raise SimulationError(400, f"Efí's disputes are PIX MED infractions, not {kind!r}")
        with self.store.lock:
            pix = self._paid_pix(charge_id)
            if any(
                stored["data"]["situacao"] in OPEN_SITUATIONS
                for stored in self._infractions_on(pix["endToEndId"])
            ):
                raise SimulationError(409, f"the pix of cob {charge_id} has an open infraction")
            available = self._available(pix)
            amount = available if amount is None else amount
            if not 0 < amount <= available:
                raise SimulationError(
                    400, f"amount {amount} is not within what is left of the pix ({available})"
                )
            now = utc_now()
            infraction = new_infraction(pix, amount=amount, reason=reason, now=now)
            stored = {"data": infraction, "created": now, "updated": now}
            self.store.bucket(INFRACTIONS)[infraction["idInfracao"]] = stored
            notice = self._infraction_notice(infraction)
        return copy.deepcopy(infraction), self.context.callbacks.deliver(self.name, *notice)

    def has_dispute(self, dispute_id: str) -> bool:
        with self.store.lock:
            return dispute_id in self.store.bucket(INFRACTIONS)

    def close_dispute(self, dispute_id: str, *, outcome: str) -> tuple[dict[str, Any], Delivery]:
        with self.store.lock:
            stored = self.store.bucket(INFRACTIONS).get(dispute_id)
            if stored is None:
                raise SimulationError(404, f"no Efí infraction {dispute_id}")
            infraction, now = stored["data"], utc_now()
            if infraction["situacao"] not in OPEN_SITUATIONS:
                raise SimulationError(409, f"infraction {dispute_id} is {infraction['situacao']}")
            move(stored, OUTCOMES[outcome], now)
            if infraction["situacao"] == "ACEITA":
                self._return_to_payer(infraction, now)
            notice = self._infraction_notice(infraction)
        return copy.deepcopy(infraction), self.context.callbacks.deliver(self.name, *notice)

    def _paid_pix(self, txid: str) -> dict[str, Any]:
        stored = self.store.bucket("gerencianet.cobs").get(txid)
        if stored is None:
            raise SimulationError(404, f"no Gerencianet cob {txid}")
        received = stored["data"].get("pix") or []
        if stored["data"]["status"] != "CONCLUIDA" or not received:
            raise SimulationError(409, f"cob {txid} is {stored['data']['status']}, not paid")
        pix = self._received(received[0]["endToEndId"])  # settles devoluções in processing
        assert pix is not None  # a paid cob's pix is always indexed
        return pix

    def _infractions_on(self, e2eid: str) -> list[dict[str, Any]]:
        """The stored infractions on one pix (looked up by key, so the state file keeps
        whatever the caller changes in them)."""
        infractions = self.store.bucket(INFRACTIONS)
        ids = [i for i, stored in infractions.items() if stored["data"]["endToEndId"] == e2eid]
        return [infractions[i] for i in ids]

    def _return_to_payer(self, infraction: dict[str, Any], now: datetime) -> None:
        """An accepted infraction's money goes back: a MED devolução on its pix."""
        pix = self._received(infraction["endToEndId"])
        assert pix is not None  # infractions are opened on received pix only
        devolution = med_devolution(infraction, rtr_prefix="D" + EFI_ISPB, now=now)
        pix.setdefault("devolucoes", []).append(devolution)
        self.store.add_refund(
            RefundRecord(
                gateway=self.name,
                id=devolution["rtrId"],
                charge_id=pix["txid"],
                idempotency_key=devolution["id"],
                amount=minor_from_major(devolution["valor"]),
                status=devolution["status"],
            )
        )
        self._record_returned(pix)

    def _infraction_notice(self, infraction: dict[str, Any]) -> Notice:
        """The callback for the infraction as it is now (a redelivery sends this same state)."""
        chave = self.store.bucket("gerencianet.cobs")[infraction["txid"]]["data"]["chave"]
        webhook = self.store.bucket("gerencianet.webhooks").get(chave)
        registered = webhook["webhookUrl"] if webhook else None
        payload = {"infracoes": [copy.deepcopy(infraction)]}
        return "infracao", self._notification_builder(payload, registered)

    # Helpers.

    def _show(self, txid: str) -> dict[str, Any]:
        return copy.deepcopy(self.store.bucket("gerencianet.cobs")[txid]["data"])

    def _received(self, e2eid: str) -> dict[str, Any] | None:
        """The PIX received; its devoluções in processing end if the `refund_status` fault
        says how (a read: GET, or a repeated PUT of the devolução)."""
        txid = self.store.bucket("gerencianet.pix").get(e2eid)
        if txid is None:
            return None
        for pix in self.store.bucket("gerencianet.cobs")[txid]["data"].get("pix", []):
            if pix["endToEndId"] == e2eid:
                for devolution in pix.get("devolucoes", []):
                    if devolution["status"] == "EM_PROCESSAMENTO":
                        self._end(pix, devolution, self.refund_fault())
                return pix
        return None


def _webhook_url(target: CallbackTarget) -> str:
    """The control API's target as a registered webhookUrl: with a secret and no `hmac`
    parameter yet, the form Efí's docs recommend, "<url>?hmac=<secret>&ignorar="."""
    if not target.url or not target.secret or "hmac=" in target.url:
        return target.url
    return with_query(target.url, {"hmac": target.secret, "ignorar": ""})


def _infraction_not_found(infraction_id: str) -> Response:
    return efi_error(
        404, "infracao_nao_encontrada", f"Nenhuma infração encontrada com o id {infraction_id}."
    )


def _reference(body: dict[str, Any]) -> str:
    for entry in body.get("infoAdicionais") or []:
        if isinstance(entry, dict) and entry.get("nome") == REFERENCE_FIELD:
            return str(entry.get("valor", ""))
    return ""
