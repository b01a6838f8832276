"""PayPal, Orders v2 with intent CAPTURE, through the official SDK (paypal-server-sdk).

A charge is two steps: `charge` creates the order and answers the approval link the
payer must be sent to (REQUIRES_ACTION); once the payer approved it (the return URL,
or the CHECKOUT.ORDER.APPROVED callback), `capture` takes the money. The order id is
the charge's reference throughout; the capture's id is `ChargeResult.capture_reference`.

Disputes (the Disputes API v1, which the SDK does not wrap) are read over plain HTTP with
the SDK's token: PayPal disputes a capture, so `disputes(order id)` lists those of the
order's captures, and a dispute's charge is the order its capture belongs to.

The SDK fetches its OAuth token on the first call and keeps it until it expires. When
fetching it fails with an HTTP answer the SDK swallows the status (it raises
AuthValidationException); a token provider of ours fetches it instead, so the failure
keeps its status and is told apart from the call's own failure.
"""

import json
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import requests
from paypalserversdk.configuration import Configuration, Environment, Server
from paypalserversdk.exceptions.api_exception import ApiException
from paypalserversdk.http.auth.o_auth_2 import ClientCredentialsAuthCredentials, OAuth2
from paypalserversdk.models.o_auth_token import OAuthToken
from paypalserversdk.paypal_serversdk_client import PaypalServersdkClient

from gateways.adapters._common import (
    certificate_failure,
    error_for_status,
    header,
    probe_health,
    replay_charge,
)
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
    RefundResult,
    RefundStatus,
    Retryable,
)
from gateways.credentials import Credentials
from gateways.transport import (
    CallTrace,
    ThreadPooledSession,
    pooled_session,
    traced_call,
    transport_error,
)
from paywave.values.money import Money

PRODUCTION_BASE = "https://api-m.paypal.com"
CALLBACK_TOLERANCE_SECONDS = 300
REPRESENTATION = "return=representation"  # the whole order, not only id, status and links
APPROVAL_RELS = ("payer-action", "approve")  # payment_source orders, application_context ones
DISPUTES_PATH = "/v1/customer/disputes"
DISPUTES_PAGE_SIZE = 50  # PayPal's most

_ORDER_STATUSES = {
    "CREATED": ChargeStatus.REQUIRES_ACTION,
    "PAYER_ACTION_REQUIRED": ChargeStatus.REQUIRES_ACTION,
    # Approved, not captured: the payer's part is done and no money has moved yet.
    # PENDING ("the gateway is working on it, look again") is the closest status that
    # is live and needs nothing from the payer; the engine captures on seeing it.
    "APPROVED": ChargeStatus.PENDING,
    "SAVED": ChargeStatus.PENDING,
    "VOIDED": ChargeStatus.CANCELED,
}

# A COMPLETED order is what its capture is.
_CAPTURE_STATUSES = {
    "COMPLETED": ChargeStatus.SUCCEEDED,
    "PARTIALLY_REFUNDED": ChargeStatus.SUCCEEDED,  # as a Stripe charge partly refunded
    "PENDING": ChargeStatus.PENDING,
    "DECLINED": ChargeStatus.FAILED,
    "FAILED": ChargeStatus.FAILED,
    "REFUNDED": ChargeStatus.REFUNDED,
}

_REFUND_STATUSES = {
    "COMPLETED": RefundStatus.SUCCEEDED,
    "PENDING": RefundStatus.PENDING,
    "FAILED": RefundStatus.FAILED,
    "CANCELLED": RefundStatus.FAILED,
}

_CALLBACK_KINDS = {
    # Approved: the engine captures it (PENDING, as retrieve reads an APPROVED order).
    "CHECKOUT.ORDER.APPROVED": CallbackKind.PAYMENT_PENDING,
    "PAYMENT.CAPTURE.COMPLETED": CallbackKind.PAYMENT_SUCCEEDED,
    # Denied: the order is back waiting for its payer, not failed; read it back.
    "PAYMENT.CAPTURE.DENIED": CallbackKind.PAYMENT_UPDATED,
    "PAYMENT.CAPTURE.REFUNDED": CallbackKind.REFUND_SUCCEEDED,
}

