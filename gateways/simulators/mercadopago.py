"""Mercado Pago under /mercadopago: PIX payments, refunds, search, chargebacks, /users/me,
signed webhooks.

JSON bodies, `Authorization: Bearer <token>`. `X-Idempotency-Key` on POST saves the
first answer per key and endpoint; a repeat gets that answer whatever its body.
Amounts are JSON numbers in reais on the wire and integer centavos inside; an amount
with more than two decimal places is refused.
"""

import copy
import decimal
import json
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from gateways.simulators._brcode import dynamic_brcode, qr_png_base64
from gateways.simulators._money import AmountError, major_number, major_string, minor_from_major
from gateways.simulators.callbacks import (
    Delivery,
    Outgoing,
    mercadopago_signature_header,
    with_query,
)
from gateways.simulators.context import (
    GatewaySimulator,
    SimulationError,
    end_to_end_id,
    mercadopago_time,
    rfc3339,
    utc_now,
)
from gateways.simulators.faults import RefundFault
from gateways.simulators.mercadopago_disputes import (
    CHARGEBACK,
    CHARGEBACK_ID_BASE,
    CHARGEBACK_TOPIC,
    MEDIATION,
    MEDIATION_PREFIX,
    chargeback_notification,
    close_chargeback,
    close_mediation,
    new_chargeback,
    new_mediation,
)
from gateways.simulators.routing import Request, Response, Route, route
from gateways.simulators.store import ChargeRecord, RefundRecord

MERCADOPAGO_ISPB = "10573521"  # Mercado Pago IP's ISPB, the first part of end-to-end ids
USER_ID = 1_234_567_890  # the simulated collector account
PAYMENT_ID_BASE = 1_300_000_000
REFUND_ID_BASE = 2_100_000_000
MERCHANT_NAME = "PAYWAVE SANDBOX"
MERCHANT_CITY = "SAO PAULO"
LOCATION_HOST = "pix-sim.invalid/mercadopago/v2"  # BR Code location; nobody fetches it here
DEFAULT_EXPIRATION = timedelta(hours=24)
DISPUTES = "mercadopago.disputes"
SEARCH_LIMIT, MAX_SEARCH_LIMIT = 30, 1000
SEARCH_DATES = ("date_created", "date_approved", "date_last_updated", "money_release_date")
_RELATIVE_DATE = re.compile(r"NOW(?:-(\d+)(DAYS|HOURS|MINUTES))?")
_REFUND_STATUSES = {
    RefundFault.SUCCEEDED: "approved",
    RefundFault.PENDING: "in_process",
    RefundFault.FAILED: "rejected",
}
_ERROR_NAMES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    429: "too_many_requests",
    502: "bad_gateway",
    503: "service_unavailable",
}


