"""Stripe under /stripe: PaymentIntents with test cards, refunds, disputes, balance, signed
events.

Form-encoded parameters with nested keys (metadata[payment_id]=..., expand[0]=...),
`Authorization: Bearer sk_test_...`, and Stripe's idempotency: a POST's
`Idempotency-Key` saves the first answer; the same key with other parameters is
refused with `idempotency_error`. A PaymentIntent's `payment_method` and
`latest_charge` are ids unless named in `expand`, as on the real API.

Disputes are opened and decided through the control API (POST /_sim/disputes,
.../{id}/close); the merchant's side is Stripe's: list, retrieve, update (evidence,
submit) and close (accept). A charge with an open or lost dispute cannot be refunded.
"""

import base64
import binascii
import copy
import json
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from gateways.simulators.callbacks import Delivery, Outgoing, stripe_signature_header
from gateways.simulators.context import (
    GatewaySimulator,
    SimulationError,
    canonical,
    random_id,
)
from gateways.simulators.faults import RefundFault
from gateways.simulators.routing import Request, Response, Route, route
from gateways.simulators.store import ChargeRecord, RefundRecord
from gateways.simulators.stripe_wire import (
    CANCELABLE,
    CLOSED,
    DISPUTE_EVIDENCE_DAYS,
    EVIDENCE_FIELDS,
    NEEDS_RESPONSE,
    SUBMITTED,
    TEST_CARDS,
    UNDER_REVIEW,
    CardOutcome,
    FormError,
    TestCard,
    card_details,
    charge_disputed,
    created_bounds,
    dispute_closed,
    dispute_submitted,
    error,
    evidence_changes,
    expand_list,
    idempotency_mismatch,
    invalid,
    list_limit,
    metadata_changes,
    missing_or_invalid,
    no_such,
    parse_form,
    payment_method_object,
    positive_int,
    submit_flag,
    unexpected_state,
    within,
)

DEFAULT_API_VERSION = "2026-10-28.endive"  # used when a request sends no Stripe-Version
_REFUND_STATUSES = {
    RefundFault.SUCCEEDED: "succeeded",
    RefundFault.PENDING: "pending",
    RefundFault.FAILED: "failed",
}
# Why the card's bank refused a refund, as Stripe's failure_reason says it.
REFUND_FAILURE_REASON = "expired_or_canceled_card"


@dataclass
class _StoredIntent:
    data: dict[str, Any]  # as the API shows it, with ids for payment_method and latest_charge
    api_version: str  # of the request that created it, for its events


@dataclass
class _StoredDispute:
    data: dict[str, Any]  # as the API shows it, with ids for charge and payment_intent
    api_version: str  # its PaymentIntent's, for its events
    number: int  # the order it was opened in: lists are newest first, ties included


# An event to send once the store's lock is released: (type, data.object, api_version).
_Outbox = list[tuple[str, dict[str, Any], str]]


