"""PayPal's Disputes API v1 under /paypal/v1/customer/disputes, on the simulator's captures.

A dispute contests one capture (its `seller_transaction_id`). The control API opens one
(WAITING_FOR_SELLER_RESPONSE, due in 10 days) and closes it (RESOLVED, in the seller's
or the buyer's favour; the buyer's takes the amount back from the capture, as a refund
would). In between the merchant may answer once through provide-evidence (multipart, an
`input` JSON part), which puts it UNDER_REVIEW. Each change sends CUSTOMER.DISPUTE.CREATED,
.UPDATED or .RESOLVED with the whole dispute. While a dispute is open its capture takes no
refund.
"""

import base64
import binascii
import copy
import json
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any
from urllib.parse import urlencode

from gateways.simulators.context import SimulationError, rfc3339, utc_now
from gateways.simulators.paypal_wire import (
    Outbox,
    issue,
    link,
    money,
    not_found,
    webhook_event,
)
from gateways.simulators.routing import Request, Response
from gateways.simulators.store import Store

BUCKET = "paypal.disputes"
RESPONSE_DAYS = 10  # until seller_response_due_date
PAGE_SIZE, MAX_PAGE_SIZE = 10, 50
NOTES_LIMIT = 2000
DISPUTABLE = ("COMPLETED", "PARTIALLY_REFUNDED")  # capture statuses a payer can contest
REASONS = frozenset(
    {
        "MERCHANDISE_OR_SERVICE_NOT_RECEIVED",
        "MERCHANDISE_OR_SERVICE_NOT_AS_DESCRIBED",
        "UNAUTHORISED",
        "CREDIT_NOT_PROCESSED",
        "DUPLICATE_TRANSACTION",
        "INCORRECT_AMOUNT",
        "PAYMENT_BY_OTHER_MEANS",
        "CANCELED_RECURRING_BILLING",
        "PROBLEM_WITH_REMITTANCE",
        "OTHER",
    }
)
# The control API's (Stripe's) reason words, as PayPal says them.
_CONTROL_REASONS = {
    "fraudulent": "UNAUTHORISED",
    "unauthorized": "UNAUTHORISED",
    "product_not_received": "MERCHANDISE_OR_SERVICE_NOT_RECEIVED",
    "product_unacceptable": "MERCHANDISE_OR_SERVICE_NOT_AS_DESCRIBED",
    "duplicate": "DUPLICATE_TRANSACTION",
    "credit_not_processed": "CREDIT_NOT_PROCESSED",
    "subscription_canceled": "CANCELED_RECURRING_BILLING",
    "general": "OTHER",
}
_STAGES = {"chargeback": "CHARGEBACK", "mediation": "INQUIRY"}  # the control API's `kind`
# What the merchant sees the dispute waiting for (PayPal's `dispute_state`).
_STATES = {
    "WAITING_FOR_SELLER_RESPONSE": "REQUIRED_ACTION",
    "WAITING_FOR_BUYER_RESPONSE": "REQUIRED_OTHER_PARTY_ACTION",
    "UNDER_REVIEW": "UNDER_PAYPAL_REVIEW",
    "RESOLVED": "RESOLVED",
}
_SUMMARY_FIELDS = (
    "dispute_id",
    "create_time",
    "update_time",
    "reason",
    "status",
    "dispute_state",
    "dispute_amount",
    "dispute_life_cycle_stage",
    "dispute_channel",
)

# What a lost dispute does to its capture: (capture id, amount, update time).
MoneyBack = Callable[[str, int, str], None]


