"""Stripe, for cards: PaymentIntents confirmed at once, through the official SDK."""

from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

import stripe

from gateways.adapters._common import certificate_failure, header, probe_health, replay_charge
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
from gateways.transport import CallTrace, ThreadPooledSession, traced_call, transport_error

_STATUSES = {
    "succeeded": ChargeStatus.SUCCEEDED,
    "requires_action": ChargeStatus.REQUIRES_ACTION,
    "processing": ChargeStatus.PENDING,
    "requires_confirmation": ChargeStatus.PENDING,
    "requires_capture": ChargeStatus.PENDING,
    "requires_payment_method": ChargeStatus.FAILED,
    "canceled": ChargeStatus.CANCELED,
}

_REFUND_STATUSES = {
    "succeeded": RefundStatus.SUCCEEDED,
    "pending": RefundStatus.PENDING,
    "requires_action": RefundStatus.PENDING,
    "failed": RefundStatus.FAILED,
    "canceled": RefundStatus.FAILED,
}
_FINAL_REFUND_STATUSES = frozenset(
    raw for raw, status in _REFUND_STATUSES.items() if status != RefundStatus.PENDING
)

_CALLBACK_KINDS = {
    "payment_intent.succeeded": CallbackKind.PAYMENT_SUCCEEDED,
    "payment_intent.payment_failed": CallbackKind.PAYMENT_FAILED,
    "payment_intent.canceled": CallbackKind.PAYMENT_CANCELED,
    "payment_intent.processing": CallbackKind.PAYMENT_PENDING,
    "payment_intent.requires_action": CallbackKind.PAYMENT_PENDING,
    "charge.refunded": CallbackKind.REFUND_SUCCEEDED,
    "charge.dispute.created": CallbackKind.DISPUTE_UPDATED,
    "charge.dispute.updated": CallbackKind.DISPUTE_UPDATED,
    "charge.dispute.closed": CallbackKind.DISPUTE_UPDATED,
    "charge.dispute.funds_withdrawn": CallbackKind.DISPUTE_UPDATED,
    "charge.dispute.funds_reinstated": CallbackKind.DISPUTE_UPDATED,
}

# A dispute's status (an inquiry's are warning_*) as PayWave reads it (docs/gateways.md,
# "Disputes"). A status not named here is read as still open: PayWave keeps asking.
_DISPUTE_STATUSES = {
    "warning_needs_response": DisputeStatus.NEEDS_RESPONSE,
    "needs_response": DisputeStatus.NEEDS_RESPONSE,
    "warning_under_review": DisputeStatus.UNDER_REVIEW,
    "under_review": DisputeStatus.UNDER_REVIEW,
    "won": DisputeStatus.WON,
    "warning_closed": DisputeStatus.WON,  # an inquiry that never became a chargeback
    "prevented": DisputeStatus.WON,  # stopped (Stripe's prevention) before it was filed
    "lost": DisputeStatus.LOST,
}
_ANSWERABLE_DISPUTE_STATUSES = frozenset({"needs_response", "warning_needs_response"})
_DISPUTES_PAGE = 100  # the most Stripe lists at once