# A dispute still open, by its status; a RESOLVED one is told by its outcome.
_DISPUTE_STATUSES = {
    "OPEN": DisputeStatus.NEEDS_RESPONSE,
    "WAITING_FOR_SELLER_RESPONSE": DisputeStatus.NEEDS_RESPONSE,
    "WAITING_FOR_BUYER_RESPONSE": DisputeStatus.UNDER_REVIEW,
    "UNDER_REVIEW": DisputeStatus.UNDER_REVIEW,
    "OTHER": DisputeStatus.UNDER_REVIEW,
}
_LOST_OUTCOMES = frozenset({"RESOLVED_BUYER_FAVOUR", "RESOLVED_WITH_PAYOUT", "ACCEPTED"})
# Stages of a card network's process: an INQUIRY (PayPal's own case) is not one.
_CHARGEBACK_STAGES = frozenset({"CHARGEBACK", "PRE_ARBITRATION", "ARBITRATION"})
# Captures that took money: a declined one cannot be disputed.
_UNDISPUTABLE_CAPTURES = frozenset({"DECLINED", "FAILED"})

_TRANSMISSION_HEADERS = {
    "transmission_id": "PAYPAL-TRANSMISSION-ID",
    "transmission_time": "PAYPAL-TRANSMISSION-TIME",
    "transmission_sig": "PAYPAL-TRANSMISSION-SIG",
    "cert_url": "PAYPAL-CERT-URL",
    "auth_algo": "PAYPAL-AUTH-ALGO",
}


class _Configuration(Configuration):
    """The SDK's configuration at any base URL (it only knows PayPal's two hosts)."""

    def __init__(self, base_url: str, **options: Any) -> None:
        self.base_url = base_url.rstrip("/")
        super().__init__(**options)

    def get_base_uri(self, server: Server = Server.DEFAULT) -> str:
        return self.base_url


class _InstrumentDeclined(Declined):
    """A capture the payer's instrument declined: the payer approves again at `redirect_url`."""

    redirect_url = ""


class _TokenUnavailable(Exception):
    """The OAuth token request failed; its cause says how."""