class PayPalDisputes:
    """The disputes, kept in the store's "paypal.disputes" bucket. Callers hold the store's
    lock around every method, and send what the outbox collected once they let it go."""

    def __init__(self, store: Store, *, api_base: Callable[[], str], money_back: MoneyBack):
        self.store = store
        self._api_base = api_base
        self._money_back = money_back

    # The API's routes.

    def list_disputes(self, request: Request, outbox: Outbox) -> Response:
        """Summaries, oldest first, filtered by `disputed_transaction_id` or `start_time`
        (created at or after; PayPal takes one or the other, not both), paged."""
        query = _list_query(request)
        if isinstance(query, Response):
            return query
        capture_id, since, page_size, offset = query
        found = [
            stored
            for stored in sorted(self._bucket().values(), key=_creation_order)
            if (not capture_id or stored["capture_id"] == capture_id)
            and (since is None or stored["created"] >= since.timestamp())
        ]
        page = found[offset : offset + page_size]
        params = {
            name: request.query_value(name)
            for name in ("disputed_transaction_id", "start_time")
            if request.query_value(name)
        }
        params["page_size"] = str(page_size)
        links = [link(self._list_url(params, offset), "self")]
        if offset + page_size < len(found):
            links.append(link(self._list_url(params, offset + page_size), "next"))
        items = [self._summary(stored["data"]["dispute_id"]) for stored in page]
        return Response.json(200, {"items": items, "links": links})

    def show_dispute(self, request: Request, outbox: Outbox) -> Response:
        dispute_id = request.params["id"]
        if not self.known(dispute_id):
            return not_found(dispute_id)
        return Response.json(200, self.render(dispute_id))

    def provide_evidence(self, request: Request, outbox: Outbox) -> Response:
        """The merchant's answer: WAITING_FOR_SELLER_RESPONSE to UNDER_REVIEW."""
        dispute_id = request.params["id"]
        stored = self._bucket().get(dispute_id)
        if stored is None:
            return not_found(dispute_id)
        evidences = _evidences(request)
        if isinstance(evidences, Response):
            return evidences
        data = stored["data"]
        if data["status"] != "WAITING_FOR_SELLER_RESPONSE":
            return issue(422, "ACTION_NOT_ALLOWED_IN_CURRENT_DISPUTE_STATE")
        now = rfc3339(utc_now())
        for evidence in evidences:
            evidence.update(source="SUBMITTED_BY_SELLER", date=now)
        data.setdefault("evidences", []).extend(evidences)
        data.update(status="UNDER_REVIEW", update_time=now)
        summary = f"A dispute was updated with Case # {dispute_id}"
        self._emit(outbox, "CUSTOMER.DISPUTE.UPDATED", dispute_id, summary)
        return Response.json(200, {"links": [link(self._url(dispute_id), "self")]})

    # The control API's actions.

    def capture_for(self, payment_id: str) -> str | None:
        """The paid capture of the order PayWave made for `payment_id` (its custom_id or
        invoice_id), the newest if several are."""
        captures = self.store.bucket("paypal.captures")
        found = None
        for order in self.store.bucket("paypal.orders").values():
            unit = order["data"]["purchase_units"][0]
            if payment_id not in (unit.get("custom_id"), unit.get("invoice_id")):
                continue
            for capture_id in order["capture_ids"]:
                if captures[capture_id]["data"]["status"] in DISPUTABLE:
                    found = capture_id
        return found

    def open(
        self, capture_id: str, *, amount: int | None, reason: str, kind: str, outbox: Outbox
    ) -> dict[str, Any]:
        capture = self.store.bucket("paypal.captures").get(capture_id)
        if capture is None or capture["data"]["status"] not in DISPUTABLE:
            raise SimulationError(404, f"no paid PayPal capture {capture_id}")
        if self._open_on(capture_id) is not None:
            raise SimulationError(409, f"capture {capture_id} has an open dispute already")
        left = capture["amount"] - capture["taken"]
        if amount is None:
            amount = left
        if not 0 < amount <= left:
            raise SimulationError(400, f"amount must be at most {left}, what is left of it")
        paypal_reason = _paypal_reason(reason)
        stage = _stage(kind, paypal_reason)
        dispute_id = self._new_id()
        now = utc_now()
        self._bucket()[dispute_id] = {
            "data": {
                "dispute_id": dispute_id,
                "create_time": rfc3339(now),
                "update_time": rfc3339(now),
                "reason": paypal_reason,
                "status": "WAITING_FOR_SELLER_RESPONSE",
                "dispute_amount": money(amount, capture["currency"]),
                "seller_response_due_date": rfc3339(now + timedelta(days=RESPONSE_DAYS)),
                "dispute_life_cycle_stage": stage,
                # A chargeback comes through the card's issuer; an inquiry, PayPal's own.
                "dispute_channel": "EXTERNAL" if stage == "CHARGEBACK" else "INTERNAL",
            },
            "capture_id": capture_id,
            "amount": amount,
            "created": now.timestamp(),
        }
        summary = f"A new dispute opened with Case # {dispute_id}"
        self._emit(outbox, "CUSTOMER.DISPUTE.CREATED", dispute_id, summary)
        return self.render(dispute_id)

    def close(self, dispute_id: str, *, outcome: str, outbox: Outbox) -> dict[str, Any]:
        """`outcome` "won" (the seller's favour) or "lost" (the buyer's: the money goes back)."""
        stored = self._bucket().get(dispute_id)
        if stored is None:
            raise SimulationError(404, f"no dispute {dispute_id}")
        data = stored["data"]
        if data["status"] == "RESOLVED":
            raise SimulationError(409, f"dispute {dispute_id} is resolved already")
        now = rfc3339(utc_now())
        data.update(status="RESOLVED", update_time=now)
        if outcome == "lost":
            data["dispute_outcome"] = {
                "outcome_code": "RESOLVED_BUYER_FAVOUR",
                "amount_refunded": dict(data["dispute_amount"]),
            }
            self._money_back(stored["capture_id"], stored["amount"], now)
        else:
            data["dispute_outcome"] = {"outcome_code": "RESOLVED_SELLER_FAVOUR"}
        summary = f"A dispute was resolved with case # {dispute_id}"
        self._emit(outbox, "CUSTOMER.DISPUTE.RESOLVED", dispute_id, summary)
        return self.render(dispute_id)

    def known(self, dispute_id: str) -> bool:
        return self._bucket().get(dispute_id) is not None

    def refund_refusal(self, capture_id: str) -> Response | None:
        """The answer to a refund of a capture under an open dispute; None if it has none."""
        disputed = self._open_on(capture_id)
        if disputed is None:
            return None
        if disputed["data"]["dispute_life_cycle_stage"] == "CHARGEBACK":
            return issue(422, "REFUND_NOT_PERMITTED_DUE_TO_CHARGEBACK")
        case = disputed["data"]["dispute_id"]
        return issue(
            422,
            "TRANSACTION_REFUSED",
            description=f"The transaction is under dispute (case {case}): it cannot be "
            "refunded until the case is resolved.",
        )

    # Rendering.

    def render(self, dispute_id: str) -> dict[str, Any]:
        """The dispute as Show dispute details answers it."""
        stored = self._bucket()[dispute_id]
        dispute = copy.deepcopy(stored["data"])
        dispute["dispute_state"] = _STATES.get(dispute["status"], "OPEN_INQUIRIES")
        dispute["disputed_transactions"] = [self._transaction(stored["capture_id"])]
        links = [link(self._url(dispute_id), "self")]
        if dispute["status"] == "WAITING_FOR_SELLER_RESPONSE":
            evidence = f"{self._url(dispute_id)}/provide-evidence"
            links.append(link(evidence, "provide_evidence", "POST"))
        dispute["links"] = links
        return dispute

    def _summary(self, dispute_id: str) -> dict[str, Any]:
        full = self.render(dispute_id)
        summary = {name: full[name] for name in _SUMMARY_FIELDS}
        summary["links"] = [link(self._url(dispute_id), "self")]
        return summary

    def _transaction(self, capture_id: str) -> dict[str, Any]:
        capture = self.store.bucket("paypal.captures")[capture_id]["data"]
        transaction: dict[str, Any] = {
            "seller_transaction_id": capture_id,
            "create_time": capture["create_time"],
            "transaction_status": capture["status"],
            "gross_amount": dict(capture["amount"]),
        }
        if "invoice_id" in capture:
            transaction["invoice_number"] = capture["invoice_id"]
        if "custom_id" in capture:
            transaction["custom"] = capture["custom_id"]
        return transaction

    # Helpers.

    def _emit(self, outbox: Outbox, event_type: str, dispute_id: str, summary: str) -> None:
        resource = self.render(dispute_id)
        outbox.append(
            webhook_event(event_type, "dispute", resource, summary, resource_version="1.0")
        )

    def _open_on(self, capture_id: str) -> dict[str, Any] | None:
        for stored in self._bucket().values():
            if stored["capture_id"] == capture_id and stored["data"]["status"] != "RESOLVED":
                return stored
        return None

    def _new_id(self) -> str:
        while True:
            dispute_id = f"PP-D-{10_000 + secrets.randbelow(90_000_000)}"
            if not self.known(dispute_id):
                return dispute_id

    def _bucket(self) -> dict[str, Any]:
        return self.store.bucket(BUCKET)

    def _url(self, dispute_id: str) -> str:
        return f"{self._api_base()}/v1/customer/disputes/{dispute_id}"

    def _list_url(self, params: dict[str, str], offset: int) -> str:
        query = dict(params)
        if offset:
            query["next_page_token"] = _page_token(offset)
        return f"{self._api_base()}/v1/customer/disputes?{urlencode(query)}"