class StripeAdapter(GatewayAdapter):
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
        self._client = stripe.StripeClient(
            credentials.require("API_KEY"),
            base_addresses={"api": api_base} if api_base else None,
            max_network_retries=0,  # the processing engine owns retries
            # Each thread's kept-alive, traced session (gateways.transport).
            http_client=stripe.RequestsClient(
                timeout=timeout_seconds, session=ThreadPooledSession()
            ),
        )

    def charge(self, request: ChargeRequest) -> ChargeResult:
        if request.method != "card":
            raise Declined("stripe: only cards are configured", code="method_not_supported")
        params: dict[str, Any] = {
            "amount": request.amount,
            "currency": request.currency.lower(),
            "payment_method": request.card_token,
            "payment_method_types": ["card"],
            "confirm": True,
            "metadata": {"payment_id": request.payment_id},
            "expand": ["payment_method"],
        }
        if request.description:
            params["description"] = request.description
        if request.return_url:  # 3-D Secure sends the payer back there
            params["return_url"] = request.return_url
        intent = self._call(
            self._client.v1.payment_intents.create,
            params=params,
            options={"idempotency_key": request.idempotency_key},
        )
        return self._result(intent)

    def retrieve(self, reference: str) -> ChargeResult:
        intent = self._call(
            self._client.v1.payment_intents.retrieve,
            reference,
            params={"expand": ["payment_method"]},
        )
        return self._result(intent)

    def find_charge(self, request: ChargeRequest) -> ChargeResult | None:
        """Replays the create with the same Idempotency-Key.

        Stripe keeps the answer to a key for 24 hours: a replay returns the original
        PaymentIntent if the first request was processed, and creates it only if it
        never was, which is the one charge we meant to make. Stripe's search would
        also find it, but its index lags by up to a minute: a miss proves nothing.

        The replay is that first answer, as it was then (waiting for 3-D Secure, or
        processing): the charge it names is read back by its id, as it is now.
        """
        found = replay_charge(self.charge, request)
        return self.retrieve(found.reference) if found.reference else found

    def cancel(self, reference: str) -> ChargeResult:
        return self._result(self._call(self._client.v1.payment_intents.cancel, reference))

    def refund(self, *, reference: str, amount: int, idempotency_key: str) -> RefundResult:
        refund = self._call(
            self._client.v1.refunds.create,
            params={"payment_intent": reference, "amount": amount},
            options={"idempotency_key": idempotency_key},
        )
        if refund.status not in _FINAL_REFUND_STATUSES:
            # A create asked again with its key replays its first answer, pending for
            # ever: the refund's state now is read back by its id.
            refund = self._call(self._client.v1.refunds.retrieve, refund.id)
        return RefundResult(
            status=_REFUND_STATUSES.get(refund.status or "", RefundStatus.PENDING),
            reference=refund.id,
            amount=refund.amount,
            raw_status=refund.status or "",
        )

    def disputes(self, reference: str) -> list[DisputeResult]:
        return [_dispute_result(d) for d in self._all_disputes({"payment_intent": reference})]

    def dispute(self, reference: str) -> DisputeResult:
        return _dispute_result(self._call(self._client.v1.disputes.retrieve, reference))

    def disputes_since(self, since: datetime) -> list[DisputeResult]:
        """Disputes opened at or after `since` (Stripe's `created` is whole seconds; the one
        `since` falls in counts whole)."""
        moment = since if since.tzinfo else since.replace(tzinfo=UTC)
        created = {"gte": int(moment.timestamp())}
        return [_dispute_result(d) for d in self._all_disputes({"created": created})]

    def submit_dispute_evidence(self, reference: str, text: str) -> DisputeResult:
        dispute = self._call(
            self._client.v1.disputes.update,
            reference,
            params={"evidence": {"uncategorized_text": text}, "submit": True},
        )
        return _dispute_result(dispute)

    def _all_disputes(self, filters: dict[str, Any]) -> Iterator[Any]:
        """Every page of a dispute list, each request through `_call` (the SDK's own
        auto-paging would raise its errors unmapped)."""
        params: dict[str, Any] = {**filters, "limit": _DISPUTES_PAGE}
        while True:
            page = self._call(self._client.v1.disputes.list, params=params)
            yield from page.data
            if not page.has_more or not page.data:
                return
            params = {**params, "starting_after": page.data[-1].id}

    def health(self) -> HealthResult:
        return probe_health(lambda: self._call(self._client.v1.balance.retrieve))

    def parse_callback(
        self, *, headers: Mapping[str, str], query: Mapping[str, str], body: bytes
    ) -> CallbackEvent:
        secret = self._credentials.require("WEBHOOK_SECRET")
        try:
            event = stripe.Webhook.construct_event(
                body, header(headers, "Stripe-Signature"), secret
            )
        except (stripe.SignatureVerificationError, ValueError) as exc:
            raise InvalidCallback(f"stripe: {exc}") from exc
        except (AttributeError, TypeError) as exc:  # signed JSON that is not an object
            raise InvalidCallback("stripe: the signed body is not an event") from exc
        try:
            # Signed but not an event (e.g. `{}`): the SDK builds whatever it got.
            return self._event(event)
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise InvalidCallback("stripe: the signed body is not an event") from exc

    def _event(self, event: Any) -> CallbackEvent:
        obj = event.data.object.to_dict()
        metadata = obj.get("metadata") or {}
        amount = obj.get("amount")
        return CallbackEvent(
            gateway=self.code,
            event_id=event.id,
            kind=_CALLBACK_KINDS.get(event.type, CallbackKind.OTHER),
            reference=obj.get("payment_intent") or obj.get("id", ""),
            payment_id=metadata.get("payment_id", ""),
            amount=amount if isinstance(amount, int) else None,
            raw=event.to_dict(),
        )

    def _call(self, method: Any, *args: Any, **kwargs: Any) -> Any:
        with traced_call() as trace:
            try:
                return method(*args, **kwargs)
            except stripe.StripeError as exc:
                raise _map_error(exc, gateway=self.code, trace=trace) from exc

    def _result(self, intent: Any) -> ChargeResult:
        data = intent.to_dict()  # a StripeObject is not a dict; its to_dict() is, nested too
        card = _card_of(data)
        error = data.get("last_payment_error") or {}
        return ChargeResult(
            status=_STATUSES.get(data["status"], ChargeStatus.PENDING),
            reference=data["id"],
            raw_status=data["status"],
            amount=data.get("amount_received") or data.get("amount"),
            currency=str(data.get("currency") or "").upper(),
            card_brand=card.get("brand", ""),
            card_last4=card.get("last4", ""),
            next_action=data.get("next_action") or None,
            failure_code=error.get("decline_code") or error.get("code") or "",
            failure_message=error.get("message") or "",
        )