class PayPalAdapter(GatewayAdapter):
    requests_per_charge = 2  # the OAuth token (when the kept one expired), the order

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
        self._base_url = (api_base or PRODUCTION_BASE).rstrip("/")
        auth = ClientCredentialsAuthCredentials(
            credentials.require("CLIENT_ID"),
            credentials.require("CLIENT_SECRET"),
            o_auth_token_provider=self._fetch_token,
        )
        self._token: OAuthToken | None = None  # the SDK's, as the provider last gave it
        self._sdk = PaypalServersdkClient(
            config=_Configuration(
                self._base_url,
                environment=Environment.PRODUCTION,
                client_credentials_auth_credentials=auth,
                timeout=timeout_seconds,
                max_retries=0,  # the processing engine owns retries
                # Each thread's kept-alive, traced session (gateways.transport).
                http_client_instance=ThreadPooledSession(),
            )
        )

    def charge(self, request: ChargeRequest) -> ChargeResult:
        if request.method != "paypal":
            raise Declined(f"{self.code}: only PayPal is configured", code="method_not_supported")
        if not request.return_url:  # PayPal has nowhere to send the payer back
            raise Declined(f"{self.code}: a return_url is required", code="missing_return_url")
        answer = self._call(
            lambda: self._sdk.orders.create_order(
                {
                    "body": _order_body(request),
                    "paypal_request_id": request.idempotency_key,
                    "prefer": REPRESENTATION,
                }
            )
        )
        return self._result(answer, return_url=request.return_url)

    def retrieve(self, reference: str) -> ChargeResult:
        return self._result(self._call(lambda: self._sdk.orders.get_order({"id": reference})))

    def find_charge(self, request: ChargeRequest) -> ChargeResult | None:
        """Replays the create with the same PayPal-Request-Id.

        PayPal keeps a request id for 6 hours (the SDK's documentation): a replay answers
        the order the first request made, as it is now, and creates one only if the first
        never arrived, which is the one order we meant to make. An order takes no money
        until it is captured, so a replay never charges.
        """
        return replay_charge(self.charge, request)

    def capture(self, reference: str, idempotency_key: str) -> ChargeResult:
        """Captures an approved order, once: safe to call again with the same or another key.

        Not approved yet, or the payer's instrument declined (the payer must approve
        again): REQUIRES_ACTION with the approval link. Captured already: that capture.
        """
        try:
            answer = self._call(
                lambda: self._sdk.orders.capture_order(
                    {"id": reference, "paypal_request_id": idempotency_key,
                     "prefer": REPRESENTATION}
                )
            )  # fmt: skip
        except Declined as exc:
            if isinstance(exc, _InstrumentDeclined):
                return self._declined_capture(reference, exc)
            if exc.code in ("ORDER_NOT_APPROVED", "ORDER_ALREADY_CAPTURED"):
                return self.retrieve(reference)
            raise
        return self._result(answer)

    def cancel(self, reference: str) -> ChargeResult:
        """What the order is: Orders v2 has no call to void an order of intent CAPTURE.

        An order never approved takes no money and expires at PayPal by itself; one
        approved but not captured is left uncaptured. A captured one must be refunded.
        """
        return self.retrieve(reference)

    def refund(self, *, reference: str, amount: int, idempotency_key: str) -> RefundResult:
        capture = _capture_of(self._order(reference))
        if not capture.get("id"):
            raise Declined(f"{self.code}: the order has no capture to refund", code="not_captured")
        currency = str((capture.get("amount") or {}).get("currency_code") or "")
        # Always the amount asked for: no amount refunds whatever is left.
        value = str(Money(amount, currency).to_decimal())
        body = {"amount": {"currency_code": currency, "value": value}}
        refund = self._call(
            lambda: self._sdk.payments.refund_captured_payment(
                {"capture_id": capture["id"], "body": body,
                 "paypal_request_id": idempotency_key, "prefer": REPRESENTATION}
            )
        )  # fmt: skip
        if refund.get("status") == "PENDING" and refund.get("id"):
            # A create asked again with its key answers the refund as it was: read it now.
            refund_id = refund["id"]
            refund = self._call(lambda: self._sdk.payments.get_refund({"refund_id": refund_id}))
        status = str(refund.get("status") or "")
        return RefundResult(
            status=_REFUND_STATUSES.get(status, RefundStatus.PENDING),
            reference=str(refund.get("id") or ""),
            amount=_amount(refund.get("amount")) or 0,
            raw_status=status,
        )

    def health(self) -> HealthResult:
        """A new OAuth token: authenticated by the credentials, and changes nothing."""
        return probe_health(lambda: self._send(self._sdk.oauth_2.fetch_token))

    # Disputes.

    def disputes(self, reference: str) -> list[DisputeResult]:
        """The disputes on the order's captures (PayPal disputes a capture, not an order)."""
        found: dict[str, DisputeResult] = {}
        for capture_id in _capture_ids(self._order(reference)):
            query = {"disputed_transaction_id": capture_id}
            for summary in self._dispute_summaries(query):
                dispute_id = str(summary.get("dispute_id") or "")
                if dispute_id and dispute_id not in found:
                    found[dispute_id] = self._dispute_result(
                        self._dispute_details(dispute_id), charge_reference=reference
                    )
        return list(found.values())

    def dispute(self, reference: str) -> DisputeResult:
        dispute = self._dispute_details(reference)
        return self._dispute_result(dispute, charge_reference=self._order_of_dispute(dispute))

    def disputes_since(self, since: datetime) -> list[DisputeResult]:
        """Disputes created at or after `since` (PayPal's `start_time`), each read in full."""
        query = {"start_time": _rfc3339(since)}
        orders: dict[str, str] = {}  # capture id -> order id, read once per capture
        found: dict[str, DisputeResult] = {}
        for summary in self._dispute_summaries(query):
            dispute_id = str(summary.get("dispute_id") or "")
            if not dispute_id or dispute_id in found:
                continue
            dispute = self._dispute_details(dispute_id)
            capture_id = _disputed_capture(dispute)
            if capture_id not in orders:
                orders[capture_id] = self._order_of_dispute(dispute)
            found[dispute_id] = self._dispute_result(dispute, charge_reference=orders[capture_id])
        return list(found.values())

    def submit_dispute_evidence(self, reference: str, text: str) -> DisputeResult:
        """The text as evidence of type OTHER; PayPal then reviews the dispute (UNDER_REVIEW).

        PayPal takes it only while it waits for the seller (a `provide_evidence` link):
        otherwise Declined (ACTION_NOT_ALLOWED_IN_CURRENT_DISPUTE_STATE).
        """
        evidence = {"evidences": [{"evidence_type": "OTHER", "notes": text}]}
        # multipart/form-data with one JSON part named "input" (no documents attached).
        form = {"input": (None, json.dumps(evidence), "application/json")}
        path = f"{_dispute_path(reference)}/provide-evidence"
        self._rest("POST", path, subject="dispute", files=form)
        return self.dispute(reference)

    def _dispute_summaries(self, query: Mapping[str, str]) -> Iterator[Mapping[str, Any]]:
        """Every summary the list answers for `query`, page after page."""
        params = {**query, "page_size": str(DISPUTES_PAGE_SIZE)}
        seen_tokens: set[str] = set()
        while True:
            page = self._rest("GET", DISPUTES_PATH, params=params)
            for item in page.get("items") or []:
                if isinstance(item, Mapping):
                    yield item
            token = _next_page_token(page)
            if not token or token in seen_tokens:
                return
            seen_tokens.add(token)
            params = {**params, "next_page_token": token}

    def _dispute_details(self, dispute_id: str) -> Mapping[str, Any]:
        return self._rest("GET", _dispute_path(dispute_id), subject="dispute")

    def _order_of_dispute(self, dispute: Mapping[str, Any]) -> str:
        """The order whose capture is disputed (its capture carries the order's id); the
        capture's id when PayPal has no such capture (a payment not made through Orders)."""
        capture_id = _disputed_capture(dispute)
        if not capture_id:
            return ""
        try:
            capture = self._call(
                lambda: self._sdk.payments.get_captured_payment({"capture_id": capture_id})
            )
        except ChargeNotFound:
            return capture_id
        return _order_id_of(capture) or capture_id

    def _dispute_result(
        self, dispute: Mapping[str, Any], *, charge_reference: str
    ) -> DisputeResult:
        """An answer not shaped as PayPal documents is Ambiguous, as an unreadable order is."""
        try:
            return _dispute_result(dispute, charge_reference)
        except (ArithmeticError, AttributeError, KeyError, TypeError, ValueError) as exc:
            raise Ambiguous(f"{self.code}: unreadable dispute") from exc

    def _rest(
        self, method: str, path: str, *, subject: str = "order", **options: Any
    ) -> Mapping[str, Any]:
        """A call the SDK does not wrap, as plain HTTP with its OAuth token, failures mapped
        as the SDK's are; once more with a new token if PayPal refused the kept one."""
        kept = self._token
        try:
            return self._rest_once(method, path, subject=subject, **options)
        except Misconfigured as exc:
            if exc.http_status == 401 and self._token is kept and kept is not None:
                kept.expiry = 0  # the SDK's own token object: it asks the provider again
                return self._rest_once(method, path, subject=subject, **options)
            raise

    def _rest_once(
        self, method: str, path: str, *, subject: str, **options: Any
    ) -> Mapping[str, Any]:
        def send() -> requests.Response:
            self._sdk.oauth_2.is_valid()  # the SDK's token, or a new one from the provider
            assert self._token is not None  # is_valid() raised if none could be had
            return pooled_session().request(
                method,
                f"{self._base_url}{path}",
                headers={"Authorization": f"Bearer {self._token.access_token}"},
                timeout=self.timeout_seconds,
                **options,
            )

        answer = self._send(send)
        try:
            body = answer.json()
        except ValueError:
            body = None
        if not 200 <= answer.status_code < 300:
            body = body if isinstance(body, Mapping) else {}
            raise _error_for(answer.status_code, body, gateway=self.code, subject=subject)
        if not isinstance(body, Mapping):
            raise Ambiguous(f"{self.code}: the answer is not a JSON object")
        return body

    def parse_callback(
        self, *, headers: Mapping[str, str], query: Mapping[str, str], body: bytes
    ) -> CallbackEvent:
        """Verified by PayPal's verify-webhook-signature call: only SUCCESS is genuine.

        The verify call failing (PayPal unreachable, credentials refused) raises its
        GatewayError, not InvalidCallback: the callback may be genuine, and PayPal
        sends it again when it is not acknowledged.
        """
        transmission = {key: header(headers, name) for key, name in _TRANSMISSION_HEADERS.items()}
        missing = [name for key, name in _TRANSMISSION_HEADERS.items() if not transmission[key]]
        if missing:
            raise InvalidCallback(f"{self.code}: missing {', '.join(missing)}")
        _check_fresh(transmission["transmission_time"], gateway=self.code)
        event = _event_of(body, gateway=self.code)
        verdict = self._verify(
            {**transmission, "webhook_id": self._credentials.require("WEBHOOK_ID"),
             "webhook_event": event}
        )  # fmt: skip
        if verdict != "SUCCESS":
            raise InvalidCallback(f"{self.code}: signature verification {verdict or 'failed'}")
        try:
            return self._callback_event(event)
        except (AttributeError, KeyError, TypeError, ValueError) as exc:  # verified, not an event
            raise InvalidCallback(f"{self.code}: the signed body is not an event") from exc

    def _callback_event(self, event: Mapping[str, Any]) -> CallbackEvent:
        resource = event.get("resource")
        if not isinstance(resource, Mapping) or not event.get("id"):
            raise InvalidCallback(f"{self.code}: the signed body is not an event")
        event_type = str(event.get("event_type") or "")
        if event_type.startswith("CUSTOMER.DISPUTE."):
            return self._dispute_event(event, resource)
        if event_type.startswith("CHECKOUT.ORDER."):
            unit = _first_unit(resource)
            reference, payment_id = str(resource.get("id") or ""), unit.get("custom_id")
            amount = _amount(unit.get("amount"))
        else:  # a capture, or a refund: the order is in the capture's related ids
            capture = resource
            if event_type.startswith("PAYMENT.CAPTURE.REFUNDED") and not _order_id_of(resource):
                capture = self._capture_refunded(resource)
            reference, payment_id = _order_id_of(capture), capture.get("custom_id")
            amount = _amount(resource.get("amount"))
        return CallbackEvent(
            gateway=self.code,
            event_id=str(event["id"]),
            kind=_CALLBACK_KINDS.get(event_type, CallbackKind.OTHER),
            reference=reference,
            payment_id=str(payment_id or ""),
            amount=amount,
            raw=event,
        )

    def _dispute_event(self, event: Mapping[str, Any], dispute: Mapping[str, Any]) -> CallbackEvent:
        """Opened, changed or resolved: PayWave reads the disputes back. The dispute names
        the capture (PayWave's `capture_reference`) and echoes the payment's ids."""
        transaction = _disputed_transaction(dispute)
        payment_id = transaction.get("custom") or transaction.get("invoice_number")
        return CallbackEvent(
            gateway=self.code,
            event_id=str(event["id"]),
            kind=CallbackKind.DISPUTE_UPDATED,
            reference=str(transaction.get("seller_transaction_id") or ""),
            payment_id=str(payment_id or ""),
            amount=_amount(dispute.get("dispute_amount")),
            raw=event,
        )

    def _capture_refunded(self, refund: Mapping[str, Any]) -> Mapping[str, Any]:
        """The capture a refund came from (its `up` link), read for its order's id."""
        capture_id = _link(refund, "up").rstrip("/").rpartition("/")[2]
        if not capture_id:
            return {}
        return self._call(
            lambda: self._sdk.payments.get_captured_payment({"capture_id": capture_id})
        )

    def _verify(self, verification: Mapping[str, Any]) -> str:
        """PayPal's verdict on a transmission: a plain authenticated POST (not in the SDK)."""
        verdict = self._rest(
            "POST", "/v1/notifications/verify-webhook-signature", json=verification
        )
        return str(verdict.get("verification_status") or "")

    def _order(self, reference: str) -> Mapping[str, Any]:
        return self._call(lambda: self._sdk.orders.get_order({"id": reference}))

    def _declined_capture(self, reference: str, declined: _InstrumentDeclined) -> ChargeResult:
        """The payer's instrument declined: they must approve again, at the link PayPal gave."""
        read = self.retrieve(reference)
        redirect = declined.redirect_url or _next_url(read)
        return ChargeResult(
            status=ChargeStatus.REQUIRES_ACTION,
            reference=read.reference,
            raw_status=read.raw_status,
            amount=read.amount,
            currency=read.currency,
            next_action=_redirect(redirect, "") if redirect else read.next_action,
            failure_code=declined.code,
            failure_message=declined.gateway_message,
        )

    def _fetch_token(self, last: OAuthToken | None, auth: OAuth2) -> OAuthToken:
        """The SDK's token provider: fetches a token, failures kept apart from the call's."""
        try:
            token = auth.fetch_token()
        except (ApiException, requests.RequestException) as exc:
            raise _TokenUnavailable(str(exc)) from exc
        self._token = token
        return token

    def _call(self, send: Callable[[], Any]) -> Mapping[str, Any]:
        """One SDK call's JSON answer; once more with a new token if PayPal refused the kept
        one (revoked before it expired): a 401 was not processed, so the repeat is safe."""
        kept = self._token
        try:
            return self._read(send)
        except Misconfigured as exc:
            if exc.http_status == 401 and self._token is kept and kept is not None:
                kept.expiry = 0  # the SDK's own token object: it asks the provider again
                return self._read(send)
            raise

    def _read(self, send: Callable[[], Any]) -> Mapping[str, Any]:
        """One SDK call's JSON answer, its failures mapped; an unreadable success is Ambiguous.

        Read from the answer's text: the SDK's models drop the fields they do not know.
        """
        try:
            answer = json.loads(self._send(send).text)
        except (ValueError, TypeError, AttributeError) as exc:  # the SDK or us reading it
            raise Ambiguous(f"{self.code}: unreadable answer", gateway_message=str(exc)) from exc
        if not isinstance(answer, Mapping):
            raise Ambiguous(f"{self.code}: the answer is not a JSON object")
        return answer

    def _send(self, send: Callable[[], Any]) -> Any:
        with traced_call() as trace:
            try:
                return send()
            except _TokenUnavailable as exc:
                raise _token_failure(exc.__cause__ or exc, gateway=self.code) from exc
            except requests.RequestException as exc:
                raise _transport_failure(exc, gateway=self.code, trace=trace) from exc
            except ApiException as exc:
                raise _api_error(exc, gateway=self.code) from exc

    def _result(self, order: Mapping[str, Any], *, return_url: str = "") -> ChargeResult:
        """An answer not shaped as PayPal documents is Ambiguous (read it again later),
        never an exception the engine and the callbacks do not expect."""
        try:
            return _order_result(order, return_url)
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise Ambiguous(f"{self.code}: unreadable order") from exc


