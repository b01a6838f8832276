"""Gerencianet / Efí, for PIX: BCB API Pix `cob` charges by txid, through the official SDK.

The SDK (gerencianet 3.0.0) calls `requests` with no timeout, drops the HTTP
status of every answer that has a JSON body, and fetches a new OAuth token on
every call. Its `requests` is wrapped so every call carries our timeout and the
status is kept (`_TimedRequests`), and the token is reused while valid
(`_TokenCachingGerencianet`); a cached token the API refuses (401) is dropped and
the call made once more with a new one.

Over mTLS (production), a missing, unreadable or refused client certificate and an
untrusted server certificate are Misconfigured: nothing reached the API (the TLS
session never existed) and no retry can fix a certificate.

Disputes are PIX MED infractions (the central bank's special return mechanism), on
Efí's own endpoints `GET /v2/gn/infracoes` and `POST /v2/gn/infracoes/:idInfracao/defesa`.
The pinned SDK does not know them: they are added to its PIX endpoint table at import
under the names Efí's newer SDKs use (`med_list`, `med_defense`), so they go through
`_call` like every other request (OAuth, mTLS, timeout, status).
"""

import contextvars
import hashlib
import hmac
import json
import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any
from urllib.parse import quote

import requests
from gerencianet import Gerencianet
from gerencianet import endpoints as sdk_endpoints
from gerencianet.constants import Constants
from gerencianet.exceptions import GerencianetError, UnauthorizedError

from gateways.adapters._common import certificate_failure, error_for_status, probe_health
from gateways.base import (
    Ambiguous,
    CallbackEvent,
    CallbackKind,
    ChargeNotFound,
    ChargeRequest,
    ChargeResult,
    ChargeStatus,
    Declined,
    DisputeKind,
    DisputeResult,
    DisputeStatus,
    ErrorDetails,
    GatewayAdapter,
    GatewayError,
    HealthResult,
    InvalidCallback,
    Misconfigured,
    PixCharge,
    RefundResult,
    RefundStatus,
    Retryable,
)
from gateways.credentials import Credentials
from gateways.pix.brcode import BRCodeError, parse
from gateways.transport import CallTrace, pooled_session, traced_call, transport_error
from paywave.values.money import Money

PRODUCTION_BASE = "https://pix.api.efipay.com.br"
DEFAULT_TIMEOUT_SECONDS = 30.0

_STATUSES = {
    "ATIVA": ChargeStatus.AWAITING_PAYMENT,
    "CONCLUIDA": ChargeStatus.SUCCEEDED,
    "REMOVIDA_PELO_USUARIO_RECEBEDOR": ChargeStatus.CANCELED,
    "REMOVIDA_PELO_PSP": ChargeStatus.CANCELED,
}
_REFUND_STATUSES = {
    "DEVOLVIDO": RefundStatus.SUCCEEDED,
    "EM_PROCESSAMENTO": RefundStatus.PENDING,
    "NAO_REALIZADO": RefundStatus.FAILED,
}
_DISPUTE_STATUSES = {
    "ABERTA": DisputeStatus.NEEDS_RESPONSE,
    "EM_ANALISE": DisputeStatus.UNDER_REVIEW,
    "REJEITADA": DisputeStatus.WON,
    "CANCELADA": DisputeStatus.WON,
    "ACEITA": DisputeStatus.LOST,
}
# Efí's MED endpoints, missing from gerencianet 3.0.0 (names as in Efí's newer SDKs).
_MED_ENDPOINTS = {
    "med_list": {"route": "/v2/gn/infracoes", "method": "get"},
    "med_defense": {"route": "/v2/gn/infracoes/:idInfracao/defesa", "method": "post"},
}
DISPUTE_LOOKBACK = timedelta(days=90)  # how far back `dispute(id)` looks for an infraction
MED_PAGE_SIZE = 1000  # the most BCB API Pix lists allow per page
# `fim` of a list is our clock's "now" plus this: Efí's clock may run a little ahead.
CLOCK_MARGIN = timedelta(minutes=1)


