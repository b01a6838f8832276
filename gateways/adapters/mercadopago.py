"""Mercado Pago, for PIX: payments with payment_method_id "pix", through the official SDK."""

import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import mercadopago
import requests
from mercadopago.config import RequestOptions
from mercadopago.errors.exceptions import MPServerError
from mercadopago.http import HttpClient
from mercadopago.webhook import InvalidWebhookSignatureError, WebhookSignatureValidator

from gateways.adapters._common import certificate_failure, error_for_status, header, probe_health
from gateways.base import (
    Ambiguous,
    CallbackEvent,
    CallbackKind,
    ChargeRequest,
    ChargeResult,
    ChargeStatus,
    Declined,
    ErrorDetails,
    GatewayAdapter,
    GatewayError,
    HealthResult,
    InvalidCallback,
    Misconfigured,
    PixCharge,
    RefundResult,
    RefundStatus,
)
from gateways.credentials import Credentials
from gateways.pix.brcode import BRCodeError, parse
from gateways.transport import pooled_session, traced_call, transport_error
from paywave.values.money import Money

PRODUCTION_BASE = "https://api.mercadopago.com"
CALLBACK_TOLERANCE_SECONDS = 300
MAX_IDEMPOTENCY_KEY = 64  # the SDK refuses longer keys with a ValueError

_STATUSES = {
    "pending": ChargeStatus.AWAITING_PAYMENT,
    "in_process": ChargeStatus.PENDING,
    "authorized": ChargeStatus.PENDING,
    "approved": ChargeStatus.SUCCEEDED,
    # Paid once, but the money is no longer (or not surely) the merchant's.
    "refunded": ChargeStatus.REFUNDED,
    "charged_back": ChargeStatus.CHARGED_BACK,
    "in_mediation": ChargeStatus.IN_DISPUTE,
    "rejected": ChargeStatus.FAILED,
    "cancelled": ChargeStatus.CANCELED,
}


# A refund's final words; any other is still processing (in_process, pending, ...).
_FINAL_REFUND_STATUSES = {"approved": RefundStatus.SUCCEEDED, "rejected": RefundStatus.FAILED}