def _order_result(order: Mapping[str, Any], return_url: str) -> ChargeResult:
    capture = _capture_of(order)
    raw = str(order.get("status") or "")
    status = _ORDER_STATUSES.get(raw, ChargeStatus.PENDING)
    if raw == "COMPLETED":
        status = _CAPTURE_STATUSES.get(str(capture.get("status") or ""), ChargeStatus.PENDING)
        raw = f"{raw}/{capture.get('status', '')}"
    url = _link(order, *APPROVAL_RELS) if status is ChargeStatus.REQUIRES_ACTION else ""
    unit_amount = _first_unit(order).get("amount") or {}
    details = capture.get("status_details") or {}
    return ChargeResult(
        status=status,
        reference=str(order.get("id") or ""),
        raw_status=raw,
        amount=_amount(unit_amount),
        currency=str(unit_amount.get("currency_code") or "").upper(),
        next_action=_redirect(url, return_url) if url else None,
        failure_code=str(details.get("reason") or "") if status is ChargeStatus.FAILED else "",
        capture_reference=str(capture.get("id") or ""),
    )


def _order_body(request: ChargeRequest) -> dict[str, Any]:
    # PAY_NOW: PayPal's page ends in "Pay Now", as PayWave captures on the payer's return
    # without a review page of its own.
    context = {"return_url": request.return_url, "user_action": "PAY_NOW"}
    if request.cancel_url:
        context["cancel_url"] = request.cancel_url
    unit: dict[str, Any] = {
        "amount": {
            "currency_code": request.currency.upper(),
            # A decimal string built from the integer minor units, with the currency's
            # own decimals (none for JPY).
            "value": str(Money(request.amount, request.currency.upper()).to_decimal()),
        },
        "custom_id": request.payment_id,
        "invoice_id": request.payment_id,
    }
    if request.description:
        unit["description"] = request.description[:127]  # PayPal's limit
    return {
        "intent": "CAPTURE",
        "purchase_units": [unit],
        "payment_source": {"paypal": {"experience_context": context}},
    }