def _creation_order(stored: dict[str, Any]) -> tuple[float, str]:
    return stored["created"], stored["data"]["dispute_id"]


def _list_query(request: Request) -> tuple[str, datetime | None, int, int] | Response:
    """(disputed_transaction_id, start_time, page_size, offset) or PayPal's 400."""
    capture_id = request.query_value("disputed_transaction_id")
    start = request.query_value("start_time")
    if capture_id and start:
        both = "Specify either start_time or disputed_transaction_id, not both."
        return _query_error("start_time", "INVALID_PARAMETER_VALUE", both)
    since = None
    if start:
        since = _parse_time(start)
        if since is None:
            return _query_error("start_time", "INVALID_PARAMETER_SYNTAX")
    page_size = _positive_int(request.query_value("page_size", str(PAGE_SIZE)))
    if page_size is None or page_size > MAX_PAGE_SIZE:
        return _query_error("page_size", "INVALID_PARAMETER_VALUE")
    token = request.query_value("next_page_token")
    offset = _offset_of(token) if token else 0
    if offset is None:
        return _query_error("next_page_token", "INVALID_PARAMETER_VALUE")
    return capture_id, since, page_size, offset


def _query_error(name: str, problem: str, description: str = "") -> Response:
    return issue(400, problem, field=name, location="query", description=description)