@dataclass
class _CallState:
    timeout: float
    status: int | None = None
    token: Any = None  # the token the call was sent with
    token_fetched: bool = False  # fetched for this call (not taken from the cache)


class _TokenUnavailable(Exception):
    """No OAuth token: the token request failed below HTTP (its cause says how)."""


_current_call: contextvars.ContextVar[_CallState | None] = contextvars.ContextVar(
    "gerencianet_call", default=None
)


class _TimedRequests(SimpleNamespace):
    """Stands in for the `requests` module inside the SDK: adds our timeout, keeps the status."""

    exceptions = requests.exceptions

    @staticmethod
    def request(method: str, url: str, **kwargs: Any) -> requests.Response:
        state = _current_call.get()
        kwargs.setdefault("timeout", state.timeout if state else DEFAULT_TIMEOUT_SECONDS)
        response = pooled_session().request(method, url, **kwargs)
        if state is not None:
            state.status = response.status_code
        return response

    @classmethod
    def post(cls, url: str, **kwargs: Any) -> requests.Response:
        return cls.request("post", url, **kwargs)


sdk_endpoints.requests = _TimedRequests()
for _name, _settings in _MED_ENDPOINTS.items():
    Constants.APIS["PIX"]["ENDPOINTS"].setdefault(_name, _settings)


class _TokenCachingGerencianet(Gerencianet):
    """The SDK client, pointed at our base URL, reusing its OAuth token until it expires."""

    def __init__(self, options: dict[str, Any], *, base_url: str) -> None:
        super().__init__(options)
        self._paywave_base_url = base_url.rstrip("/")
        self._token_expires_at = 0.0
        self._token_lock = threading.Lock()

    def get_url(self) -> None:
        self.base_url = self._paywave_base_url

    def authenticate(self) -> None:
        state = _current_call.get()
        with self._token_lock:
            fetch = not (self.token and time.monotonic() < self._token_expires_at)
            if fetch:
                try:
                    super().authenticate()
                except OSError as exc:  # requests' errors, and its checks of the cert files
                    raise _TokenUnavailable(str(exc)) from exc
                lifetime = int(self.token.get("expires_in", 0))
                self._token_expires_at = time.monotonic() + max(0, lifetime - 60)
            if state is not None:
                state.token, state.token_fetched = self.token, fetch

    def expire_token(self, refused: Any) -> None:
        """Stop reusing `refused` (another thread may have replaced it already). The
        value stays until replaced, so calls in flight on other threads can still send."""
        with self._token_lock:
            if self.token is refused:
                self._token_expires_at = 0.0


def txid_for(idempotency_key: str) -> str:
    """A valid, stable txid ([a-zA-Z0-9]{26,35}) for one charge's idempotency key."""
    return hashlib.sha256(idempotency_key.encode()).hexdigest()[:32]