def _first_unit(order: Mapping[str, Any]) -> Mapping[str, Any]:
    units = order.get("purchase_units") or [{}]
    return units[0] if isinstance(units[0], Mapping) else {}


def _capture_of(order: Mapping[str, Any]) -> Mapping[str, Any]:
    """The order's capture: the last one (a declined one may come before it)."""
    captures = (_first_unit(order).get("payments") or {}).get("captures") or []
    return captures[-1] if captures and isinstance(captures[-1], Mapping) else {}


def _capture_ids(order: Mapping[str, Any]) -> list[str]:
    """The order's captures that took money (a declined one comes before a retry)."""
    captures = (_first_unit(order).get("payments") or {}).get("captures") or []
    return [
        str(capture["id"])
        for capture in captures
        if isinstance(capture, Mapping)
        and capture.get("id")
        and capture.get("status") not in _UNDISPUTABLE_CAPTURES
    ]


def _dispute_path(dispute_id: str) -> str:
    if not dispute_id:  # the path would be the list's
        raise ChargeNotFound("paypal: no such dispute", code="INVALID_RESOURCE_ID")
    return f"{DISPUTES_PATH}/{quote(dispute_id, safe='')}"


def _disputed_transaction(dispute: Mapping[str, Any]) -> Mapping[str, Any]:
    transactions = dispute.get("disputed_transactions") or [{}]
    return transactions[0] if isinstance(transactions[0], Mapping) else {}