class StripeSimulator(GatewaySimulator):
    name = "stripe"

    def routes(self) -> list[Route]:
        p = "/stripe/v1"
        return [
            route("POST", f"{p}/payment_intents", self._guard(self._create_intent)),
            route("GET", f"{p}/payment_intents/search", self._guard(self._search_intents)),
            route("GET", f"{p}/payment_intents/{{id}}", self._guard(self._retrieve_intent)),
            route("POST", f"{p}/payment_intents/{{id}}/confirm", self._guard(self._confirm)),
            route("POST", f"{p}/payment_intents/{{id}}/cancel", self._guard(self._cancel)),
            route("POST", f"{p}/refunds", self._guard(self._create_refund)),
            route("GET", f"{p}/refunds/{{id}}", self._guard(self._retrieve_refund)),
            route("GET", f"{p}/balance", self._guard(self._balance)),
            route("GET", f"{p}/disputes", self._guard(self._list_disputes)),
            route("GET", f"{p}/disputes/{{id}}", self._guard(self._retrieve_dispute)),
            route("POST", f"{p}/disputes/{{id}}", self._sending(self._update_dispute)),
            route("POST", f"{p}/disputes/{{id}}/close", self._sending(self._accept_dispute)),
        ]

    # Errors, in Stripe's shape.

    def error_response(self, status: int, message: str) -> Response:
        kind = "api_error" if status >= 500 else "invalid_request_error"
        return error(status, kind, message, code="rate_limit" if status == 429 else None)

    def not_found(self, request: Request) -> Response:
        path = request.path.removeprefix("/stripe")
        return error(
            404, "invalid_request_error", f"Unrecognized request URL ({request.method}: {path})."
        )

    # Authentication, parameters, idempotency.

    def _guard(
        self, handler: Callable[[Request, dict[str, Any]], Response]
    ) -> Callable[[Request], Response]:
        def guarded(request: Request) -> Response:
            refused = self._refuse_key(request)
            if refused is not None:
                return refused
            try:
                if request.method == "GET":
                    params = parse_form([(k, v) for k, vs in request.query.items() for v in vs])
                else:
                    params = parse_form(
                        parse_qsl(request.body.decode("utf-8"), keep_blank_values=True)
                    )
            except (FormError, UnicodeDecodeError) as exc:
                return error(400, "invalid_request_error", str(exc), replayable=False)
            if request.method != "POST":
                with self.store.lock:
                    return handler(request, params)
            key = request.header("idempotency-key")
            return self.store.once(
                self.name,
                key,
                canonical([request.path, params]),
                lambda: handler(request, params),
                mismatch=lambda: idempotency_mismatch(key),
                replay_headers={"Idempotent-Replayed": "true"},
            ).with_headers(**({"Idempotency-Key": key} if key else {}))

        return guarded

    def _sending(
        self, handler: Callable[[Request, dict[str, Any], _Outbox], Response]
    ) -> Callable[[Request], Response]:
        """`_guard`, then the events the handler queued, sent outside the store's lock (an
        idempotent replay runs no handler, so it sends none again)."""

        def sending(request: Request) -> Response:
            outbox: _Outbox = []
            guarded = self._guard(lambda request, params: handler(request, params, outbox))
            response = guarded(request)
            for event_type, snapshot, api_version in outbox:
                self._send_event(event_type, snapshot, api_version)
            return response

        return sending

    def _refuse_key(self, request: Request) -> Response | None:
        key = request.bearer_token
        if not key and request.header("authorization").lower().startswith("basic "):
            try:
                raw = request.header("authorization").split(" ", 1)[1]
                key = base64.b64decode(raw).decode().split(":", 1)[0]
            except (ValueError, binascii.Error):
                key = ""
        if not key:
            return error(
                401,
                "invalid_request_error",
                "You did not provide an API key. You need to provide your API key in "
                "the Authorization header, using Bearer auth "
                "(e.g. 'Authorization: Bearer YOUR_SECRET_KEY').",
            )
        allowed = self.context.config.stripe_api_keys
        if (allowed is None and not key.startswith("sk_test_")) or (
            allowed is not None and key not in allowed
        ):
            masked = key[:8] + "*" * max(0, len(key) - 12) + key[-4:]
            return error(401, "invalid_request_error", f"Invalid API Key provided: {masked}")
        return None

    # PaymentIntents.

    def _create_intent(self, request: Request, params: dict[str, Any]) -> Response:
        amount = positive_int(params, "amount")
        if isinstance(amount, Response):
            return amount
        currency = str(params.get("currency", "")).lower()
        if not re.fullmatch(r"[a-z]{3}", currency):
            return missing_or_invalid(params, "currency")
        metadata = params.get("metadata", {})
        if metadata == "":
            metadata = {}
        if not isinstance(metadata, dict):
            return invalid("metadata", "Invalid object")
        expand = expand_list(params)
        intent_id = random_id("pi_")
        data: dict[str, Any] = {
            "id": intent_id,
            "object": "payment_intent",
            "amount": amount,
            "amount_capturable": 0,
            "amount_received": 0,
            "automatic_payment_methods": None,
            "canceled_at": None,
            "cancellation_reason": None,
            "capture_method": "automatic",
            "client_secret": f"{intent_id}_secret_{random_id('', 24)}",
            "confirmation_method": "automatic",
            "created": int(time.time()),
            "currency": currency,
            "customer": None,
            "description": params.get("description"),
            "last_payment_error": None,
            "latest_charge": None,
            "livemode": False,
            "metadata": metadata,
            "next_action": None,
            "payment_method": None,
            "payment_method_types": params.get("payment_method_types") or ["card"],
            "receipt_email": params.get("receipt_email"),
            "return_url": params.get("return_url"),
            "status": "requires_payment_method",
        }
        key = request.header("idempotency-key")
        stored = _StoredIntent(data, request.header("stripe-version") or DEFAULT_API_VERSION)
        method = params.get("payment_method")
        if method:
            attached = self._attach_method(data, str(method))
            if attached is not None:
                return attached
            data["status"] = "requires_confirmation"
        if params.get("confirm") == "true" and not method:
            return error(
                400,
                "invalid_request_error",
                "You cannot confirm this PaymentIntent because it's missing a payment method.",
                code="payment_intent_unexpected_state",
                replayable=False,
            )
        intents = self.store.bucket("stripe.payment_intents")
        intents[intent_id] = stored
        self.store.add_charge(
            ChargeRecord(
                gateway=self.name,
                id=intent_id,
                idempotency_key=key,
                reference=str(metadata.get("payment_id", "")),
                amount=amount,
                currency=currency.upper(),
                status=data["status"],
            )
        )
        if params.get("confirm") == "true":
            return self._confirm_stored(stored, expand)
        return Response.json(200, self._render(data, expand))

    def _attach_method(self, data: dict[str, Any], method: str) -> Response | None:
        methods = self.store.bucket("stripe.payment_methods")
        if method in TEST_CARDS:
            card = TEST_CARDS[method]
            pm_id = random_id("pm_")
            methods[pm_id] = (card, payment_method_object(pm_id, card))
            data["payment_method"] = pm_id
        elif method in methods:
            data["payment_method"] = method
        else:
            return error(
                400,
                "invalid_request_error",
                f"No such PaymentMethod: '{method}'",
                code="resource_missing",
                param="payment_method",
                replayable=False,
            )
        return None

    def _confirm(self, request: Request, params: dict[str, Any]) -> Response:
        stored = self._intent(request.params["id"])
        if stored is None:
            return no_such("payment_intent", request.params["id"])
        data = stored.data
        if params.get("payment_method"):
            attached = self._attach_method(data, str(params["payment_method"]))
            if attached is not None:
                return attached
        if (
            data["status"] not in ("requires_confirmation", "requires_payment_method")
            or not data["payment_method"]
        ):
            return unexpected_state(self._render(data, []), "confirm")
        return self._confirm_stored(stored, expand_list(params))

    def _confirm_stored(self, stored: _StoredIntent, expand: list[str]) -> Response:
        data = stored.data
        card, _ = self.store.bucket("stripe.payment_methods")[data["payment_method"]]
        data["last_payment_error"] = None
        if card.outcome is CardOutcome.SUCCEED:
            self._succeed(data)
        elif card.outcome is CardOutcome.AUTHENTICATE:
            data["status"] = "requires_action"
            data["next_action"] = {
                "type": "redirect_to_url",
                "redirect_to_url": {
                    "url": f"{self.context.public_url}/_sim/card/{data['id']}/authenticate",
                    "return_url": data.get("return_url"),
                },
            }
        else:
            charge = self._new_charge(data, card, succeeded=False)
            data["latest_charge"] = charge["id"]
            data["status"] = "requires_payment_method"
            data["last_payment_error"] = {
                "type": "card_error",
                "code": card.code,
                "decline_code": card.decline_code,
                "message": card.message,
                "charge": charge["id"],
                "doc_url": f"https://docs.stripe.com/error-codes/{card.code.replace('_', '-')}",
                "payment_method": self._method_object(data["payment_method"]),
            }
        self.store.update_charge(self.name, data["id"], status=data["status"])
        rendered = self._render(data, expand)
        if card.outcome is CardOutcome.DECLINE:
            decline = {**data["last_payment_error"], "payment_intent": rendered}
            return Response.json(402, {"error": decline})
        return Response.json(200, rendered)

    def _succeed(self, data: dict[str, Any]) -> None:
        card, _ = self.store.bucket("stripe.payment_methods")[data["payment_method"]]
        charge = self._new_charge(data, card, succeeded=True)
        data.update(
            status="succeeded",
            amount_received=data["amount"],
            latest_charge=charge["id"],
            next_action=None,
            last_payment_error=None,
        )

    def _new_charge(self, data: dict[str, Any], card: TestCard, *, succeeded: bool) -> dict:
        charge_id = random_id("ch_")
        charge = {
            "id": charge_id,
            "object": "charge",
            "amount": data["amount"],
            "amount_captured": data["amount"] if succeeded else 0,
            "amount_refunded": 0,
            "captured": succeeded,
            "created": int(time.time()),
            "currency": data["currency"],
            "failure_code": None if succeeded else card.code,
            "failure_message": None if succeeded else card.message,
            "livemode": False,
            "metadata": data["metadata"],
            "outcome": {
                "network_status": "approved_by_network" if succeeded else "declined_by_network",
                "reason": None if succeeded else card.decline_code,
                "type": "authorized" if succeeded else "issuer_declined",
            },
            "paid": succeeded,
            "payment_intent": data["id"],
            "payment_method": data["payment_method"],
            "payment_method_details": {"type": "card", "card": card_details(card)},
            "refunded": False,
            "disputed": False,
            "status": "succeeded" if succeeded else "failed",
        }
        self.store.bucket("stripe.charges")[charge_id] = charge
        return charge

    def _retrieve_intent(self, request: Request, params: dict[str, Any]) -> Response:
        stored = self._intent(request.params["id"])
        if stored is None:
            return no_such("payment_intent", request.params["id"])
        return Response.json(200, self._render(stored.data, expand_list(params)))

    def _cancel(self, request: Request, params: dict[str, Any]) -> Response:
        stored = self._intent(request.params["id"])
        if stored is None:
            return no_such("payment_intent", request.params["id"])
        data = stored.data
        if data["status"] not in CANCELABLE:
            return unexpected_state(self._render(data, []), "cancel")
        data.update(
            status="canceled",
            canceled_at=int(time.time()),
            cancellation_reason=params.get("cancellation_reason") or "requested_by_customer",
            next_action=None,
        )
        self.store.update_charge(self.name, data["id"], status="canceled")
        return Response.json(200, self._render(data, expand_list(params)))

    def _search_intents(self, request: Request, params: dict[str, Any]) -> Response:
        """The Search API for the clauses a lookup needs: metadata['k']:'v' and status:'v'."""
        clauses = re.split(r"\s+AND\s+", str(params.get("query", "")).strip())
        wanted: list[tuple[str | None, str]] = []
        for clause in clauses:
            found = re.fullmatch(r"(?:metadata\['([^']+)'\]|(status)):'([^']*)'", clause)
            if found is None:
                return error(
                    400,
                    "invalid_request_error",
                    f"The simulator's search supports metadata['key']:'value' and "
                    f"status:'value' joined by AND, not: {clause!r}",
                    param="query",
                    replayable=False,
                )
            metadata_key, _status, value = found.groups()
            wanted.append((metadata_key, value))
        with self.store.lock:
            matches = [
                self._render(stored.data, expand_list(params))
                for stored in self.store.bucket("stripe.payment_intents").values()
                if all(
                    (stored.data["metadata"].get(k) == v) if k else stored.data["status"] == v
                    for k, v in wanted
                )
            ]
        return Response.json(
            200,
            {
                "object": "search_result",
                "data": matches,
                "has_more": False,
                "next_page": None,
                "url": "/v1/payment_intents/search",
            },
        )

    # Refunds.

    def _create_refund(self, request: Request, params: dict[str, Any]) -> Response:
        charges = self.store.bucket("stripe.charges")
        intent_id = str(params.get("payment_intent") or "")
        if params.get("charge"):
            charge = charges.get(str(params["charge"]))
            if charge is None:
                return no_such("charge", str(params["charge"]), param="charge")
            intent_id = charge["payment_intent"]
        if not intent_id:
            return error(
                400,
                "invalid_request_error",
                "One of the following params should be provided for this request: "
                "payment_intent or charge.",
                code="parameter_missing",
                replayable=False,
            )
        stored = self._intent(intent_id)
        if stored is None:
            return no_such("payment_intent", intent_id, param="payment_intent")
        data = stored.data
        if data["status"] != "succeeded":
            return error(
                400,
                "invalid_request_error",
                f"This PaymentIntent ({intent_id}) does not have a successful charge to refund.",
                code="charge_not_refundable",
            )
        charge = charges[data["latest_charge"]]
        dispute = self._dispute_on(charge["id"])
        if dispute is not None and dispute.data["status"] not in ("won", "warning_closed"):
            return charge_disputed(charge["id"])  # a refund must not race the dispute
        remaining = charge["amount"] - charge["amount_refunded"]
        if remaining <= 0:
            return error(
                400,
                "invalid_request_error",
                f"Charge {charge['id']} has already been refunded.",
                code="charge_already_refunded",
            )
        amount = remaining
        if "amount" in params:
            amount = positive_int(params, "amount")
            if isinstance(amount, Response):
                return amount
            if amount > remaining:
                return error(
                    400,
                    "invalid_request_error",
                    f"Refund amount ({amount}) is greater than unrefunded amount on "
                    f"charge ({remaining}).",
                    code="amount_too_large",
                    param="amount",
                )
        refund_id = random_id("re_")
        fault = self.refund_fault()
        refund = {
            "id": refund_id,
            "object": "refund",
            "amount": amount,
            "balance_transaction": random_id("txn_"),
            "charge": charge["id"],
            "created": int(time.time()),
            "currency": data["currency"],
            "metadata": params.get("metadata") or {},
            "payment_intent": intent_id,
            "reason": params.get("reason"),
            "receipt_number": None,
            "status": _REFUND_STATUSES[fault],
        }
        if fault is RefundFault.FAILED:
            _refused(refund)
        self.store.bucket("stripe.refunds")[refund_id] = refund
        if fault is not RefundFault.FAILED:  # a pending refund counts, as on Stripe's charge
            charge["amount_refunded"] += amount
            charge["refunded"] = charge["amount_refunded"] == charge["amount"]
        self.store.add_refund(
            RefundRecord(
                gateway=self.name,
                id=refund_id,
                charge_id=intent_id,
                idempotency_key=request.header("idempotency-key"),
                amount=amount,
                status=refund["status"],
            )
        )
        if fault is RefundFault.SUCCEEDED:
            self._record_refunded(intent_id, amount)
        return Response.json(200, refund)

    def _retrieve_refund(self, request: Request, params: dict[str, Any]) -> Response:
        refund = self.store.bucket("stripe.refunds").get(request.params["id"])
        if refund is None:
            return no_such("refund", request.params["id"], param="id")
        fault = self.refund_fault()
        if refund["status"] == "pending" and fault.settles():
            refund["status"] = _REFUND_STATUSES[fault]
            if fault is RefundFault.FAILED:
                _refused(refund)
                charge = self.store.bucket("stripe.charges")[refund["charge"]]
                charge["amount_refunded"] -= refund["amount"]  # the money is back
                charge["refunded"] = False
            else:
                self._record_refunded(refund["payment_intent"], refund["amount"])
            self.store.update_refund(self.name, refund["id"], status=refund["status"])
        return Response.json(200, refund)

    def _record_refunded(self, intent_id: str, amount: int) -> None:
        """The recorded charge counts the refunds that succeeded (Stripe's, pending ones too)."""
        record = self.store.charge(self.name, intent_id)
        if record is not None:
            self.store.update_charge(
                self.name, intent_id, amount_refunded=record.amount_refunded + amount
            )

    def _balance(self, request: Request, params: dict[str, Any]) -> Response:
        available: dict[str, int] = {}
        with self.store.lock:
            for charge in self.store.bucket("stripe.charges").values():
                if charge["status"] == "succeeded":
                    net = charge["amount"] - charge["amount_refunded"]
                    available[charge["currency"]] = available.get(charge["currency"], 0) + net
        funds = [
            {"amount": amount, "currency": currency, "source_types": {"card": amount}}
            for currency, amount in sorted(available.items())
        ] or [{"amount": 0, "currency": "brl", "source_types": {"card": 0}}]
        return Response.json(
            200,
            {
                "object": "balance",
                "available": funds,
                "livemode": False,
                "pending": [{**fund, "amount": 0} for fund in funds],
            },
        )

    # Disputes: the merchant's side.

    def _list_disputes(self, request: Request, params: dict[str, Any]) -> Response:
        limit = list_limit(params)
        if isinstance(limit, Response):
            return limit
        bounds = created_bounds(params)
        if isinstance(bounds, Response):
            return bounds
        disputes = self.store.bucket("stripe.disputes")
        newest_first = sorted(disputes.values(), key=lambda stored: stored.number, reverse=True)
        cursor = str(params.get("starting_after") or "")
        if cursor:
            after = disputes.get(cursor)
            if after is None:
                return no_such("dispute", cursor, param="starting_after")
            newest_first = [stored for stored in newest_first if stored.number < after.number]
        wanted = {
            name: str(params[name]) for name in ("payment_intent", "charge") if params.get(name)
        }
        found = [
            stored
            for stored in newest_first
            if within(stored.data["created"], bounds)
            and all(stored.data[name] == value for name, value in wanted.items())
        ]
        expand = [item.removeprefix("data.") for item in expand_list(params)]
        return Response.json(
            200,
            {
                "object": "list",
                "data": [self._render_dispute(stored, expand) for stored in found[:limit]],
                "has_more": len(found) > limit,
                "url": "/v1/disputes",
            },
        )

    def _retrieve_dispute(self, request: Request, params: dict[str, Any]) -> Response:
        stored = self._dispute(request.params["id"])
        if stored is None:
            return no_such("dispute", request.params["id"], param="dispute")
        return Response.json(200, self._render_dispute(stored, expand_list(params)))

    def _update_dispute(
        self, request: Request, params: dict[str, Any], outbox: _Outbox
    ) -> Response:
        """Stage evidence and metadata; `submit=true` sends the evidence (once)."""
        stored = self._dispute(request.params["id"])
        if stored is None:
            return no_such("dispute", request.params["id"], param="dispute")
        evidence = evidence_changes(params)
        if isinstance(evidence, Response):
            return evidence
        submit = submit_flag(params)
        if isinstance(submit, Response):
            return submit
        metadata = metadata_changes(params)
        if isinstance(metadata, Response):
            return metadata
        data = stored.data
        if data["status"] in CLOSED:
            return dispute_closed(data["id"])
        if data["status"] in UNDER_REVIEW and (evidence or submit):
            return dispute_submitted(data["id"])
        data["evidence"].update(evidence)
        _merge_metadata(data, metadata)
        details = data["evidence_details"]
        details["has_evidence"] = any(value is not None for value in data["evidence"].values())
        if submit:
            data["status"] = SUBMITTED[data["status"]]
            details["submission_count"] += 1
        outbox.append(("charge.dispute.updated", self._render_dispute(stored), stored.api_version))
        return Response.json(200, self._render_dispute(stored, expand_list(params)))

    def _accept_dispute(
        self, request: Request, params: dict[str, Any], outbox: _Outbox
    ) -> Response:
        """POST /v1/disputes/{id}/close: the merchant gives up; the dispute is lost."""
        stored = self._dispute(request.params["id"])
        if stored is None:
            return no_such("dispute", request.params["id"], param="dispute")
        if stored.data["status"] in CLOSED:
            return dispute_closed(stored.data["id"])
        stored.data["status"] = "lost"
        outbox.append(("charge.dispute.closed", self._render_dispute(stored), stored.api_version))
        return Response.json(200, self._render_dispute(stored, expand_list(params)))

    # The /_sim side of disputes: the payer's bank opens one, the card network decides it.

    def disputed_charge(self, payment_id: str) -> str | None:
        """The newest succeeded PaymentIntent for PayWave's payment `payment_id`."""
        with self.store.lock:
            paid = [
                stored.data
                for stored in self.store.bucket("stripe.payment_intents").values()
                if stored.data["status"] == "succeeded"
                and stored.data["metadata"].get("payment_id") == payment_id
            ]
        if not paid:
            return None
        return sorted(paid, key=lambda intent: intent["created"])[-1]["id"]

    def open_dispute(
        self, charge_id: str, *, amount: int | None, reason: str, kind: str
    ) -> tuple[dict[str, Any], Any]:
        """A dispute on the PaymentIntent `charge_id`'s charge: an inquiry
        (warning_needs_response) when `kind` is "inquiry", else a chargeback."""
        with self.store.lock:
            stored_intent = self._intent(charge_id)
            if stored_intent is None:
                raise SimulationError(404, f"no Stripe PaymentIntent {charge_id}")
            intent = stored_intent.data
            if intent["status"] != "succeeded":
                raise SimulationError(409, f"{charge_id} is {intent['status']}, not succeeded")
            charge = self.store.bucket("stripe.charges")[intent["latest_charge"]]
            if self._dispute_on(charge["id"]) is not None:
                raise SimulationError(409, f"charge {charge['id']} already has a dispute")
            left = charge["amount"] - charge["amount_refunded"]
            if left <= 0:
                raise SimulationError(400, f"charge {charge['id']} is refunded in full")
            if amount is not None and amount > left:
                raise SimulationError(
                    400, f"amount {amount} is more than what is left of the charge ({left})"
                )
            data = _new_dispute(
                intent, amount=left if amount is None else amount, reason=reason, kind=kind
            )
            stored = _StoredDispute(data, stored_intent.api_version, self.store.next_number())
            self.store.bucket("stripe.disputes")[data["id"]] = stored
            charge["disputed"] = True
            snapshot = self._render_dispute(stored)
        return snapshot, self._send_event("charge.dispute.created", snapshot, stored.api_version)

    def has_dispute(self, dispute_id: str) -> bool:
        with self.store.lock:
            return dispute_id in self.store.bucket("stripe.disputes")

    def close_dispute(self, dispute_id: str, *, outcome: str) -> tuple[dict[str, Any], Any]:
        """Won: won (warning_closed for an inquiry); lost: lost."""
        if outcome not in ("won", "lost"):
            raise SimulationError(400, 'outcome must be "won" or "lost"')
        with self.store.lock:
            stored = self._dispute(dispute_id)
            if stored is None:
                raise SimulationError(404, f"no Stripe dispute {dispute_id}")
            data = stored.data
            if data["status"] in CLOSED:
                raise SimulationError(409, f"{dispute_id} is already closed ({data['status']})")
            inquiry = data["status"].startswith("warning_")
            data["status"] = "lost" if outcome == "lost" else "warning_closed" if inquiry else "won"
            snapshot = self._render_dispute(stored)
        return snapshot, self._send_event("charge.dispute.closed", snapshot, stored.api_version)

    def _dispute(self, dispute_id: str) -> _StoredDispute | None:
        return self.store.bucket("stripe.disputes").get(dispute_id)

    def _dispute_on(self, charge_id: str) -> _StoredDispute | None:
        """The charge's dispute (Stripe allows one per charge), if it has one."""
        for stored in self.store.bucket("stripe.disputes").values():
            if stored.data["charge"] == charge_id:
                return stored
        return None

    def _render_dispute(self, stored: _StoredDispute, expand: Sequence[str] = ()) -> dict[str, Any]:
        shown = copy.deepcopy(stored.data)
        details = shown["evidence_details"]
        details["past_due"] = shown["status"] in NEEDS_RESPONSE and time.time() > details["due_by"]
        if "charge" in expand:
            shown["charge"] = copy.deepcopy(self.store.bucket("stripe.charges")[shown["charge"]])
        if "payment_intent" in expand:
            intent = self._intent(shown["payment_intent"])
            shown["payment_intent"] = self._render(intent.data, []) if intent else None
        return shown

    # The /_sim side: 3-D Secure completion and its event.

    def authenticate(self, intent_id: str, *, succeed: bool = True) -> tuple[dict[str, Any], Any]:
        with self.store.lock:
            stored = self._intent(intent_id)
            if stored is None:
                raise SimulationError(404, f"no Stripe PaymentIntent {intent_id}")
            data = stored.data
            if data["status"] != "requires_action":
                raise SimulationError(409, f"{intent_id} is {data['status']}, not requires_action")
            if succeed:
                self._succeed(data)
                event_type = "payment_intent.succeeded"
            else:
                data.update(
                    status="requires_payment_method",
                    next_action=None,
                    last_payment_error={
                        "type": "invalid_request_error",
                        "code": "payment_intent_authentication_failure",
                        "message": "The provided PaymentMethod has failed authentication. You "
                        "can provide payment_method_data or a new PaymentMethod to attempt to "
                        "fulfill this PaymentIntent again.",
                        "payment_method": self._method_object(data["payment_method"]),
                    },
                )
                event_type = "payment_intent.payment_failed"
            self.store.update_charge(self.name, intent_id, status=data["status"])
            snapshot = self._render(data, [])
        return snapshot, self._send_event(event_type, snapshot, stored.api_version)

    def return_url(self, intent_id: str) -> str | None:
        stored = self._intent(intent_id)
        return stored.data.get("return_url") if stored else None

    def _send_event(self, event_type: str, snapshot: dict[str, Any], api_version: str) -> Delivery:
        builder = self._event_builder(event_type, snapshot, api_version)
        return self.context.callbacks.deliver(self.name, event_type, builder)

    def _event_builder(
        self, event_type: str, snapshot: dict[str, Any], api_version: str
    ) -> Callable[[], Outgoing | None]:
        event = {
            "id": random_id("evt_"),
            "object": "event",
            "api_version": api_version,
            "created": int(time.time()),
            "data": {"object": snapshot},
            "livemode": False,
            "pending_webhooks": 1,
            "request": {"id": None, "idempotency_key": None},
            "type": event_type,
        }
        payload = json.dumps(event, indent=2).encode()

        def build() -> Outgoing | None:
            target = self.context.callbacks.target(self.name)
            if not target.url:
                return None
            signature = stripe_signature_header(target.secret, payload, int(time.time()))
            headers = {
                "Content-Type": "application/json; charset=utf-8",
                "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
                "Stripe-Signature": signature,
            }
            return Outgoing(target.url, headers, payload)

        return build

    # Helpers.

    def _intent(self, intent_id: str) -> _StoredIntent | None:
        return self.store.bucket("stripe.payment_intents").get(intent_id)

    def _method_object(self, pm_id: str | None) -> dict[str, Any] | None:
        found = self.store.bucket("stripe.payment_methods").get(pm_id or "")
        return copy.deepcopy(found[1]) if found else None

    def _render(self, data: dict[str, Any], expand: list[str]) -> dict[str, Any]:
        shown = copy.deepcopy(data)
        shown.pop("return_url", None)
        if "payment_method" in expand and shown["payment_method"]:
            shown["payment_method"] = self._method_object(shown["payment_method"])
        if "latest_charge" in expand and shown["latest_charge"]:
            charge = self.store.bucket("stripe.charges")[shown["latest_charge"]]
            shown["latest_charge"] = copy.deepcopy(charge)
        return shown