def _dispute_result(dispute: Any) -> DisputeResult:
    data = dispute.to_dict()
    details = data.get("evidence_details") or {}
    due_by = details.get("due_by")
    raw_status = data["status"]
    return DisputeResult(
        reference=data["id"],
        charge_reference=_id_of(data.get("payment_intent")),
        kind=DisputeKind.CHARGEBACK,
        status=_DISPUTE_STATUSES.get(raw_status, DisputeStatus.UNDER_REVIEW),
        raw_status=raw_status,
        amount=data["amount"],
        currency=str(data.get("currency") or "").upper(),
        reason=data.get("reason") or "",
        evidence_due_at=datetime.fromtimestamp(due_by, UTC) if due_by else None,
        evidence_submittable=raw_status in _ANSWERABLE_DISPUTE_STATUSES
        and not details.get("past_due"),
    )


def _id_of(value: Any) -> str:
    """An expandable field's id, whether it came as an id or as the object."""
    if isinstance(value, Mapping):
        return str(value.get("id") or "")
    return str(value or "")


def _card_of(intent: Mapping[str, Any]) -> Mapping[str, Any]:
    method = intent.get("payment_method")
    if isinstance(method, Mapping):  # expanded; a bare id carries no card details
        return method.get("card") or {}
    return {}


def _map_error(
    exc: stripe.StripeError, *, gateway: str, trace: CallTrace | None = None
) -> GatewayError:
    """Stripe's errors by what the caller must do (docs/gateways.md, "What a failure means").

    Stripe documents a 5xx as indeterminate (the request may have run, and its key
    replays whatever it did), so every 5xx is Ambiguous; a 429 comes from a rate
    limiter in front of the idempotency layer, so nothing ran: Retryable.
    """
    details: ErrorDetails = {
        "code": exc.code or "",
        "gateway_message": exc.user_message or str(exc),
        "http_status": exc.http_status,
    }
    if isinstance(exc, stripe.APIConnectionError):
        if problem := certificate_failure(exc):
            return Misconfigured(f"stripe: {problem}", code="tls_certificate")
        return transport_error(exc, gateway=gateway, trace=trace)
    if isinstance(exc, stripe.CardError):
        decline = getattr(exc, "error", None)
        code = (decline.decline_code if decline else None) or exc.code or "card_declined"
        details["code"] = code
        return Declined("stripe: the card was declined", **details)
    if isinstance(exc, stripe.AuthenticationError | stripe.PermissionError):
        return Misconfigured("stripe: credentials refused", **details)
    if isinstance(exc, stripe.RateLimitError):
        return Retryable("stripe: rate limited", **details)
    if isinstance(exc, stripe.IdempotencyError):
        if exc.code == "idempotency_key_in_use":  # the first request with it is still running
            return Retryable("stripe: the idempotency key is in use", **details)
        # The key made something already, with other parameters: whatever it made may
        # be a charge. Never a decline.
        return Ambiguous("stripe: idempotency key reused with other parameters", **details)
    if isinstance(exc, stripe.InvalidRequestError):
        if exc.http_status == 404:
            return ChargeNotFound("stripe: no such object", **details)
        return Declined("stripe: the request was refused", **details)
    status = exc.http_status or 0
    if status >= 500 or isinstance(exc, stripe.APIError):
        return Ambiguous(f"stripe: HTTP {status or 'error'}, the outcome is unknown", **details)
    if status == 0:
        return Ambiguous("stripe: unexpected failure", **details)
    return Declined("stripe: the request was refused", **details)