def _disputed_capture(dispute: Mapping[str, Any]) -> str:
    return str(_disputed_transaction(dispute).get("seller_transaction_id") or "")


def _dispute_result(dispute: Mapping[str, Any], charge_reference: str) -> DisputeResult:
    amount = dispute["dispute_amount"]
    status, raw = _dispute_status(dispute)
    stage = str(dispute.get("dispute_life_cycle_stage") or "")
    due = dispute.get("seller_response_due_date")
    return DisputeResult(
        reference=str(dispute["dispute_id"]),
        charge_reference=charge_reference,
        kind=DisputeKind.CHARGEBACK if stage in _CHARGEBACK_STAGES else DisputeKind.MEDIATION,
        status=status,
        raw_status=raw,
        amount=Money.from_decimal(str(amount["value"]), str(amount["currency_code"])).amount,
        currency=str(amount["currency_code"]).upper(),
        reason=str(dispute.get("reason") or ""),
        evidence_due_at=_time(str(due)) if due else None,
        evidence_submittable=bool(_link(dispute, "provide_evidence")),
    )


def _dispute_status(dispute: Mapping[str, Any]) -> tuple[DisputeStatus, str]:
    """PayWave's status and PayPal's words: the status, and a resolved one's outcome."""
    raw = str(dispute.get("status") or "")
    if raw != "RESOLVED":
        return _DISPUTE_STATUSES.get(raw, DisputeStatus.UNDER_REVIEW), raw
    outcome = dispute.get("dispute_outcome") or {}
    code = str(outcome.get("outcome_code") or "")
    refunded = _amount(outcome.get("amount_refunded")) or 0
    # Won: RESOLVED_SELLER_FAVOUR, CANCELED_BY_BUYER, DENIED: the money stays.
    lost = code in _LOST_OUTCOMES or refunded > 0
    return (DisputeStatus.LOST if lost else DisputeStatus.WON), f"{raw}/{code}"