class MercadoPagoSimulator(GatewaySimulator):
    name = "mercadopago"

    def routes(self) -> list[Route]:
        p = "/mercadopago"
        return [
            route("POST", f"{p}/v1/payments", self._guard(self._create)),
            route("GET", f"{p}/v1/payments/search", self._guard(self._search)),
            route("GET", f"{p}/v1/payments/{{id}}", self._guard(self._retrieve)),
            route("PUT", f"{p}/v1/payments/{{id}}", self._guard(self._update)),
            route("POST", f"{p}/v1/payments/{{id}}/refunds", self._guard(self._refund)),
            route("GET", f"{p}/v1/payments/{{id}}/refunds", self._guard(self._list_refunds)),
            route(
                "GET",
                f"{p}/v1/payments/{{id}}/refunds/{{refund_id}}",
                self._guard(self._get_refund),
            ),
            route("GET", f"{p}/v1/chargebacks/search", self._guard(self._search_chargebacks)),
            route("GET", f"{p}/v1/chargebacks/{{id}}", self._guard(self._get_chargeback)),
            route("GET", f"{p}/users/me", self._guard(self._me)),
        ]

    def error_response(self, status: int, message: str) -> Response:
        kind = _ERROR_NAMES.get(status, "internal_server_error" if status >= 500 else "error")
        return _error(status, kind, message)

    # Authentication and idempotency.

    def _guard(self, handler: Callable[[Request], Response]) -> Callable[[Request], Response]:
        def guarded(request: Request) -> Response:
            token = request.bearer_token
            allowed = self.context.config.mercadopago_access_tokens
            if not token or (allowed is not None and token not in allowed):
                return _error(401, "unauthorized", "invalid access token", replayable=False)
            if request.method != "POST":
                with self.store.lock:
                    return handler(request)
            # Saved per endpoint, so a key reused on another endpoint is another request;
            # a repeat gets the first answer whatever its body (no fingerprint check).
            return self.store.once(
                f"{self.name}:{request.path}",
                request.header("x-idempotency-key"),
                "",
                lambda: handler(request),
            )

        return guarded

    # Payments.

    def _create(self, request: Request) -> Response:
        body = _json_object(request)
        if isinstance(body, Response):
            return body
        try:
            amount = minor_from_major(body.get("transaction_amount"))
        except AmountError as exc:
            return _bad_request(4037, f"Invalid transaction_amount: {exc}")
        if amount <= 0:
            return _bad_request(4037, "transaction_amount must be positive")
        if body.get("payment_method_id") != "pix":
            return _bad_request(4050, "payment_method_id must be 'pix' (the simulator's only one)")
        payer = body.get("payer")
        if not isinstance(payer, dict):
            payer = {}
        if not payer.get("email"):
            return _bad_request(4050, "payer.email must be a valid email")
        now = utc_now()
        expires_at = now + DEFAULT_EXPIRATION
        if body.get("date_of_expiration"):
            try:
                expires_at = datetime.fromisoformat(str(body["date_of_expiration"]))
            except ValueError:
                return _bad_request(4052, "date_of_expiration must be an ISO 8601 date-time")
            if expires_at.tzinfo is None:
                return _bad_request(4052, "date_of_expiration needs a UTC offset")
        payment_id = PAYMENT_ID_BASE + self.store.next_number()
        fault = self.br_code_fault()
        br_code = fault.finish(
            dynamic_brcode(
                location=f"{LOCATION_HOST}/{uuid.uuid4().hex}",
                amount=fault.amount(amount),
                merchant_name=MERCHANT_NAME,
                merchant_city=MERCHANT_CITY,
            )
        )
        payment: dict[str, Any] = {
            "id": payment_id,
            "date_created": mercadopago_time(now),
            "date_approved": None,
            "date_last_updated": mercadopago_time(now),
            "date_of_expiration": mercadopago_time(expires_at),
            "money_release_date": None,
            "operation_type": "regular_payment",
            "payment_method_id": "pix",
            "payment_type_id": "bank_transfer",
            "status": "pending",
            "status_detail": "pending_waiting_transfer",
            "currency_id": "BRL",
            "description": body.get("description"),
            "live_mode": False,
            "collector_id": USER_ID,
            "payer": {
                "id": None,
                "email": payer.get("email"),
                "first_name": payer.get("first_name"),
                "last_name": payer.get("last_name"),
                "identification": payer.get("identification"),
                "type": None,
            },
            "metadata": body.get("metadata") or {},
            "external_reference": body.get("external_reference"),
            "transaction_amount": major_number(amount),
            "transaction_amount_refunded": 0,
            "transaction_details": {
                "net_received_amount": 0,
                "total_paid_amount": major_number(amount),
                "overpaid_amount": 0,
                "installment_amount": 0,
                "transaction_id": None,
            },
            "captured": True,
            "binary_mode": False,
            "refunds": [],
            "point_of_interaction": {
                "type": "OPENPLATFORM",
                "transaction_data": {
                    "qr_code": br_code,
                    "qr_code_base64": qr_png_base64(br_code),
                    "ticket_url": f"{self.context.public_url}/_sim/pix/{payment_id}",
                    "transaction_id": None,
                    "e2e_id": None,
                },
            },
        }
        self.store.bucket("mercadopago.payments")[str(payment_id)] = {
            "data": payment,
            "amount": amount,
            "refunded": 0,
            "expires_at": expires_at,
        }
        self.store.add_charge(
            ChargeRecord(
                gateway=self.name,
                id=str(payment_id),
                idempotency_key=request.header("x-idempotency-key"),
                reference=str(body.get("external_reference") or ""),
                amount=amount,
                currency="BRL",
                status="pending",
            )
        )
        return Response.json(201, payment)

    def _retrieve(self, request: Request) -> Response:
        stored = self._payment(request.params["id"])
        if stored is None:
            return _not_found()
        return Response.json(200, copy.deepcopy(stored["data"]))

    def _search(self, request: Request) -> Response:
        """external_reference=, status=, range=<date field>&begin_date=&end_date=, sort=
        date_created (criteria=asc|desc), limit= and offset=."""
        reference = request.query_value("external_reference")
        status = request.query_value("status")
        window, page = _DateWindow.of(request), _Page.of(request)
        if isinstance(window, Response):
            return window
        if isinstance(page, Response):
            return page
        with self.store.lock:
            for payment_id in list(self.store.bucket("mercadopago.payments")):
                self._payment(payment_id)  # lets expiry happen before filtering
            results = [
                copy.deepcopy(stored["data"])
                for stored in self.store.bucket("mercadopago.payments").values()
                if (not reference or stored["data"]["external_reference"] == reference)
                and (not status or stored["data"]["status"] == status)
                and window.holds(stored["data"])
            ]
        if request.query_value("sort") == "date_created":  # else in the order they were made
            newest_first = request.query_value("criteria") == "desc"
            results.sort(key=lambda data: (data["date_created"], data["id"]), reverse=newest_first)
        return page.answer(results)

    def _update(self, request: Request) -> Response:
        body = _json_object(request)
        if isinstance(body, Response):
            return body
        with self.store.lock:
            stored = self._payment(request.params["id"])
            if stored is None:
                return _not_found()
            payment = stored["data"]
            if body.get("status") != "cancelled" or set(body) - {"status"}:
                return _bad_request(4060, "the simulator only updates {'status': 'cancelled'}")
            if payment["status"] not in ("pending", "in_process"):
                return _bad_request(4060, f"cannot cancel a payment that is {payment['status']}")
            payment.update(status="cancelled", status_detail="by_collector")
            payment["date_last_updated"] = mercadopago_time(utc_now())
            self.store.update_charge(self.name, str(payment["id"]), status="cancelled")
            return Response.json(200, copy.deepcopy(payment))

    # Refunds.

    def _refund(self, request: Request) -> Response:
        body = _json_object(request)
        if isinstance(body, Response):
            return body
        stored = self._payment(request.params["id"])
        if stored is None:
            return _not_found()
        payment = stored["data"]
        if payment["status"] != "approved":
            return _bad_request(2063, f"cannot refund a payment that is {payment['status']}")
        remaining = stored["amount"] - stored["refunded"]
        amount = remaining
        if body.get("amount") is not None:
            try:
                amount = minor_from_major(body["amount"])
            except AmountError as exc:
                return _bad_request(4038, f"Invalid amount: {exc}")
            if amount <= 0 or amount > remaining:
                return _bad_request(4038, f"amount must be from 0.01 to {major_string(remaining)}")
        refund_id = REFUND_ID_BASE + self.store.next_number()
        now = mercadopago_time(utc_now())
        status = _REFUND_STATUSES[self.refund_fault()]
        refund = {
            "id": refund_id,
            "payment_id": payment["id"],
            "amount": major_number(amount),
            "metadata": body.get("metadata") or {},
            "source": {"id": str(USER_ID), "name": "PayWave Sandbox", "type": "collector"},
            "date_created": now,
            "unique_sequence_number": None,
            "refund_mode": "standard",
            "adjustment_amount": 0,
            "status": status,
            "reason": None,
            "labels": [],
            "amount_refunded_to_payer": major_number(amount if status == "approved" else 0),
            "partition_details": [],
        }
        if status != "rejected":  # an approved or in-process refund takes its amount
            stored["refunded"] += amount
        payment["refunds"].append(refund)
        self.store.add_refund(
            RefundRecord(
                gateway=self.name,
                id=str(refund_id),
                charge_id=str(payment["id"]),
                idempotency_key=request.header("x-idempotency-key"),
                amount=amount,
                status=status,
            )
        )
        if status == "approved":
            self._refunded(stored, now)
        return Response.json(201, refund)

    def _refunded(self, stored: dict[str, Any], now: str) -> None:
        """The payment after one of its refunds was approved: its totals and status."""
        payment = stored["data"]
        approved = stored.get("bpp_refunded", 0) + sum(
            _minor(refund["amount"])
            for refund in payment["refunds"]
            if refund["status"] == "approved"
        )
        payment["transaction_amount_refunded"] = major_number(approved)
        payment["date_last_updated"] = now
        if payment["status"] == "approved":  # a disputed payment keeps its dispute's status
            if approved == stored["amount"]:
                payment.update(status="refunded", status_detail="refunded")
            else:
                payment["status_detail"] = "partially_refunded"
        self.store.update_charge(
            self.name, str(payment["id"]), status=payment["status"], amount_refunded=approved
        )

    def _settle_refunds(self, stored: dict[str, Any]) -> None:
        """In-process refunds read back while the `refund_status` fault settles them."""
        waiting = [r for r in stored["data"]["refunds"] if r["status"] == "in_process"]
        fault = self.refund_fault() if waiting else RefundFault.PENDING
        if not fault.settles():
            return
        now = mercadopago_time(utc_now())
        for refund in waiting:
            refund["status"] = _REFUND_STATUSES[fault]
            if fault is RefundFault.FAILED:
                stored["refunded"] -= _minor(refund["amount"])  # available again
            else:
                refund["amount_refunded_to_payer"] = refund["amount"]
            self.store.update_refund(self.name, str(refund["id"]), status=refund["status"])
        if fault is RefundFault.SUCCEEDED:
            self._refunded(stored, now)

    def _list_refunds(self, request: Request) -> Response:
        stored = self._payment(request.params["id"])
        if stored is None:
            return _not_found()
        return Response.json(200, copy.deepcopy(stored["data"]["refunds"]))

    def _get_refund(self, request: Request) -> Response:
        stored = self._payment(request.params["id"])
        if stored is None:
            return _not_found()
        for refund in stored["data"]["refunds"]:
            if str(refund["id"]) == request.params["refund_id"]:
                return Response.json(200, copy.deepcopy(refund))
        cause = [{"code": 2000, "description": "Refund not found", "data": None}]
        return _error(404, "not_found", "Refund not found", cause, replayable=False)

    def _me(self, request: Request) -> Response:
        return Response.json(
            200,
            {
                "id": USER_ID,
                "nickname": "PAYWAVESANDBOX",
                "first_name": "PayWave",
                "last_name": "Sandbox",
                "email": "sandbox@paywave.example",
                "site_id": "MLB",
                "country_id": "BR",
                "status": {"site_status": "active"},
            },
        )

    # The /_sim side: the payer pays, Mercado Pago notifies.

    def has_payment(self, payment_id: str) -> bool:
        return self._payment(payment_id) is not None

    def pay(self, payment_id: str) -> tuple[dict[str, Any], Delivery]:
        with self.store.lock:
            stored = self._payment(payment_id)
            if stored is None:
                raise SimulationError(404, f"no Mercado Pago payment {payment_id}")
            payment = stored["data"]
            if payment["status"] != "pending":
                raise SimulationError(
                    409, f"payment {payment_id} is {payment['status']}/{payment['status_detail']}"
                )
            now = mercadopago_time(utc_now())
            payment.update(
                status="approved",
                status_detail="accredited",
                date_approved=now,
                date_last_updated=now,
                money_release_date=now,
            )
            payment["transaction_details"]["net_received_amount"] = payment["transaction_amount"]
            payment["point_of_interaction"]["transaction_data"]["e2e_id"] = end_to_end_id(
                MERCADOPAGO_ISPB
            )
            self.store.update_charge(self.name, payment_id, status="approved")
            snapshot = copy.deepcopy(payment)
        delivery = self.context.callbacks.deliver(
            self.name, "payment.updated", self._notification_builder(payment_id)
        )
        return snapshot, delivery

    def _notification_builder(self, payment_id: str) -> Callable[[], Outgoing | None]:
        # One notification: a redelivery sends the same body (same id, Mercado Pago's
        # dedupe key) with a new x-request-id and a fresh signature.
        body = json.dumps(
            {
                "action": "payment.updated",
                "api_version": "v1",
                "data": {"id": payment_id},
                "date_created": rfc3339(utc_now()),
                "id": self._notification_id(),
                "live_mode": False,
                "type": "payment",
                "user_id": str(USER_ID),
            }
        ).encode()
        return self._signed_notification(payment_id, "payment", body)

    def _chargeback_notification_builder(
        self, stored: dict[str, Any], action: str
    ) -> Callable[[], Outgoing | None]:
        body = chargeback_notification(
            stored["data"],
            action=action,
            notification_id=self._notification_id(),
            user_id=USER_ID,
            version=stored["version"],
            now=utc_now(),
        )
        return self._signed_notification(stored["data"]["id"], CHARGEBACK_TOPIC, body)

    def _notification_id(self) -> int:
        # Unique, as Mercado Pago's are: PayWave dedupes callbacks by this id.
        return int(time.time() * 1000) * 1000 + self.store.next_number() % 1000

    def _signed_notification(
        self, data_id: str, topic: str, body: bytes
    ) -> Callable[[], Outgoing | None]:
        """`body` to `<url>?data.id=<data_id>&type=<topic>`, signed over that data.id."""

        def build() -> Outgoing | None:
            target = self.context.callbacks.target(self.name)
            if not target.url:
                return None
            request_id = str(uuid.uuid4())
            ts = int(time.time())
            headers = {
                "Content-Type": "application/json",
                "x-request-id": request_id,
                "x-signature": mercadopago_signature_header(target.secret, data_id, request_id, ts),
            }
            url = with_query(target.url, {"data.id": data_id, "type": topic})
            return Outgoing(url, headers, body)

        return build

    # Disputes: chargebacks (their own objects) and mediations (a payment status only).

    def _get_chargeback(self, request: Request) -> Response:
        stored = self.store.bucket(DISPUTES).get(request.params["id"])
        if stored is None or stored["kind"] != CHARGEBACK:
            cause = [{"code": 2000, "description": "Chargeback not found", "data": None}]
            return _error(404, "not_found", "Chargeback not found", cause, replayable=False)
        return Response.json(200, copy.deepcopy(stored["data"]))

    def _search_chargebacks(self, request: Request) -> Response:
        """payment_id=, limit= and offset=; oldest first."""
        page = _Page.of(request)
        if isinstance(page, Response):
            return page
        payment_id = request.query_value("payment_id")
        results = [
            copy.deepcopy(stored["data"])
            for stored in self.store.bucket(DISPUTES).values()
            if stored["kind"] == CHARGEBACK
            and (not payment_id or stored["payment_id"] == payment_id)
        ]
        return page.answer(results)

    def disputed_charge(self, payment_id: str) -> str | None:
        """The paid Mercado Pago payment with external_reference `payment_id`: an approved
        one first (the one a dispute can open on), else the newest once paid."""
        with self.store.lock:
            paid = [
                (stored["data"]["status"] == "approved", stored["data"]["id"])
                for stored in self.store.bucket("mercadopago.payments").values()
                if stored["data"]["external_reference"] == payment_id
                and stored["data"]["date_approved"] is not None
            ]
        return str(max(paid)[1]) if paid else None

    def has_dispute(self, dispute_id: str) -> bool:
        with self.store.lock:
            return self.store.bucket(DISPUTES).get(dispute_id) is not None

    def open_dispute(
        self, charge_id: str, *, amount: int | None, reason: str, kind: str
    ) -> tuple[dict[str, Any], Delivery]:
        if kind not in ("", CHARGEBACK, MEDIATION):
            raise SimulationError(400, "Mercado Pago disputes are a chargeback or a mediation")
        with self.store.lock:
            stored = self._payment(charge_id)
            if stored is None:
                raise SimulationError(404, f"no Mercado Pago payment {charge_id}")
            payment = stored["data"]
            if payment["status"] != "approved":
                raise SimulationError(
                    409, f"payment {charge_id} is {payment['status']}/{payment['status_detail']}"
                )
            remaining = stored["amount"] - stored["refunded"]
            amount = remaining if amount is None else amount
            if not 0 < amount <= remaining:
                raise SimulationError(
                    400, f"amount must be from 0.01 to {major_string(remaining)} (what is left)"
                )
            now = utc_now()
            if kind == MEDIATION:
                dispute = self._open_mediation(stored, amount, reason, now)
                builder = self._notification_builder(charge_id)
            else:
                dispute = self._open_chargeback(stored, amount, reason, now)
                builder = self._chargeback_notification_builder(dispute, "created")
            payment["date_last_updated"] = mercadopago_time(now)
            self.store.update_charge(self.name, charge_id, status=payment["status"])
            snapshot = copy.deepcopy(dispute["data"])
        event = "payment.updated" if kind == MEDIATION else CHARGEBACK_TOPIC
        return snapshot, self.context.callbacks.deliver(self.name, event, builder)

    def _open_chargeback(
        self, stored: dict[str, Any], amount: int, reason: str, now: datetime
    ) -> dict[str, Any]:
        payment = stored["data"]
        chargeback_id = str(CHARGEBACK_ID_BASE + self.store.next_number())
        chargeback = new_chargeback(
            chargeback_id, payment_id=payment["id"], amount=amount, reason=reason, now=now
        )
        dispute = {"kind": CHARGEBACK, "payment_id": str(payment["id"]), "amount": amount,
                   "data": chargeback, "outcome": None, "version": 1}  # fmt: skip
        self.store.bucket(DISPUTES)[chargeback_id] = dispute
        payment.update(status="charged_back", status_detail="in_process")
        return dispute

    def _open_mediation(
        self, stored: dict[str, Any], amount: int, reason: str, now: datetime
    ) -> dict[str, Any]:
        payment = stored["data"]
        mediation_id = f"{MEDIATION_PREFIX}{payment['id']}"
        if self.store.bucket(DISPUTES).get(mediation_id) is not None:
            raise SimulationError(409, f"payment {payment['id']} had its mediation already")
        mediation = new_mediation(payment["id"], amount=amount, reason=reason, now=now)
        dispute = {"kind": MEDIATION, "payment_id": str(payment["id"]), "amount": amount,
                   "data": mediation, "outcome": None, "version": 1}  # fmt: skip
        self.store.bucket(DISPUTES)[mediation_id] = dispute
        payment["status"] = "in_mediation"  # status_detail stays: the money was accredited
        return dispute

    def close_dispute(self, dispute_id: str, *, outcome: str) -> tuple[dict[str, Any], Delivery]:
        with self.store.lock:
            dispute = self.store.bucket(DISPUTES).get(dispute_id)
            if dispute is None:
                raise SimulationError(404, f"no Mercado Pago dispute {dispute_id}")
            if dispute["outcome"] is not None:
                raise SimulationError(409, f"dispute {dispute_id} was {dispute['outcome']} already")
            stored = self._payment(dispute["payment_id"])
            if stored is None:  # never: a dispute's payment stays
                raise SimulationError(404, f"no Mercado Pago payment {dispute['payment_id']}")
            won, now = outcome == "won", utc_now()
            dispute.update(outcome=outcome, version=dispute["version"] + 1)
            if dispute["kind"] == MEDIATION:
                close_mediation(dispute["data"], won=won, now=now)
                self._end_mediation(stored, dispute["amount"], won=won)
                builder = self._notification_builder(dispute["payment_id"])
            else:
                close_chargeback(dispute["data"], won=won, now=now)
                stored["data"]["status_detail"] = "reimbursed" if won else "settled"
                builder = self._chargeback_notification_builder(dispute, "changed_case_status")
            stored["data"]["date_last_updated"] = mercadopago_time(now)
            self.store.update_charge(
                self.name, dispute["payment_id"], status=stored["data"]["status"]
            )
            snapshot = copy.deepcopy(dispute["data"])
        event = "payment.updated" if dispute["kind"] == MEDIATION else CHARGEBACK_TOPIC
        return snapshot, self.context.callbacks.deliver(self.name, event, builder)

    def _end_mediation(self, stored: dict[str, Any], amount: int, *, won: bool) -> None:
        """Won: the payment is the merchant's again. Lost: the buyer protection program
        refunds the disputed amount; it counts in transaction_amount_refunded (and the charge
        record's amount_refunded) as the merchant's refunds do, but is not one of them."""
        payment = stored["data"]
        if won:
            payment.update(status="approved", status_detail="accredited")
            return
        stored["refunded"] += amount
        stored["bpp_refunded"] = stored.get("bpp_refunded", 0) + amount
        refunded = _minor(payment["transaction_amount_refunded"]) + amount
        payment.update(
            status="refunded",
            status_detail="bpp_refunded",
            transaction_amount_refunded=major_number(refunded),
        )
        self.store.update_charge(self.name, str(payment["id"]), amount_refunded=refunded)

    # Helpers.

    def _payment(self, payment_id: str) -> dict[str, Any] | None:
        """The stored payment; a pending one past its expiry becomes cancelled/expired, and its
        in-process refunds end if the `refund_status` fault says how."""
        with self.store.lock:
            stored = self.store.bucket("mercadopago.payments").get(payment_id)
            if stored is None:
                return None
            payment = stored["data"]
            if payment["status"] == "pending" and utc_now() > stored["expires_at"]:
                payment.update(status="cancelled", status_detail="expired")
                self.store.update_charge(self.name, payment_id, status="cancelled")
            self._settle_refunds(stored)
            return stored


