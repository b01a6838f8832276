"""Mercado Pago, for PIX: payments with payment_method_id "pix", through the official SDK."""

import hashlib
import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from functools import partial
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
    Unsupported,
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

CHARGEBACK_TOPIC = "topic_chargebacks_wh"  # the chargebacks notification's `type`
MEDIATION_PREFIX = "mediation-"  # + the payment id: a mediation has no object of its own
SEARCH_PAGE = 100
# A mediation as its payment shows it: open, given back to the merchant, or lost.
_MEDIATION_STATUSES = {
    "in_mediation": DisputeStatus.NEEDS_RESPONSE,
    "approved": DisputeStatus.WON,
    "refunded": DisputeStatus.LOST,
    "charged_back": DisputeStatus.LOST,
    "cancelled": DisputeStatus.LOST,
}


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

    # Disputes: chargebacks (objects of their own, by payment) and mediations (a payment
    # status only, named "mediation-<payment id>" here).

    def disputes(self, reference: str) -> list[DisputeResult]:
        return self._disputes_of(self._payment(reference))

    def dispute(self, reference: str) -> DisputeResult:
        # Mercado Pago's ids are numeric: anything else names nothing there.
        if not reference.removeprefix(MEDIATION_PREFIX).isdigit():
            raise ChargeNotFound(f"{self.code}: no dispute {reference!r}", code="not_found")
        if reference.startswith(MEDIATION_PREFIX):
            return self._mediation(self._payment(reference.removeprefix(MEDIATION_PREFIX)))
        chargeback = self._call(
            lambda: self._sdk.chargeback().get(reference, self._options()), subject="chargeback"
        )["response"]
        payments = chargeback.get("payments") or []
        if not payments:
            raise Ambiguous(f"{self.code}: chargeback {reference} names no payment")
        return self._chargeback(chargeback, self._payment(str(payments[0])))

    def disputes_since(self, since: datetime) -> list[DisputeResult]:
        """Payments charged back, in mediation or refunded by the buyer protection program
        (a lost mediation) that changed since `since`, and their disputes. A mediation the
        merchant won leaves an approved payment, which no search tells from any other."""
        window = {
            "range": "date_last_updated",
            "begin_date": since.astimezone(UTC).isoformat(timespec="milliseconds"),
            "end_date": "NOW",
            "sort": "date_created",
            "criteria": "asc",
        }
        payments = [
            payment
            for status in ("charged_back", "in_mediation", "refunded")
            for payment in self._search_all(
                self._sdk.payment().search, {**window, "status": status}
            )
            if payment.get("status") != "refunded" or _mediation_lost(payment)
        ]
        return [found for payment in payments for found in self._disputes_of(payment)]

    def submit_dispute_evidence(self, reference: str, text: str) -> DisputeResult:
        raise Unsupported(
            f"{self.code}: chargeback documentation is uploaded as files in Mercado Pago's panel"
        )

    def _payment(self, reference: str) -> Mapping[str, Any]:
        return self._call(lambda: self._sdk.payment().get(reference, self._options()))["response"]

    def _disputes_of(self, payment: Mapping[str, Any]) -> list[DisputeResult]:
        chargebacks = self._search_all(
            self._sdk.chargeback().search, {"payment_id": str(payment["id"])}
        )
        found = [self._chargeback(chargeback, payment) for chargeback in chargebacks]
        # A payment shows its mediation while open, and once lost; a won one is approved
        # again, like any payment never mediated (`dispute("mediation-<id>")` reads it).
        if payment.get("status") == "in_mediation" or _mediation_lost(payment):
            found.append(self._mediation(payment))
        return found

    def _search_all(
        self, search: Callable[..., Any], filters: Mapping[str, Any]
    ) -> list[Mapping[str, Any]]:
        """Every result of a search, page by page."""
        found: list[Mapping[str, Any]] = []
        while True:
            page = {**filters, "limit": SEARCH_PAGE, "offset": len(found)}
            answer = self._call(partial(search, page, self._options()))["response"]
            results = answer.get("results") or []
            found.extend(results)
            total = (answer.get("paging") or {}).get("total") or 0
            if not results or len(found) >= total:
                return found

    def _chargeback(
        self, chargeback: Mapping[str, Any], payment: Mapping[str, Any]
    ) -> DisputeResult:
        status, detail = payment.get("status", ""), payment.get("status_detail", "")
        documentation = chargeback.get("documentation_status") or ""
        currency = str(chargeback.get("currency") or payment.get("currency_id") or "").upper()
        deadline = chargeback.get("date_documentation_deadline")
        return DisputeResult(
            reference=str(chargeback["id"]),
            charge_reference=str(payment["id"]),
            kind=DisputeKind.CHARGEBACK,
            status=_chargeback_status(chargeback, detail),
            raw_status=f"{status}/{detail}, documentation {documentation}",
            amount=self._minor_units(chargeback.get("amount"), currency),
            currency=currency,
            reason=str(chargeback.get("reason") or ""),
            evidence_due_at=datetime.fromisoformat(deadline) if deadline else None,
            evidence_submittable=False,  # documentation goes up as files, in the panel
        )

    def _mediation(self, payment: Mapping[str, Any]) -> DisputeResult:
        """The payment's mediation as its status tells; a payment that never had one
        (pending, rejected, ...) has none."""
        status, detail = payment.get("status", ""), payment.get("status_detail", "")
        reference = f"{MEDIATION_PREFIX}{payment['id']}"
        if status not in _MEDIATION_STATUSES:
            raise ChargeNotFound(f"{self.code}: no mediation {reference}", code="not_found")
        currency = str(payment.get("currency_id") or "")
        return DisputeResult(
            reference=reference,
            charge_reference=str(payment["id"]),
            kind=DisputeKind.MEDIATION,
            status=_MEDIATION_STATUSES[status],
            raw_status=f"{status}/{detail}" if detail else status,
            amount=self._mediation_amount(payment, currency),
            currency=currency,
        )

    def _mediation_amount(self, payment: Mapping[str, Any], currency: str) -> int:
        """What the payer contests: the payment less the merchant's own refunds (a lost
        mediation's refund is not among them, so the amount stays as it was)."""
        paid = self._minor_units(payment.get("transaction_amount"), currency)
        refunded = sum(
            self._minor_units(refund.get("amount"), currency)
            for refund in payment.get("refunds") or []
            if refund.get("status") == "approved"
        )
        return paid - refunded

    def _minor_units(self, amount: Any, currency: str) -> int:
        minor = _decimal_amount(amount, currency)
        if minor is None:
            raise Ambiguous(f"{self.code}: unreadable amount {amount!r}", code="invalid_amount")
        return minor

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
        event_id = str(payload.get("id") or f"{data_id}:{request_id}")
        if (query.get("type") or payload.get("type")) == CHARGEBACK_TOPIC:
            # data.id is the chargeback's; the payment it contests rides along in data.
            return CallbackEvent(
                gateway=self.code,
                event_id=event_id,
                kind=CallbackKind.DISPUTE_UPDATED,
                reference=str(payload["data"].get("payment_id") or ""),
                raw=payload,
            )
        return CallbackEvent(
            gateway=self.code,
            event_id=event_id,
            kind=CallbackKind.PAYMENT_UPDATED,  # the body says which payment, not its state
            reference=data_id,
            raw=payload,
        )

    def _call(self, send: Any, *, subject: str = "payment") -> Mapping[str, Any]:
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
            details = body if isinstance(body, Mapping) else {}
            raise _error_for(status, details, gateway=self.code, subject=subject)
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
    return _decimal_amount(payment.get("transaction_amount"), payment.get("currency_id"))