class GerencianetAdapter(GatewayAdapter):
    # At most: the cob refused with a cached token (401), a new OAuth token, the cob again.
    requests_per_charge = 3

    def __init__(
        self,
        *,
        code: str,
        timeout_seconds: float,
        credentials: Credentials,
        api_base: str | None = None,
    ) -> None:
        super().__init__(code=code, timeout_seconds=timeout_seconds)
        self._credentials = credentials
        self._pix_key = credentials.require("PIX_KEY")
        options = {
            "client_id": credentials.require("CLIENT_ID"),
            "client_secret": credentials.require("CLIENT_SECRET"),
            "certificate": credentials.get("CERT_PEM") or None,
            "sandbox": api_base is not None,
        }
        self._sdk = _TokenCachingGerencianet(options, base_url=api_base or PRODUCTION_BASE)

    def charge(self, request: ChargeRequest) -> ChargeResult:
        if request.method != "pix":
            raise Declined("gerencianet: only PIX is configured", code="method_not_supported")
        tax_id = request.payer.tax_id
        debtor = {"cpf" if len(tax_id) == 11 else "cnpj": tax_id, "nome": request.payer.name}
        body = {
            "calendario": {"expiracao": request.pix_expires_in},
            "devedor": debtor,
            "valor": {"original": Money(request.amount, request.currency).to_decimal_string()},
            "chave": self._pix_key,
            "solicitacaoPagador": (request.description or "PayWave")[:140],
            "infoAdicionais": [{"nome": "payment_id", "valor": request.payment_id}],
        }
        cob = self._call("pix_create_charge", params={"txid": txid_for(request.idempotency_key)},
                         body=body)  # fmt: skip
        return self._result(cob)

    def retrieve(self, reference: str) -> ChargeResult:
        return self._result(self._call("pix_detail_charge", params={"txid": reference}))

    def find_charge(self, request: ChargeRequest) -> ChargeResult | None:
        """The cob's txid is derived from the idempotency key: read it directly."""
        try:
            return self.retrieve(txid_for(request.idempotency_key))
        except ChargeNotFound:
            return None

    def cancel(self, reference: str) -> ChargeResult:
        cob = self._call(
            "pix_update_charge",
            params={"txid": reference},
            body={"status": "REMOVIDA_PELO_USUARIO_RECEBEDOR"},
        )
        return self._result(cob)

    def refund(self, *, reference: str, amount: int, idempotency_key: str) -> RefundResult:
        cob = self._call("pix_detail_charge", params={"txid": reference})
        received = cob.get("pix") or []
        if not received:
            raise Declined("gerencianet: nothing was paid to refund", code="not_paid")
        devolution = self._call(
            "pix_devolution",
            params={"e2eId": received[0]["endToEndId"], "id": txid_for(idempotency_key)},
            body={"valor": Money(amount, "BRL").to_decimal_string()},
        )
        status = devolution.get("status", "")
        return RefundResult(
            status=_REFUND_STATUSES.get(status, RefundStatus.PENDING),
            reference=str(devolution.get("rtrId") or devolution.get("id", "")),
            amount=Money.from_decimal(devolution.get("valor", "0"), "BRL").amount,
            raw_status=status,
        )

    def health(self) -> HealthResult:
        now = datetime.now(UTC)
        window = {
            "inicio": (now - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "fim": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        return probe_health(lambda: self._call("pix_list_charges", params=window))

    # Disputes: PIX MED infractions.

    def disputes(self, reference: str) -> list[DisputeResult]:
        """The infractions on the pix that paid the cob `reference` (its txid). Efí lists
        infractions by time only: from a day before the cob was made until now."""
        cob = self._call("pix_detail_charge", params={"txid": reference})
        end_to_end_ids = {pix.get("endToEndId") for pix in cob.get("pix") or []}
        if not end_to_end_ids:
            return []
        created = _rfc3339((cob.get("calendario") or {}).get("criacao"))
        since = (created or datetime.now(UTC) - DISPUTE_LOOKBACK) - timedelta(days=1)
        return [
            _dispute_result(infraction)
            for infraction in self._infractions(since)
            if infraction.get("endToEndId") in end_to_end_ids
        ]

    def dispute(self, reference: str) -> DisputeResult:
        """Efí reads infractions only as a list: the last 90 days', searched for the id."""
        for infraction in self._infractions(datetime.now(UTC) - DISPUTE_LOOKBACK):
            if infraction.get("idInfracao") == reference:
                return _dispute_result(infraction)
        raise ChargeNotFound(f"{self.code}: no such infraction", code="infracao_nao_encontrada")

    def disputes_since(self, since: datetime) -> list[DisputeResult]:
        """Infractions opened or changed at or after `since` (Efí's window covers both)."""
        since = since if since.tzinfo else since.replace(tzinfo=UTC)
        # Efí writes times to the millisecond: a change in `since`'s own millisecond counts.
        floor = since.replace(microsecond=since.microsecond // 1000 * 1000)
        return [
            _dispute_result(infraction)
            for infraction in self._infractions(since)
            if (_rfc3339(infraction.get("atualizacao")) or floor) >= floor
        ]

    def submit_dispute_evidence(self, reference: str, text: str) -> DisputeResult:
        """Contest the infraction ("rejeitado") with `text` as the justification."""
        answer = self._call(
            "med_defense",
            params={"idInfracao": quote(reference, safe="")},
            body={"analise": "rejeitado", "justificativa": text},
            subject="infraction",
        )
        if answer.get("idInfracao") != reference:  # no infraction in the answer: read it
            return self.dispute(reference)
        return _dispute_result(answer)

    def _infractions(self, since: datetime) -> list[Mapping[str, Any]]:
        """Every infraction Efí lists from `since` until now, all pages."""
        window = {"inicio": _query_time(since),
                  "fim": _query_time(datetime.now(UTC) + CLOCK_MARGIN)}  # fmt: skip
        found: list[Mapping[str, Any]] = []
        page = 0
        while True:
            answer = self._call(
                "med_list",
                params={
                    **window,
                    "paginacao.paginaAtual": page,
                    "paginacao.itensPorPagina": MED_PAGE_SIZE,
                },
            )
            infractions = answer.get("infracoes")
            if not isinstance(infractions, list):
                raise Ambiguous(f"{self.code}: unreadable infraction list", code="unreadable")
            found.extend(item for item in infractions if isinstance(item, Mapping))
            paging = (answer.get("parametros") or {}).get("paginacao") or {}
            page += 1
            if not infractions or page >= int(paging.get("quantidadeDePaginas") or 0):
                return found

    def parse_callback(
        self, *, headers: Mapping[str, str], query: Mapping[str, str], body: bytes
    ) -> CallbackEvent:
        # Efí signs nothing: production relies on mTLS at the ingress; the shared secret
        # in the registered URL (?hmac=...) is the documented alternative.
        secret = self._credentials.require("WEBHOOK_SECRET")
        if not hmac.compare_digest(query.get("hmac", "").encode(), secret.encode()):
            raise InvalidCallback("gerencianet: wrong or missing callback secret")
        try:
            payload = json.loads(body)
        except ValueError as exc:  # UnicodeDecodeError included
            raise InvalidCallback("malformed Gerencianet notification") from exc
        if isinstance(payload, dict) and "infracoes" in payload and "pix" not in payload:
            return self._infraction_event(payload)
        try:
            item = payload["pix"][0]
            txid, end_to_end = item["txid"], item["endToEndId"]
            if not (isinstance(txid, str) and txid and isinstance(end_to_end, str) and end_to_end):
                raise ValueError("txid and endToEndId must be non-empty strings")
            amount = Money.from_decimal(str(item["valor"]), "BRL").amount
        # ArithmeticError: decimal.InvalidOperation, for a valor that is not a number.
        except (ValueError, KeyError, IndexError, TypeError, ArithmeticError) as exc:
            raise InvalidCallback("malformed Gerencianet notification") from exc
        return CallbackEvent(
            gateway=self.code,
            event_id=end_to_end,
            kind=CallbackKind.PAYMENT_UPDATED,  # confirmed by looking the cob up
            reference=txid,
            txid=txid,
            amount=amount,
            raw=payload,
        )

    def _infraction_event(self, payload: Mapping[str, Any]) -> CallbackEvent:
        """`{"infracoes": [<infraction>]}` (the first one read): a MED infraction changed.
        PayWave reads it back with `disputes(txid)`, so only its identity is taken here."""
        try:
            item = payload["infracoes"][0]
            identity = [item["idInfracao"], item["situacao"], item["atualizacao"]]
            if not all(isinstance(part, str) and part for part in identity):
                raise ValueError("idInfracao, situacao and atualizacao must be non-empty strings")
            txid = item.get("txid") or ""
            if not isinstance(txid, str):
                raise TypeError("txid must be a string")
            valor = item.get("valor")
            amount = Money.from_decimal(str(valor), "BRL").amount if valor is not None else None
        except (ValueError, KeyError, IndexError, TypeError, ArithmeticError) as exc:
            raise InvalidCallback("malformed Gerencianet infraction notification") from exc
        return CallbackEvent(
            gateway=self.code,
            event_id="med:{}:{}:{}".format(*identity),
            kind=CallbackKind.DISPUTE_UPDATED,
            reference=txid,
            txid=txid,
            amount=amount,
            raw=payload,
        )

    def _call(self, endpoint: str, *, subject: str = "charge", **kwargs: Any) -> Mapping[str, Any]:
        """`endpoint` through the SDK; an error answer raised as what the caller must do
        (`subject`: what a 404 did not find)."""
        state, answer = self._send(endpoint, kwargs)
        if state.status == 401 and not state.token_fetched:
            # A cached token refused (revoked, or the API restarted): a 401 was not
            # processed, so once more with a new token is safe.
            self._sdk.expire_token(state.token)
            state, answer = self._send(endpoint, kwargs)
        status = state.status or 0
        body = answer if isinstance(answer, Mapping) else {}
        if not 200 <= status < 300:
            raise _error_for(status, body, gateway=self.code, subject=subject)
        if not isinstance(answer, Mapping):  # the SDK's stand-in for a body that is not JSON
            raise Ambiguous(f"{self.code}: unreadable answer (HTTP {status})", http_status=status)
        return answer

    def _send(self, endpoint: str, kwargs: Mapping[str, Any]) -> tuple[_CallState, Any]:
        state = _CallState(timeout=self.timeout_seconds)
        token = _current_call.set(state)
        # The SDK deletes path parameters from the dict it is given: a copy per send.
        arguments = {k: dict(v) if isinstance(v, dict) else v for k, v in kwargs.items()}
        try:
            with traced_call() as trace:
                try:
                    return state, getattr(self._sdk, endpoint)(**arguments)
                except _TokenUnavailable as exc:
                    cause = exc.__cause__ or exc
                    raise _transport_failure(cause, gateway=self.code, oauth=True) from exc
                except OSError as exc:  # requests' errors, and its checks of the cert files
                    raise _transport_failure(
                        exc, gateway=self.code, oauth=False, trace=trace
                    ) from exc
        except UnauthorizedError as exc:  # the OAuth token request was answered, not 200
            status = state.status or 0
            if status == 429 or status >= 500:
                raise Retryable(f"{self.code}: OAuth HTTP {status}", http_status=status) from exc
            raise Misconfigured(f"{self.code}: credentials refused", http_status=status) from exc
        except GerencianetError as exc:
            raise Declined(f"{self.code}: {exc.msg}", code="invalid_request") from exc
        finally:
            _current_call.reset(token)

    def _result(self, cob: Mapping[str, Any]) -> ChargeResult:
        status = cob.get("status", "")
        mapped = _STATUSES.get(status, ChargeStatus.PENDING)
        expires_at = _expiry(cob)
        if (
            mapped == ChargeStatus.AWAITING_PAYMENT
            and expires_at
            and expires_at < datetime.now(UTC)
        ):
            mapped = ChargeStatus.EXPIRED
        pix = None
        if cob.get("pixCopiaECola"):
            try:
                parse(cob["pixCopiaECola"])
            except BRCodeError as exc:
                raise Ambiguous(
                    "gerencianet: the PIX code in the answer is not a valid BR Code",
                    code="invalid_br_code",
                    gateway_message=str(exc),
                ) from exc
            pix = PixCharge(txid=cob["txid"], br_code=cob["pixCopiaECola"], expires_at=expires_at)
        original = (cob.get("valor") or {}).get("original")
        return ChargeResult(
            status=mapped,
            reference=str(cob.get("txid", "")),
            raw_status=status,
            amount=Money.from_decimal(original, "BRL").amount if original else None,
            currency="BRL",  # the BCB API Pix charges only in reais
            pix=pix,
        )


def _expiry(cob: Mapping[str, Any]) -> datetime | None:
    calendar = cob.get("calendario") or {}
    created, seconds = calendar.get("criacao"), calendar.get("expiracao")
    if not created or seconds is None:
        return None
    try:  # RFC 3339 allows a lowercase "z", which fromisoformat does not read
        created_at = datetime.fromisoformat(re.sub(r"[Zz]$", "+00:00", str(created)))
        return created_at + timedelta(seconds=int(seconds))
    except (ValueError, TypeError, OverflowError):
        return None  # unreadable: the payment's own expiry is assumed (processing._apply_pix)


def _rfc3339(value: Any) -> datetime | None:
    """An RFC 3339 time with its offset, or None when missing or unreadable."""
    if not value:
        return None
    try:  # RFC 3339 allows a lowercase "z", which fromisoformat does not read
        moment = datetime.fromisoformat(re.sub(r"[Zz]$", "+00:00", str(value)))
    except ValueError:
        return None
    return moment if moment.tzinfo else None


def _query_time(moment: datetime) -> str:
    """A list's `inicio`/`fim`: UTC with "Z", since the SDK does not URL-encode a "+"."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _dispute_result(infraction: Mapping[str, Any]) -> DisputeResult:
    """An infraction (the simulator's rendering; Efí publishes no full schema) as PayWave's."""
    situacao = str(infraction.get("situacao") or "")
    try:
        amount = Money.from_decimal(str(infraction["valor"]), "BRL").amount
        reference, txid = str(infraction["idInfracao"]), str(infraction["txid"])
    except (KeyError, ValueError, ArithmeticError) as exc:
        raise Ambiguous("gerencianet: unreadable infraction", code="unreadable") from exc
    return DisputeResult(
        reference=reference,
        charge_reference=txid,
        kind=DisputeKind.PIX_MED,
        # A word not known here: still open, as far as PayWave can tell.
        status=_DISPUTE_STATUSES.get(situacao, DisputeStatus.UNDER_REVIEW),
        raw_status=situacao,
        amount=amount,
        currency="BRL",
        reason=str(infraction.get("motivo") or ""),
        evidence_due_at=_rfc3339(infraction.get("prazoDefesa")),
        evidence_submittable=situacao == "ABERTA",
    )


def _transport_failure(
    exc: BaseException, *, gateway: str, oauth: bool, trace: CallTrace | None = None
) -> GatewayError:
    if problem := certificate_failure(exc):
        return Misconfigured(f"{gateway}: {problem}", code="tls_certificate")
    if not isinstance(exc, requests.RequestException):  # e.g. the cert file is not there
        return Misconfigured(f"{gateway}: {exc}", code="tls_certificate")
    if oauth:  # a token request changes nothing at the gateway, whatever became of it
        return Retryable(f"{gateway}: no OAuth token", gateway_message=str(exc)[:300])
    return transport_error(exc, gateway=gateway, trace=trace)


def _error_for(
    status: int, body: Mapping[str, Any], *, gateway: str, subject: str = "charge"
) -> GatewayError:
    """Efí's error answer, classed by status: BCB API Pix problem details, or Efí's own
    `{"nome", "mensagem"}` (its /v2/gn endpoints)."""
    violations = body.get("violacoes") or []
    first = violations[0] if violations and isinstance(violations[0], Mapping) else {}
    # `mensagem` last: the words of Efí's own endpoints, when there are no others.
    message = first.get("razao") or body.get("detail") or body.get("title") or body.get("mensagem")
    details: ErrorDetails = {
        "code": str(body.get("nome") or body.get("type") or status),
        "gateway_message": str(message or ""),
        "http_status": status,
    }
    return error_for_status(status, details, gateway=gateway, subject=subject)
