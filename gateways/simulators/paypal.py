"""PayPal under /paypal: OAuth, Orders v2 (CAPTURE), captures, refunds, disputes, signed
webhooks.

`POST /v1/oauth2/token` takes HTTP Basic auth with the configured client id and secret
and issues a bearer token for 32400 s; every other route wants one. JSON bodies; errors
in PayPal's shape (name, message, debug_id, details[{issue, description}], links).

`PayPal-Request-Id` on a POST makes it idempotent the way PayPal documents it: a repeat
(on the same path) answers 200 with the *latest status* of what the first request made
(the order, the refund), whatever its body. Only requests that succeeded are remembered:
after an error the same id is processed again.

The payer approves (or cancels) at `/_sim/paypal/approve/{order id}` (control.py), the
approval link of each order. Webhooks (CHECKOUT.ORDER.APPROVED, PAYMENT.CAPTURE.COMPLETED,
.DENIED, .REFUNDED; CUSTOMER.DISPUTE.*) are sent after the change is made, before the
answer leaves, to the `paypal` callback target, whose `secret` is the webhook id.

Disputes (the Disputes API v1, on captures) are in paypal_disputes.py; the control API
opens and closes them through the four dispute methods here.
"""

import copy
import json
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from typing import Any
from urllib.parse import parse_qs

from gateways.simulators.callbacks import (
    Delivery,
    Outgoing,
    paypal_signed_string,
    paypal_transmission_signature,
    with_query,
)
from gateways.simulators.context import GatewaySimulator, SimContext, SimulationError, utc_now
from gateways.simulators.faults import CaptureFault, RefundFault
from gateways.simulators.gerencianet_wire import basic_credentials
from gateways.simulators.paypal_disputes import PayPalDisputes
from gateways.simulators.paypal_wire import (
    OrderRequest,
    Outbox,
    Webhook,
    error,
    issue,
    link,
    money,
    not_found,
    oauth_error,
    parse_money,
    parse_order_request,
    paypal_id,
    paypal_time,
    webhook_event,
)
from gateways.simulators.routing import Request, Response, Route, route
from gateways.simulators.store import ChargeRecord, RefundRecord

TOKEN_LIFETIME_S = 32_400
APP_ID = "APP-80W284485P519543T"
SCOPES = (
    "https://uri.paypal.com/services/payments/payment/authcapture "
    "https://uri.paypal.com/services/payments/refund openid "
    "https://uri.paypal.com/services/applications/webhooks "
    "https://uri.paypal.com/services/disputes/read-seller "
    "https://uri.paypal.com/services/disputes/update-seller"
)
MERCHANT = {"email_address": "merchant@paywave.example", "merchant_id": "PAYWAVESANDBOX1"}
PAYER_NAME = {"given_name": "Maria", "surname": "Silva"}
PAYER_EMAIL = "payer@personal.example.com"
FEE_BASIS_POINTS = 349  # PayPal's fee on each capture, for seller_receivable_breakdown
AUTH_ALGO = "SHA256withRSA"  # what PayPal sends; see callbacks.paypal_transmission_signature
SIGNING_KEY = b"paywave-paypal-simulator-webhooks"
VERIFY_FIELDS = (
    "auth_algo",
    "cert_url",
    "transmission_id",
    "transmission_sig",
    "transmission_time",
    "webhook_id",
    "webhook_event",
)
_REFUND_STATUSES = {
    RefundFault.SUCCEEDED: "COMPLETED",
    RefundFault.PENDING: "PENDING",
    RefundFault.FAILED: "FAILED",
}
AWAITING_PAYER = ("CREATED", "PAYER_ACTION_REQUIRED")

Handler = Callable[[Request, Outbox], Response]