@dataclass(frozen=True)
class _Page:
    """A search's `limit` (SEARCH_LIMIT unless asked, at most MAX_SEARCH_LIMIT) and `offset`."""

    limit: int
    offset: int

    @classmethod
    def of(cls, request: Request) -> "_Page | Response":
        limit = request.query_value("limit", str(SEARCH_LIMIT))
        offset = request.query_value("offset", "0")
        if not (limit.isdigit() and offset.isdigit()) or int(limit) == 0:
            return _bad_request(400, "limit and offset must be whole numbers, limit above 0")
        return cls(min(int(limit), MAX_SEARCH_LIMIT), int(offset))

    def answer(self, results: list[dict[str, Any]]) -> Response:
        paging = {"total": len(results), "limit": self.limit, "offset": self.offset}
        chosen = results[self.offset : self.offset + self.limit]
        return Response.json(200, {"paging": paging, "results": chosen})


@dataclass(frozen=True)
class _DateWindow:
    """`range=<date field>&begin_date=&end_date=`, both ends included: ISO 8601 with an
    offset, or NOW[-<n>DAYS|HOURS|MINUTES]; either may be left out. No `range`: any date."""

    field: str = ""
    begin: datetime | None = None
    end: datetime | None = None

    @classmethod
    def of(cls, request: Request) -> "_DateWindow | Response":
        field = request.query_value("range")
        if not field:
            return cls()
        if field not in SEARCH_DATES:
            return _bad_request(400, f"range must be one of {', '.join(SEARCH_DATES)}")
        try:
            begin, end = (
                _search_date(request.query_value(name)) for name in ("begin_date", "end_date")
            )
        except ValueError:
            return _bad_request(
                400, "begin_date and end_date must be ISO 8601 with an offset, or NOW"
            )
        return cls(field, begin, end)

    def holds(self, payment: dict[str, Any]) -> bool:
        if not self.field:
            return True
        if payment.get(self.field) is None:
            return False
        moment = datetime.fromisoformat(payment[self.field])
        return (self.begin is None or self.begin <= moment) and (
            self.end is None or moment <= self.end
        )