def _parse_time(text: str) -> datetime | None:
    """An RFC 3339 time with its offset ("...Z" or "+hh:mm"); None if it is not one."""
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None and "T" in text.upper() else None


def _positive_int(text: str) -> int | None:
    return int(text) if text.isdigit() and int(text) > 0 else None


def _page_token(offset: int) -> str:
    """Opaque to clients, as PayPal's are: where the next page starts."""
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode().rstrip("=")


def _offset_of(token: str) -> int | None:
    try:
        text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    kind, _, number = text.partition(":")
    return int(number) if kind == "offset" and number.isdigit() else None


def _paypal_reason(reason: str) -> str:
    paypal = _CONTROL_REASONS.get(reason.lower(), reason.upper())
    if paypal not in REASONS:
        known = ", ".join(sorted(REASONS))
        raise SimulationError(400, f"unknown reason {reason!r} (PayPal's: {known})")
    return paypal


def _stage(kind: str, reason: str) -> str:
    """A chargeback for an unauthorised payment, PayPal's own inquiry otherwise, unless the
    control API's `kind` says which."""
    if not kind:
        return "CHARGEBACK" if reason == "UNAUTHORISED" else "INQUIRY"
    if kind not in _STAGES:
        raise SimulationError(400, f"PayPal disputes are {' or '.join(_STAGES)}, not {kind}")
    return _STAGES[kind]


def _evidences(request: Request) -> list[dict[str, Any]] | Response:
    """The `evidences` of the multipart body's `input` part, each checked."""
    content_type = request.header("content-type")
    if not content_type.lower().startswith("multipart/form-data"):
        multipart = "Provide evidence takes multipart/form-data."
        return issue(
            400,
            "INVALID_PARAMETER_SYNTAX",
            field="Content-Type",
            location="header",
            description=multipart,
        )
    part = _form_part(content_type, request.body, "input")
    if part is None:
        return issue(400, "MISSING_REQUIRED_PARAMETER", field="input")
    try:
        given = json.loads(part)
    except ValueError:
        return issue(400, "MALFORMED_REQUEST_JSON", field="input")
    evidences = given.get("evidences") if isinstance(given, dict) else None
    if not isinstance(evidences, list) or not evidences:
        return issue(400, "MISSING_REQUIRED_PARAMETER", field="/evidences")
    checked = []
    for index, evidence in enumerate(evidences):
        field = f"/evidences/{index}"
        if not isinstance(evidence, dict) or not isinstance(evidence.get("evidence_type"), str):
            return issue(400, "MISSING_REQUIRED_PARAMETER", field=f"{field}/evidence_type")
        notes = evidence.get("notes", "")
        if not isinstance(notes, str) or len(notes) > NOTES_LIMIT:
            return issue(400, "INVALID_STRING_LENGTH", field=f"{field}/notes")
        checked.append({"evidence_type": evidence["evidence_type"], "notes": notes})
    return checked


def _form_part(content_type: str, body: bytes, name: str) -> bytes | None:
    """The content of the multipart/form-data part called `name`."""
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
    message = BytesParser(policy=HTTP).parsebytes(head + body)
    if not isinstance(message, EmailMessage) or not message.is_multipart():
        return None
    for part in message.iter_parts():
        if part.get_param("name", header="content-disposition") == name:
            payload = part.get_payload(decode=True)
            return payload if isinstance(payload, bytes) else None
    return None