class PayPalSimulator(GatewaySimulator):
    name = "paypal"

    def __init__(self, context: SimContext) -> None:
        super().__init__(context)
        self.disputes = PayPalDisputes(
            self.store, api_base=lambda: self.api_base, money_back=self._dispute_lost
        )

    def routes(self) -> list[Route]:
        p = "/paypal"
        disputes = f"{p}/v1/customer/disputes"
        return [
            route("POST", f"{p}/v1/oauth2/token", self._token),
            route("POST", f"{p}/v2/checkout/orders", self._guard(self._create_order)),
            route("GET", f"{p}/v2/checkout/orders/{{id}}", self._guard(self._get_order)),
            route("POST", f"{p}/v2/checkout/orders/{{id}}/capture", self._guard(self._capture)),
            route("GET", f"{p}/v2/payments/captures/{{id}}", self._guard(self._get_capture)),
            route("POST", f"{p}/v2/payments/captures/{{id}}/refund", self._guard(self._refund)),
            route("GET", f"{p}/v2/payments/refunds/{{id}}", self._guard(self._get_refund)),
            route(
                "POST",
                f"{p}/v1/notifications/verify-webhook-signature",
                self._guard(self._verify_webhook),
            ),
            route("GET", disputes, self._guard(self.disputes.list_disputes)),
            route("GET", f"{disputes}/{{id}}", self._guard(self.disputes.show_dispute)),
            route(
                "POST",
                f"{disputes}/{{id}}/provide-evidence",
                self._guard(self.disputes.provide_evidence),
            ),
        ]

    def error_response(self, status: int, message: str) -> Response:
        return error(status, message)

    @property
    def api_base(self) -> str:
        return f"{self.context.public_url}/{self.name}"

    def approval_url(self, order_id: str) -> str:
        return f"{self.context.public_url}/_sim/paypal/approve/{order_id}?token={order_id}"

    # OAuth and the guard every API route passes.

    def _token(self, request: Request) -> Response:
        config = self.context.config
        client_id, client_secret = basic_credentials(request)
        if not (
            secrets.compare_digest(client_id, config.paypal_client_id)
            and secrets.compare_digest(client_secret, config.paypal_client_secret)
        ):
            return oauth_error(401, "invalid_client", "Client Authentication failed")
        try:
            form = parse_qs(request.body.decode())
        except UnicodeDecodeError:
            form = {}
        if form.get("grant_type") != ["client_credentials"]:
            return oauth_error(400, "unsupported_grant_type", "Grant Type is NULL")
        token = "A21AA" + secrets.token_urlsafe(48)
        with self.store.lock:
            self.store.bucket("paypal.tokens")[token] = time.time() + TOKEN_LIFETIME_S
        return Response.json(
            200,
            {
                "scope": SCOPES,
                "access_token": token,
                "token_type": "Bearer",
                "app_id": APP_ID,
                "expires_in": TOKEN_LIFETIME_S,
                "nonce": f"{paypal_time(utc_now())}{secrets.token_urlsafe(32)}",
            },
        )

    def _guard(self, handler: Handler) -> Callable[[Request], Response]:
        """A valid bearer token, the handler under the store's lock, then its webhooks
        (outside the lock: a receiver calling back must not wait for it)."""

        def guarded(request: Request) -> Response:
            if not request.header("authorization"):
                return error(401)
            outbox: Outbox = []
            with self.store.lock:
                expires = self.store.bucket("paypal.tokens").get(request.bearer_token)
                if expires is None or expires < time.time():
                    return oauth_error(401, "invalid_token", "Token signature verification failed")
                response = handler(request, outbox)
            for webhook in outbox:
                self._send(webhook)
            return response

        return guarded

    def _once(
        self,
        request: Request,
        replay: Callable[[str], Response],
        produce: Callable[[], tuple[Response, str | None]],
    ) -> Response:
        """PayPal-Request-Id: a repeat answers 200 with `replay(id of what the first made)`.
        `produce` answers and names what it made (None: nothing to remember). Hold the lock."""
        request_id = request.header("paypal-request-id")
        remembered = self.store.bucket("paypal.request_ids")
        key = f"{request.path}|{request_id}"
        if request_id and key in remembered:
            return replace(replay(remembered[key]), status=200)
        response, made = produce()
        if request_id and made is not None:
            remembered[key] = made
        return response

    # Orders.

    def _create_order(self, request: Request, outbox: Outbox) -> Response:
        return self._once(
            request,
            lambda order_id: self._order_answer(order_id, request, 200),
            lambda: self._new_order(request),
        )

    def _new_order(self, request: Request) -> tuple[Response, str | None]:
        body = _json_object(request)
        if isinstance(body, Response):
            return body, None
        parsed = parse_order_request(body, MERCHANT)
        if isinstance(parsed, Response):
            return parsed, None
        order_id = paypal_id()
        now = paypal_time(utc_now())
        data: dict[str, Any] = {
            "id": order_id,
            "intent": "CAPTURE",
            "status": "PAYER_ACTION_REQUIRED" if parsed.payment_source else "CREATED",
            "purchase_units": [parsed.unit],
            "create_time": now,
            "update_time": now,
        }
        if parsed.payment_source:
            data["payment_source"] = {"paypal": {}}
        self.store.bucket("paypal.orders")[order_id] = _new_stored_order(data, parsed)
        self.store.add_charge(
            ChargeRecord(
                gateway=self.name,
                id=order_id,
                idempotency_key=request.header("paypal-request-id"),
                reference=parsed.reference,
                amount=parsed.amount,
                currency=parsed.currency,
                status=data["status"],
            )
        )
        return self._order_answer(order_id, request, 201), order_id

    def _get_order(self, request: Request, outbox: Outbox) -> Response:
        if self._order(request.params["id"]) is None:
            return not_found(request.params["id"])
        return Response.json(200, self.render_order(request.params["id"]))

    def _order_answer(self, order_id: str, request: Request, status: int) -> Response:
        """The order as PayPal answers a create: id, status and links unless the request
        asked for `Prefer: return=representation`."""
        order = self.render_order(order_id)
        if not _wants_representation(request):
            order = {k: order[k] for k in ("id", "status", "payment_source", "links") if k in order}
        return Response.json(status, order)

    def render_order(self, order_id: str) -> dict[str, Any]:
        stored = self.store.bucket("paypal.orders")[order_id]
        order = copy.deepcopy(stored["data"])
        captures = [self._render_capture(c) for c in stored["capture_ids"]]
        refunds = [
            self._render_refund(refund_id)
            for capture_id in stored["capture_ids"]
            for refund_id in self.store.bucket("paypal.captures")[capture_id]["refund_ids"]
        ]
        if captures:
            order["purchase_units"][0]["payments"] = {"captures": captures}
            if refunds:
                order["purchase_units"][0]["payments"]["refunds"] = refunds
        order["links"] = self._order_links(order_id, order["status"])
        return order

    def _order_links(self, order_id: str, status: str) -> list[dict[str, str]]:
        this = f"{self.api_base}/v2/checkout/orders/{order_id}"
        links = [link(this, "self")]
        if status == "CREATED":
            links.append(link(self.approval_url(order_id), "approve"))
        elif status == "PAYER_ACTION_REQUIRED":
            links.append(link(self.approval_url(order_id), "payer-action"))
        if status in ("CREATED", "APPROVED"):
            links.append(link(f"{this}/capture", "capture", "POST"))
        return links

    # Capture.

    def _capture(self, request: Request, outbox: Outbox) -> Response:
        order_id = request.params["id"]
        return self._once(
            request,
            lambda made: Response.json(200, self.render_order(order_id)),
            lambda: self._capture_order(request, order_id, outbox),
        )

    def _capture_order(
        self, request: Request, order_id: str, outbox: Outbox
    ) -> tuple[Response, str | None]:
        body = _json_object(request)
        if isinstance(body, Response):
            return body, None
        stored = self._order(order_id)
        if stored is None:
            return not_found(order_id), None
        status = stored["data"]["status"]
        if status == "COMPLETED":
            return issue(422, "ORDER_ALREADY_CAPTURED"), None
        if status != "APPROVED":
            return issue(422, "ORDER_NOT_APPROVED"), None
        declined = self.capture_fault() is CaptureFault.DECLINED
        capture_id = self._new_capture(stored, declined=declined)
        capture = self._render_capture(capture_id)
        if declined:
            return self._decline(stored, capture, outbox), None
        stored["data"].update(status="COMPLETED", update_time=capture["create_time"])
        self.store.update_charge(self.name, order_id, status="COMPLETED")
        self._emit(outbox, "PAYMENT.CAPTURE.COMPLETED", "capture", capture, _summary(capture))
        return Response.json(201, self.render_order(order_id)), order_id

    def _new_capture(self, stored: dict[str, Any], *, declined: bool) -> str:
        order = stored["data"]
        unit = order["purchase_units"][0]
        capture_id = paypal_id()
        now = paypal_time(utc_now())
        amount, currency = stored["amount"], stored["currency"]
        fee = (amount * FEE_BASIS_POINTS + 5_000) // 10_000
        data: dict[str, Any] = {
            "id": capture_id,
            "status": "DECLINED" if declined else "COMPLETED",
            "amount": money(amount, currency),
            "final_capture": True,
            "seller_protection": {
                "status": "ELIGIBLE",
                "dispute_categories": ["ITEM_NOT_RECEIVED", "UNAUTHORIZED_TRANSACTION"],
            },
            "seller_receivable_breakdown": {
                "gross_amount": money(amount, currency),
                "paypal_fee": money(fee, currency),
                "net_amount": money(amount - fee, currency),
            },
            "create_time": now,
            "update_time": now,
        }
        for name in ("custom_id", "invoice_id"):
            if name in unit:
                data[name] = unit[name]
        self.store.bucket("paypal.captures")[capture_id] = {
            "data": data,
            "order_id": order["id"],
            "amount": amount,
            "currency": currency,
            "taken": 0,  # by refunds completed or pending
            "refund_ids": [],
        }
        if not declined:
            stored["capture_ids"].append(capture_id)
        return capture_id

    def _decline(self, stored: dict[str, Any], capture: dict[str, Any], outbox: Outbox) -> Response:
        """INSTRUMENT_DECLINED: the order waits for the payer again (PayPal: "restart" the
        payment by sending the payer back to approve, the error's `redirect` link)."""
        order = stored["data"]
        order.update(status=stored["awaiting"], update_time=capture["create_time"])
        order.pop("payer", None)
        if "payment_source" in order:
            order["payment_source"] = {"paypal": {}}
        self.store.update_charge(self.name, order["id"], status=order["status"])
        summary = f"Payment denied for {_amount_text(capture)}"
        self._emit(outbox, "PAYMENT.CAPTURE.DENIED", "capture", capture, summary)
        redirect = link(self.approval_url(order["id"]), "redirect")
        return issue(422, "INSTRUMENT_DECLINED", extra_links=[redirect])

    def _get_capture(self, request: Request, outbox: Outbox) -> Response:
        if self.store.bucket("paypal.captures").get(request.params["id"]) is None:
            return not_found(request.params["id"])
        return Response.json(200, self._render_capture(request.params["id"]))

    def _render_capture(self, capture_id: str) -> dict[str, Any]:
        stored = self.store.bucket("paypal.captures")[capture_id]
        capture = copy.deepcopy(stored["data"])
        capture["supplementary_data"] = {"related_ids": {"order_id": stored["order_id"]}}
        this = f"{self.api_base}/v2/payments/captures/{capture_id}"
        capture["links"] = [
            link(this, "self"),
            link(f"{this}/refund", "refund", "POST"),
            link(f"{self.api_base}/v2/checkout/orders/{stored['order_id']}", "up"),
        ]
        return capture

    # Refunds.

    def _refund(self, request: Request, outbox: Outbox) -> Response:
        return self._once(
            request,
            lambda refund_id: self._refund_answer(refund_id, request, 200),
            lambda: self._new_refund(request, outbox),
        )

    def _new_refund(self, request: Request, outbox: Outbox) -> tuple[Response, str | None]:
        body = _json_object(request)
        if isinstance(body, Response):
            return body, None
        capture_id = request.params["id"]
        stored = self.store.bucket("paypal.captures").get(capture_id)
        if stored is None:
            return not_found(capture_id), None
        status = stored["data"]["status"]
        remaining = stored["amount"] - stored["taken"]
        if status == "REFUNDED" or (status == "PARTIALLY_REFUNDED" and remaining <= 0):
            return issue(422, "CAPTURE_FULLY_REFUNDED"), None
        if status not in ("COMPLETED", "PARTIALLY_REFUNDED"):
            return issue(422, "REFUND_NOT_ALLOWED"), None
        if (disputed := self.disputes.refund_refusal(capture_id)) is not None:
            return disputed, None
        amount = self._refund_amount(body, stored, remaining)
        if isinstance(amount, Response):
            return amount, None
        refund_id = self._make_refund(stored, capture_id, amount, body)
        self.store.add_refund(
            RefundRecord(
                gateway=self.name,
                id=refund_id,
                charge_id=stored["order_id"],
                idempotency_key=request.header("paypal-request-id"),
                amount=amount,
                status=self.store.bucket("paypal.refunds")[refund_id]["data"]["status"],
            )
        )
        if self.store.bucket("paypal.refunds")[refund_id]["data"]["status"] == "COMPLETED":
            self._refund_completed(refund_id, outbox)
        return self._refund_answer(refund_id, request, 201), refund_id

    @staticmethod
    def _refund_amount(
        body: dict[str, Any], capture: dict[str, Any], remaining: int
    ) -> int | Response:
        if body.get("amount") is None:
            return remaining
        parsed = parse_money(body["amount"], "/amount")
        if isinstance(parsed, Response):
            return parsed
        amount, currency = parsed
        if currency != capture["currency"]:
            return issue(422, "REFUND_CURRENCY_MISMATCH", field="/amount/currency_code")
        if amount > remaining:
            return issue(422, "REFUND_AMOUNT_EXCEEDED", field="/amount/value")
        return amount

    def _make_refund(
        self, capture: dict[str, Any], capture_id: str, amount: int, body: dict[str, Any]
    ) -> str:
        refund_id = paypal_id()
        now = paypal_time(utc_now())
        status = _REFUND_STATUSES[self.refund_fault()]
        currency = capture["currency"]
        data: dict[str, Any] = {
            "id": refund_id,
            "status": status,
            "amount": money(amount, currency),
            "seller_payable_breakdown": {
                "gross_amount": money(amount, currency),
                "paypal_fee": money(0, currency),
                "net_amount": money(amount, currency),
            },
            "create_time": now,
            "update_time": now,
        }
        if status == "PENDING":
            data["status_details"] = {"reason": "ECHECK"}
        for name in ("invoice_id", "custom_id", "note_to_payer"):
            value = body.get(name, capture["data"].get(name))
            if value is not None:
                data[name] = value
        self.store.bucket("paypal.refunds")[refund_id] = {
            "data": data,
            "capture_id": capture_id,
            "amount": amount,
        }
        capture["refund_ids"].append(refund_id)
        if status != "FAILED":  # a completed or pending refund takes its amount
            capture["taken"] += amount
        return refund_id

    def _refund_completed(self, refund_id: str, outbox: Outbox) -> None:
        """The capture and the recorded charge after one of their refunds completed."""
        refund = self.store.bucket("paypal.refunds")[refund_id]
        capture = self.store.bucket("paypal.captures")[refund["capture_id"]]
        completed = self._money_returned(capture, refund["data"]["update_time"])
        refund["data"]["seller_payable_breakdown"]["total_refunded_amount"] = money(
            completed, capture["currency"]
        )
        rendered = self._render_refund(refund_id)
        summary = f"A {_amount_text(rendered)} capture payment was refunded"
        self._emit(outbox, "PAYMENT.CAPTURE.REFUNDED", "refund", rendered, summary)

    def _money_returned(self, capture: dict[str, Any], update_time: str) -> int:
        """The capture's status and its recorded charge after money went back to the payer
        (a refund completed, a dispute lost). Answers what its completed refunds add up to."""
        refunds = self.store.bucket("paypal.refunds")
        completed = sum(
            refunds[other]["amount"]
            for other in capture["refund_ids"]
            if refunds[other]["data"]["status"] == "COMPLETED"
        )
        returned = completed + capture.get("reversed", 0)  # "reversed": by disputes lost
        full = returned >= capture["amount"]
        capture["data"].update(
            status="REFUNDED" if full else "PARTIALLY_REFUNDED", update_time=update_time
        )
        self.store.update_charge(self.name, capture["order_id"], amount_refunded=returned)
        return completed

    def _get_refund(self, request: Request, outbox: Outbox) -> Response:
        refund_id = request.params["id"]
        refund = self.store.bucket("paypal.refunds").get(refund_id)
        if refund is None:
            return not_found(refund_id)
        fault = self.refund_fault()
        if refund["data"]["status"] == "PENDING" and fault.settles():
            self._settle(refund_id, fault, outbox)
        return Response.json(200, self._render_refund(refund_id))

    def _settle(self, refund_id: str, fault: RefundFault, outbox: Outbox) -> None:
        refund = self.store.bucket("paypal.refunds")[refund_id]
        refund["data"].update(status=_REFUND_STATUSES[fault], update_time=paypal_time(utc_now()))
        refund["data"].pop("status_details", None)
        self.store.update_refund(self.name, refund_id, status=refund["data"]["status"])
        if fault is RefundFault.FAILED:
            capture = self.store.bucket("paypal.captures")[refund["capture_id"]]
            capture["taken"] -= refund["amount"]  # available again
        else:
            self._refund_completed(refund_id, outbox)

    def _refund_answer(self, refund_id: str, request: Request, status: int) -> Response:
        refund = self._render_refund(refund_id)
        if not _wants_representation(request):
            refund = {k: refund[k] for k in ("id", "status", "links")}
        return Response.json(status, refund)

    def _render_refund(self, refund_id: str) -> dict[str, Any]:
        stored = self.store.bucket("paypal.refunds")[refund_id]
        refund = copy.deepcopy(stored["data"])
        refund["links"] = [
            link(f"{self.api_base}/v2/payments/refunds/{refund_id}", "self"),
            link(f"{self.api_base}/v2/payments/captures/{stored['capture_id']}", "up"),
        ]
        return refund

    # The payer's side (control.py's /_sim/paypal/approve/{id}).

    def has_order(self, order_id: str) -> bool:
        with self.store.lock:
            return self._order(order_id) is not None

    def approve(self, order_id: str) -> tuple[dict[str, Any], Delivery, str]:
        """The payer approves: APPROVED, CHECKOUT.ORDER.APPROVED sent. Returns the order,
        the delivery and where PayPal sends the payer's browser (return_url)."""
        outbox: Outbox = []
        with self.store.lock:
            stored = self._awaiting_payer(order_id)
            payer_id = paypal_id(13)
            order = stored["data"]
            order.update(status="APPROVED", update_time=paypal_time(utc_now()))
            order["payer"] = {
                "name": dict(PAYER_NAME),
                "email_address": PAYER_EMAIL,
                "payer_id": payer_id,
                "address": {"country_code": "BR"},
            }
            if "payment_source" in order:
                order["payment_source"] = {
                    "paypal": {
                        "email_address": PAYER_EMAIL,
                        "account_id": payer_id,
                        "account_status": "VERIFIED",
                        "name": dict(PAYER_NAME),
                        "address": {"country_code": "BR"},
                    }
                }
            self.store.update_charge(self.name, order_id, status="APPROVED")
            snapshot = self.render_order(order_id)
            summary = "An order has been approved by buyer"
            self._emit(outbox, "CHECKOUT.ORDER.APPROVED", "checkout-order", snapshot, summary)
            back = _back_url(stored["return_url"], token=order_id, PayerID=payer_id)
        [webhook] = outbox
        return snapshot, self._send(webhook), back

    def cancel(self, order_id: str) -> tuple[dict[str, Any], str]:
        """The payer cancels at PayPal: the order is left as it was (PayPal changes nothing;
        an order never approved expires), the browser goes back to cancel_url."""
        with self.store.lock:
            stored = self._awaiting_payer(order_id)
            return self.render_order(order_id), _back_url(stored["cancel_url"], token=order_id)

    def _awaiting_payer(self, order_id: str) -> dict[str, Any]:
        stored = self._order(order_id)
        if stored is None:
            raise SimulationError(404, f"no PayPal order {order_id}")
        status = stored["data"]["status"]
        if status not in AWAITING_PAYER:
            raise SimulationError(409, f"order {order_id} is {status}, not awaiting the payer")
        return stored

    # Disputes, as the control API opens and closes them (the routes: paypal_disputes.py).

    def disputed_charge(self, payment_id: str) -> str | None:
        with self.store.lock:
            return self.disputes.capture_for(payment_id)

    def open_dispute(
        self, charge_id: str, *, amount: int | None, reason: str, kind: str
    ) -> tuple[dict[str, Any], Delivery | None]:
        return self._dispute_change(
            lambda outbox: self.disputes.open(
                charge_id, amount=amount, reason=reason, kind=kind, outbox=outbox
            )
        )

    def has_dispute(self, dispute_id: str) -> bool:
        with self.store.lock:
            return self.disputes.known(dispute_id)

    def close_dispute(
        self, dispute_id: str, *, outcome: str
    ) -> tuple[dict[str, Any], Delivery | None]:
        return self._dispute_change(
            lambda outbox: self.disputes.close(dispute_id, outcome=outcome, outbox=outbox)
        )

    def _dispute_change(
        self, change: Callable[[Outbox], dict[str, Any]]
    ) -> tuple[dict[str, Any], Delivery | None]:
        """The change under the store's lock, then its webhook (as _guard sends them)."""
        outbox: Outbox = []
        with self.store.lock:
            dispute = change(outbox)
        deliveries = [self._send(webhook) for webhook in outbox]
        return dispute, deliveries[-1] if deliveries else None

    def _dispute_lost(self, capture_id: str, amount: int, update_time: str) -> None:
        """A dispute resolved in the buyer's favour took `amount` of the capture back."""
        capture = self.store.bucket("paypal.captures")[capture_id]
        capture["taken"] += amount
        capture["reversed"] = capture.get("reversed", 0) + amount
        self._money_returned(capture, update_time)

    # Webhooks.

    def _emit(
        self, outbox: Outbox, event_type: str, resource_type: str, resource: Any, summary: str
    ) -> None:
        """Queue one event, sent once the change is made (see _guard)."""
        outbox.append(webhook_event(event_type, resource_type, resource, summary))

    def _send(self, webhook: Webhook) -> Delivery:
        return self.context.callbacks.deliver(
            self.name, webhook.event_type, self._webhook_builder(webhook.body)
        )

    def _webhook_builder(self, body: bytes) -> Callable[[], Outgoing | None]:
        # The same event each time; a redelivery is a new transmission (id, time, signature).
        def build() -> Outgoing | None:
            target = self.context.callbacks.target(self.name)
            if not target.url:
                return None
            transmission_id = str(uuid.uuid4())
            transmission_time = paypal_time(utc_now())
            signed = paypal_signed_string(transmission_id, transmission_time, target.secret, body)
            transmission = {
                "auth_algo": AUTH_ALGO,
                "cert_url": f"{self.api_base}/v1/notifications/certs/CERT-paywave-simulator",
                "transmission_id": transmission_id,
                "transmission_sig": paypal_transmission_signature(SIGNING_KEY, signed),
                "transmission_time": transmission_time,
                "webhook_id": target.secret,
            }
            with self.store.lock:
                self.store.bucket("paypal.transmissions")[transmission_id] = {
                    **transmission,
                    "body": body,
                }
            headers = {
                "Content-Type": "application/json",
                "User-Agent": "PayPal/AUHD-214.0-58936574",
                **{
                    f"PAYPAL-{name.upper().replace('_', '-')}": value
                    for name, value in transmission.items()
                    if name != "webhook_id"
                },
            }
            return Outgoing(target.url, headers, body)

        return build

    def _verify_webhook(self, request: Request, outbox: Outbox) -> Response:
        """SUCCESS only for a transmission the simulator sent, as it sent it."""
        body = _json_object(request)
        if isinstance(body, Response):
            return body
        for name in VERIFY_FIELDS:
            if body.get(name) in (None, ""):
                return issue(400, "MISSING_REQUIRED_PARAMETER", field=f"/{name}")
        if not isinstance(body["webhook_event"], dict):
            return issue(400, "INVALID_PARAMETER_SYNTAX", field="/webhook_event")
        sent = self.store.bucket("paypal.transmissions").get(str(body["transmission_id"]))
        verified = sent is not None and _as_sent(body, sent)
        return Response.json(200, {"verification_status": "SUCCESS" if verified else "FAILURE"})

    # Helpers.

    def _order(self, order_id: str) -> dict[str, Any] | None:
        return self.store.bucket("paypal.orders").get(order_id)