def _search_date(text: str) -> datetime | None:
    if not text:
        return None
    if relative := _RELATIVE_DATE.fullmatch(text):
        count, unit = relative.groups()
        return utc_now() - (timedelta(**{unit.lower(): int(count)}) if count else timedelta())
    # A "+" of an offset sent unencoded arrives as a space.
    moment = datetime.fromisoformat(re.sub(r" (\d\d:?\d\d)$", r"+\1", text))
    if moment.tzinfo is None:
        raise ValueError("no UTC offset")
    return moment


def _minor(number: float) -> int:
    """Centavos from a wire amount major_number wrote (its repr is the exact value)."""
    return minor_from_major(repr(number))


def _json_object(request: Request) -> dict[str, Any] | Response:
    try:
        # parse_float keeps amounts exact: 10.5 arrives as Decimal("10.5"), never a float.
        body = request.json(parse_float=decimal.Decimal)
    except ValueError:
        return _bad_request(400, "the body is not valid JSON")
    if not isinstance(body, dict):
        return _bad_request(400, "the body must be a JSON object")
    return body


def _error(
    status: int, error: str, message: str, causes: list[dict] | None = None, *, replayable=True
) -> Response:
    return Response.json(
        status,
        {"message": message, "error": error, "status": status, "cause": causes or []},
        replayable=replayable,
    )


def _bad_request(code: int, description: str) -> Response:
    cause = [{"code": code, "description": description, "data": None}]
    return _error(400, "bad_request", description, cause, replayable=False)


def _not_found() -> Response:
    cause = [{"code": 2000, "description": "Payment not found", "data": None}]
    return _error(404, "not_found", "Payment not found", cause, replayable=False)