def _new_dispute(intent: dict[str, Any], *, amount: int, reason: str, kind: str) -> dict[str, Any]:
    created = int(time.time())
    return {
        "id": random_id("dp_"),
        "object": "dispute",
        "amount": amount,
        "balance_transactions": [],
        "charge": intent["latest_charge"],
        "created": created,
        "currency": intent["currency"],
        "evidence": dict.fromkeys(EVIDENCE_FIELDS),
        "evidence_details": {
            "due_by": created + DISPUTE_EVIDENCE_DAYS * 24 * 3600,
            "has_evidence": False,
            "past_due": False,
            "submission_count": 0,
        },
        "is_charge_refundable": False,
        "livemode": False,
        "metadata": {},
        "payment_intent": intent["id"],
        "reason": reason or "general",
        "status": "warning_needs_response" if kind == "inquiry" else "needs_response",
    }


def _merge_metadata(data: dict[str, Any], changes: dict[str, str] | None) -> None:
    """Stripe's metadata update: keys merge in, an empty value removes one, None clears all."""
    if changes is None:
        data["metadata"] = {}
        return
    for name, value in changes.items():
        if value:
            data["metadata"][name] = value
        else:
            data["metadata"].pop(name, None)


def _refused(refund: dict[str, Any]) -> None:
    """A failed refund's reason, and the balance transaction that gave its money back."""
    refund.update(
        failure_reason=REFUND_FAILURE_REASON, failure_balance_transaction=random_id("txn_")
    )