def _decimal_amount(amount: Any, currency: Any) -> int | None:
    """A Mercado Pago amount (a JSON number in major units) in minor units, or None."""
    if amount is None or isinstance(amount, bool):
        return None
    currency = str(currency or "BRL")
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


def _mediation_lost(payment: Mapping[str, Any]) -> bool:
    """Refunded by Mercado Pago's buyer protection program: a mediation the merchant lost."""
    return payment.get("status_detail") == "bpp_refunded"


def _chargeback_status(chargeback: Mapping[str, Any], payment_detail: str) -> DisputeStatus:
    """Covered (or the payment reimbursed): won; settled uncovered: lost; else open, under
    review once the documentation is."""
    if chargeback.get("coverage_applied") or payment_detail == "reimbursed":
        return DisputeStatus.WON
    if payment_detail == "settled":
        return DisputeStatus.LOST
    if chargeback.get("documentation_status") == "review_pending":
        return DisputeStatus.UNDER_REVIEW
    return DisputeStatus.NEEDS_RESPONSE


def _error_for(
    status: int, body: Mapping[str, Any], *, gateway: str, subject: str = "payment"
) -> GatewayError:
    """Mercado Pago's error answer: its first cause as the details, classed by status."""
    causes = body.get("cause") or []
    first = causes[0] if causes and isinstance(causes[0], Mapping) else {}
    details: ErrorDetails = {
        "code": str(first.get("code") or body.get("error") or status),
        "gateway_message": str(first.get("description") or body.get("message") or ""),
        "http_status": status,
    }
    return error_for_status(status, details, gateway=gateway, subject=subject)