def _new_stored_order(data: dict[str, Any], parsed: OrderRequest) -> dict[str, Any]:
    return {
        "data": data,
        "amount": parsed.amount,
        "currency": parsed.currency,
        "return_url": parsed.return_url,
        "cancel_url": parsed.cancel_url,
        "awaiting": data["status"],  # the status an order waiting for its payer shows
        "capture_ids": [],
    }


def _as_sent(claimed: dict[str, Any], sent: dict[str, Any]) -> bool:
    """Every field as the simulator sent it, the event the one it sent, and the signature
    the one PayPal's signed string over these gives."""
    fields_match = all(
        str(claimed[name]) == sent[name] for name in VERIFY_FIELDS if name != "webhook_event"
    )
    if not fields_match or claimed["webhook_event"] != json.loads(sent["body"]):
        return False
    signed = paypal_signed_string(
        str(claimed["transmission_id"]),
        str(claimed["transmission_time"]),
        str(claimed["webhook_id"]),
        sent["body"],
    )
    expected = paypal_transmission_signature(SIGNING_KEY, signed)
    return secrets.compare_digest(expected, str(claimed["transmission_sig"]))


def _json_object(request: Request) -> dict[str, Any] | Response:
    try:
        body = request.json()
    except ValueError:
        return issue(400, "MALFORMED_REQUEST_JSON")
    if not isinstance(body, dict):
        return issue(400, "MALFORMED_REQUEST_JSON")
    return body


def _wants_representation(request: Request) -> bool:
    return "return=representation" in request.header("prefer").replace(" ", "")


def _amount_text(resource: dict[str, Any]) -> str:
    return f"{resource['amount']['value']} {resource['amount']['currency_code']}"


def _summary(capture: dict[str, Any]) -> str:
    return f"Payment completed for {_amount_text(capture)}"


def _back_url(url: str, **params: str) -> str:
    return with_query(url, params) if url else ""