def _next_page_token(page: Mapping[str, Any]) -> str:
    """The `next_page_token` of the list's `next` link ("" on the last page)."""
    query = parse_qs(urlsplit(_link(page, "next")).query)
    return (query.get("next_page_token") or [""])[0]


def _rfc3339(moment: datetime) -> str:
    """ "2024-05-01T12:00:00.000Z", as the Disputes API takes times."""
    if moment.tzinfo is None:
        raise ValueError("a time without a time zone")
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _time(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError(f"a time without a time zone: {text}")
    return moment


def _order_id_of(capture: Mapping[str, Any]) -> str:
    related = (capture.get("supplementary_data") or {}).get("related_ids") or {}
    return str(related.get("order_id") or "")


def _link(resource: Mapping[str, Any], *rels: str) -> str:
    for rel in rels:
        for link in resource.get("links") or []:
            if isinstance(link, Mapping) and link.get("rel") == rel:
                return str(link.get("href") or "")
    return ""


def _redirect(url: str, return_url: str) -> dict[str, Any]:
    """Shaped as Stripe's 3-D Secure next_action: the engine sends the payer to `url`."""
    return {"type": "redirect_to_url", "redirect_to_url": {"url": url, "return_url": return_url}}


def _next_url(result: ChargeResult) -> str:
    return str(((result.next_action or {}).get("redirect_to_url") or {}).get("url") or "")


def _amount(money: Any) -> int | None:
    """PayPal's `{currency_code, value}` in minor units, or None when it does not say."""
    if not isinstance(money, Mapping) or not money.get("value"):
        return None
    try:
        return Money.from_decimal(str(money["value"]), str(money.get("currency_code"))).amount
    except (ArithmeticError, ValueError, KeyError):  # not a number, too fine, unknown currency
        return None


def _event_of(body: bytes, *, gateway: str) -> dict[str, Any]:
    try:
        event = json.loads(body)
    except ValueError as exc:
        raise InvalidCallback(f"{gateway}: malformed event") from exc
    if not isinstance(event, dict):
        raise InvalidCallback(f"{gateway}: malformed event")
    return event


def _check_fresh(transmission_time: str, *, gateway: str) -> None:
    """A transmission older than the tolerance is refused: PayPal's own retries are new
    transmissions, signed anew, so only a replay is that old."""
    try:
        sent = datetime.fromisoformat(transmission_time.replace("Z", "+00:00"))
    except ValueError as exc:
        raise InvalidCallback(f"{gateway}: unreadable PAYPAL-TRANSMISSION-TIME") from exc
    if sent.tzinfo is None:
        raise InvalidCallback(f"{gateway}: PAYPAL-TRANSMISSION-TIME without a time zone")
    if abs((datetime.now(UTC) - sent).total_seconds()) > CALLBACK_TOLERANCE_SECONDS:
        raise InvalidCallback(f"{gateway}: the transmission is too old")


def _token_failure(exc: BaseException, *, gateway: str) -> GatewayError:
    """A token request changes nothing at the gateway: Retryable, unless refused."""
    if problem := certificate_failure(exc):
        return Misconfigured(f"{gateway}: {problem}", code="tls_certificate")
    status = getattr(exc, "response_code", None)
    if status in (400, 401, 403):  # invalid_client, or a grant PayPal will not give
        code = str(getattr(exc, "error", "") or status)
        return Misconfigured(f"{gateway}: credentials refused", code=code, http_status=status)
    return Retryable(
        f"{gateway}: no OAuth token", gateway_message=str(exc)[:300], http_status=status
    )


def _transport_failure(
    exc: requests.RequestException, *, gateway: str, trace: CallTrace
) -> GatewayError:
    if problem := certificate_failure(exc):
        return Misconfigured(f"{gateway}: {problem}", code="tls_certificate")
    return transport_error(exc, gateway=gateway, trace=trace)


def _api_error(exc: ApiException, *, gateway: str) -> GatewayError:
    body: Mapping[str, Any] = {}
    try:
        parsed = json.loads(exc.response.text)
        body = parsed if isinstance(parsed, Mapping) else {}
    except (ValueError, AttributeError):
        pass
    error = _error_for(int(exc.response_code or 0), body, gateway=gateway)
    if isinstance(error, Declined) and error.code == "INSTRUMENT_DECLINED":
        declined = _InstrumentDeclined(
            error.message,
            code=error.code,
            gateway_message=error.gateway_message,
            http_status=error.http_status,
        )
        declined.redirect_url = _link(body, "redirect")
        return declined
    return error


def _error_for(
    status: int, body: Mapping[str, Any], *, gateway: str, subject: str = "order"
) -> GatewayError:
    """PayPal's error answer: its first detail's issue as the code, classed by status.

    429 and 503 are Retryable, other 5xx Ambiguous: PayPal-Request-Id makes the retry
    safe either way.
    """
    issues = body.get("details")
    first = issues[0] if isinstance(issues, list) and issues else {}
    first = first if isinstance(first, Mapping) else {}
    details: ErrorDetails = {
        "code": str(first.get("issue") or body.get("name") or body.get("error") or status),
        "gateway_message": str(
            first.get("description") or body.get("message") or body.get("error_description") or ""
        ),
        "http_status": status,
    }
    return error_for_status(status, details, gateway=gateway, subject=subject)