class _PayWaveHttpClient(HttpClient):
    """The SDK's HTTP client, never retrying, optionally sent to another base URL.

    The SDK's own mounts a urllib3 Retry on https:// whose status list (429, 5xx)
    applies to GET and PUT even with max_retries=0: the exhausted retry then raises
    RetryError instead of answering, and the status is lost. The engine owns retries,
    so this one has none, on any status.
    """

    def __init__(self, base_url: str = PRODUCTION_BASE) -> None:
        self._base_url = base_url.rstrip("/")

    def request(
        self,
        method: str,
        url: str,
        maxretries: Any = None,
        retry_on: Any = None,
        backoff_factor: Any = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """The SDK's answer shape, `{"status", "response"}`, over a kept-alive session
        (the SDK's own client opens a new session, and connection, per call)."""
        if url.startswith(PRODUCTION_BASE):
            url = self._base_url + url[len(PRODUCTION_BASE) :]
        answer = pooled_session().request(method, url, **kwargs)
        response: dict[str, Any] = {"status": answer.status_code, "response": None}
        if answer.status_code != 204 and answer.content:
            try:
                response["response"] = answer.json()
            except ValueError as exc:
                raise MPServerError(
                    answer.status_code,
                    {"message": "Invalid JSON in response body", "error": "invalid_response"},
                ) from exc
        return response


def idempotency_key_header(key: str) -> str:
    """The key as Mercado Pago takes it: up to 64 characters; longer ones hashed, stably."""
    if len(key) <= MAX_IDEMPOTENCY_KEY:
        return key
    return hashlib.sha256(key.encode()).hexdigest()


class MercadoPagoAdapter(GatewayAdapter):
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
        self._token = credentials.require("ACCESS_TOKEN")
        http_client = _PayWaveHttpClient(api_base or PRODUCTION_BASE)
        self._sdk = mercadopago.SDK(self._token, http_client=http_client)

    def _options(self, idempotency_key: str | None = None) -> RequestOptions:
        headers = None
        if idempotency_key:
            headers = {"x-idempotency-key": idempotency_key_header(idempotency_key)}
        return RequestOptions(
            access_token=self._token,
            connection_timeout=float(self.timeout_seconds),
            custom_headers=headers,
            max_retries=0,  # the processing engine owns retries
            retry_on=[],
        )

    def charge(self, request: ChargeRequest) -> ChargeResult:
        if request.method != "pix":
            raise Declined("mercadopago: only PIX is configured", code="method_not_supported")
        expires_at = datetime.now(UTC) + timedelta(seconds=request.pix_expires_in)
        first_name, _, last_name = request.payer.name.partition(" ")
        body = {
            # Mercado Pago takes a JSON number in major units; built from the exact
            # decimal, so the float's shortest repr is the exact two-decimal amount.
            "transaction_amount": float(Money(request.amount, request.currency).to_decimal()),
            "payment_method_id": "pix",
            "description": request.description or f"PayWave payment {request.payment_id}",
            "external_reference": request.payment_id,
            "date_of_expiration": expires_at.isoformat(timespec="milliseconds"),
            "payer": {
                "email": request.payer.email,
                "first_name": first_name,
                "last_name": last_name,
                "identification": {
                    "type": "CPF" if len(request.payer.tax_id) == 11 else "CNPJ",
                    "number": request.payer.tax_id,
                },
            },
        }
        response = self._call(
            lambda: self._sdk.payment().create(body, self._options(request.idempotency_key))
        )
        return self._result(response)

    def retrieve(self, reference: str) -> ChargeResult:
        return self._result(self._call(lambda: self._sdk.payment().get(reference, self._options())))

    def find_charge(self, request: ChargeRequest) -> ChargeResult | None:
        """Searches by external_reference (our payment id): the newest such payment."""
        response = self._call(
            lambda: self._sdk.payment().search(
                {"external_reference": request.payment_id, "sort": "date_created",
                 "criteria": "desc"},
                self._options(),
            )
        )  # fmt: skip
        results = (response["response"] or {}).get("results") or []
        if not results:
            return None
        return self._result({"response": results[0]})

    def cancel(self, reference: str) -> ChargeResult:
        response = self._call(
            lambda: self._sdk.payment().update(reference, {"status": "cancelled"}, self._options())
        )
        return self._result(response)

    def refund(self, *, reference: str, amount: int, idempotency_key: str) -> RefundResult:
        # Always the amount asked for: `{}` (a refund of whatever is left) could refund
        # less than asked, or more than meant, and say it succeeded.
        body = {"amount": float(Money(amount, "BRL").to_decimal())}
        response = self._call(
            lambda: self._sdk.refund().create(reference, body, self._options(idempotency_key))
        )
        refund = response["response"]
        if refund.get("status") not in _FINAL_REFUND_STATUSES and refund.get("id"):
            # A create asked again with its key replays its first answer, pending for
            # ever: the refund's state now is read back by its id.
            refund_id = refund["id"]
            read = self._call(lambda: self._sdk.refund().get(reference, refund_id, self._options()))
            refund = read["response"]
        status = refund.get("status", "")
        return RefundResult(
            status=_FINAL_REFUND_STATUSES.get(status, RefundStatus.PENDING),
            reference=str(refund.get("id", "")),
            amount=int(Money.from_decimal(str(refund.get("amount", 0)), "BRL").amount),
            raw_status=status,
        )

    def health(self) -> HealthResult:
        return probe_health(lambda: self._call(lambda: self._sdk.user().get(self._options())))

    def parse_callback(
        self, *, headers: Mapping[str, str], query: Mapping[str, str], body: bytes
    ) -> CallbackEvent:
        payload, data_id = _notification(query, body)
        request_id = header(headers, "x-request-id")
        try:
            # The signature covers the query's data.id (what Mercado Pago signs), not the body.
            WebhookSignatureValidator.validate(
                header(headers, "x-signature"),
                request_id,
                data_id,
                self._credentials.require("WEBHOOK_SECRET"),
                tolerance_seconds=CALLBACK_TOLERANCE_SECONDS,
            )
        except InvalidWebhookSignatureError as exc:
            raise InvalidCallback(f"mercadopago: {exc.reason.value}") from exc
        return CallbackEvent(
            gateway=self.code,
            event_id=str(payload.get("id") or f"{data_id}:{request_id}"),
            kind=CallbackKind.PAYMENT_UPDATED,  # the body says which payment, not its state
            reference=data_id,
            raw=payload,
        )

    def _call(self, send: Any) -> Mapping[str, Any]:
        with traced_call() as trace:
            try:
                response = send()
            except requests.RequestException as exc:
                if problem := certificate_failure(exc):
                    raise Misconfigured(f"{self.code}: {problem}", code="tls_certificate") from exc
                raise transport_error(exc, gateway=self.code, trace=trace) from exc
            except MPServerError as exc:  # an answer whose body is not JSON
                raise _unreadable(exc.status_code, str(exc), gateway=self.code) from exc
        status = response["status"]
        body = response.get("response")
        if not 200 <= status < 300:
            raise _error_for(status, body if isinstance(body, Mapping) else {}, gateway=self.code)
        if not isinstance(body, Mapping):
            raise _unreadable(status, f"HTTP {status} without a JSON object", gateway=self.code)
        return response

    def _result(self, response: Mapping[str, Any]) -> ChargeResult:
        payment = response["response"]
        status = payment.get("status", "")
        detail = payment.get("status_detail", "")
        mapped = _STATUSES.get(status, ChargeStatus.PENDING)
        if status == "cancelled" and detail == "expired":
            mapped = ChargeStatus.EXPIRED
        pix = None
        transaction = (payment.get("point_of_interaction") or {}).get("transaction_data") or {}
        if transaction.get("qr_code"):
            pix = self._pix(transaction, payment)
        return ChargeResult(
            status=mapped,
            reference=str(payment["id"]),
            raw_status=f"{status}/{detail}" if detail else status,
            amount=_amount(payment),
            currency=str(payment.get("currency_id") or ""),
            pix=pix,
            failure_code=detail if mapped == ChargeStatus.FAILED else "",
        )

    def _pix(self, transaction: Mapping[str, Any], payment: Mapping[str, Any]) -> PixCharge:
        try:
            code = parse(transaction["qr_code"])
        except BRCodeError as exc:
            raise Ambiguous(
                "mercadopago: the PIX code in the answer is not a valid BR Code",
                code="invalid_br_code",
                gateway_message=str(exc),
            ) from exc
        expires = payment.get("date_of_expiration")
        return PixCharge(
            txid=code.txid or str(payment["id"]),
            br_code=transaction["qr_code"],
            expires_at=datetime.fromisoformat(expires) if expires else None,
        )


def _amount(payment: Mapping[str, Any]) -> int | None:
    """The payment's amount in minor units, or None when the answer does not say."""
    amount = payment.get("transaction_amount")
    if amount is None or isinstance(amount, bool):
        return None
    currency = str(payment.get("currency_id") or "BRL")
    try:
        return Money.from_decimal(str(amount), currency).amount
    except (ArithmeticError, ValueError, KeyError):  # not a number, too fine, unknown currency
        return None


def _notification(query: Mapping[str, str], body: bytes) -> tuple[Mapping[str, Any], str]:
    """The body and the payment id it is about; the query's data.id is the signed one."""
    try:
        payload = json.loads(body)
        body_id = str(payload["data"]["id"])
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidCallback("mercadopago: malformed notification") from exc
    data_id = query.get("data.id") or body_id
    if data_id != body_id:
        raise InvalidCallback("mercadopago: the body names another payment than the query")
    return payload, data_id


def _unreadable(status: int, detail: str, *, gateway: str) -> GatewayError:
    if 200 <= status < 300:
        return Ambiguous(f"{gateway}: unreadable answer", gateway_message=detail)
    return _error_for(status, {"message": detail}, gateway=gateway)


def _error_for(status: int, body: Mapping[str, Any], *, gateway: str) -> GatewayError:
    """Mercado Pago's error answer: its first cause as the details, classed by status."""
    causes = body.get("cause") or []
    first = causes[0] if causes and isinstance(causes[0], Mapping) else {}
    details: ErrorDetails = {
        "code": str(first.get("code") or body.get("error") or status),
        "gateway_message": str(first.get("description") or body.get("message") or ""),
        "http_status": status,
    }
    return error_for_status(status, details, gateway=gateway, subject="payment")
