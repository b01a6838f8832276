"""PayPal's Disputes API v1 on the simulator: opened and closed by the control API, read
(and answered) over plain HTTP with an OAuth token from the real SDK."""

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from paypalserversdk.exceptions.error_exception import ErrorException
from paypalserversdk.paypal_serversdk_client import PaypalServersdkClient

from gateways.simulators import SimulatorConfig, SimulatorServer
from tests.gateways.simulators.conftest import paypal_client
from tests.gateways.simulators.test_paypal import (
    WEBHOOK_ID,
    approve,
    captured,
    claimed_by,
    create,
    issue_of,
    refund,
    verify,
)

DISPUTES = "/v1/customer/disputes"
SUMMARY_FIELDS = {
    "dispute_id",
    "create_time",
    "update_time",
    "reason",
    "status",
    "dispute_state",
    "dispute_amount",
    "dispute_life_cycle_stage",
    "dispute_channel",
    "links",
}


@pytest.fixture
def api(sim: SimulatorServer, paypal_sdk: PaypalServersdkClient) -> Iterator[httpx.Client]:
    """Plain HTTP to /paypal with the SDK's bearer token (the SDK has no disputes API)."""
    token = paypal_sdk.oauth_2.fetch_token().access_token
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=sim.base_url + "/paypal", headers=headers, timeout=10) as client:
        yield client


@pytest.fixture
def captured_to_webhooks(control: httpx.Client) -> None:
    """Webhooks are signed and logged but not sent: each answer's `callback` has them."""
    target = {"url": "capture://paywave/webhooks/paypal", "secret": WEBHOOK_ID}
    assert control.put("/callbacks/paypal", json=target).status_code == 200


def paid(sdk: PaypalServersdkClient, control: httpx.Client, payment_id: str, **order: Any) -> str:
    """A captured order for PayWave's payment `payment_id`; its capture id."""
    return captured(sdk, control, reference=payment_id, request_id=f"create-{payment_id}", **order)


def open_dispute(control: httpx.Client, payment_id: str, **body: Any) -> dict[str, Any]:
    answer = control.post("/disputes", json={"reference": payment_id, **body})
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


def close(control: httpx.Client, dispute_id: str, outcome: str) -> httpx.Response:
    return control.post(f"/disputes/{dispute_id}/close", json={"outcome": outcome})


def sent_event(answer: dict[str, Any]) -> tuple[dict[str, str], dict[str, Any]]:
    """The headers (lower-cased) and the event of the webhook an action sent."""
    callback = answer["callback"]
    headers = {name.lower(): value for name, value in callback["headers"].items()}
    return headers, json.loads(callback["body"])


def evidence_form(notes: str) -> dict[str, Any]:
    evidence = {"evidences": [{"evidence_type": "OTHER", "notes": notes}]}
    return {"input": (None, json.dumps(evidence), "application/json")}


def links(resource: dict[str, Any]) -> dict[str, str]:
    return {found["rel"]: found["href"] for found in resource["links"]}


def when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


# Opening.


def test_a_dispute_opens_on_the_capture_of_the_paywave_payment(
    sim: SimulatorServer,
    paypal_sdk: PaypalServersdkClient,
    control: httpx.Client,
    api: httpx.Client,
) -> None:
    capture_id = paid(paypal_sdk, control, "pw_d_1")

    answer = open_dispute(control, "pw_d_1", reason="fraudulent")

    dispute = answer["dispute"]
    assert (answer["gateway"], answer["charge"]) == ("paypal", capture_id)
    assert answer["id"] == dispute["dispute_id"]
    assert dispute["dispute_id"].startswith("PP-D-")
    assert dispute["dispute_id"][5:].isdigit()
    assert (dispute["status"], dispute["dispute_state"]) == (
        "WAITING_FOR_SELLER_RESPONSE",
        "REQUIRED_ACTION",
    )
    assert dispute["reason"] == "UNAUTHORISED"
    assert (dispute["dispute_life_cycle_stage"], dispute["dispute_channel"]) == (
        "CHARGEBACK",
        "EXTERNAL",
    )
    assert dispute["dispute_amount"] == {"currency_code": "BRL", "value": "10.50"}
    [transaction] = dispute["disputed_transactions"]
    assert transaction["seller_transaction_id"] == capture_id
    assert transaction["transaction_status"] == "COMPLETED"
    assert transaction["gross_amount"] == {"currency_code": "BRL", "value": "10.50"}
    assert (transaction["invoice_number"], transaction["custom"]) == ("inv-pw_d_1", "pw_d_1")
    due = when(dispute["seller_response_due_date"]) - when(dispute["create_time"])
    assert due == timedelta(days=10)
    assert dispute["create_time"].endswith("Z")
    self_url = f"{sim.base_url}/paypal{DISPUTES}/{dispute['dispute_id']}"
    assert links(dispute) == {
        "self": self_url,
        "provide_evidence": f"{self_url}/provide-evidence",
    }
    shown = api.get(f"{DISPUTES}/{dispute['dispute_id']}")
    assert (shown.status_code, shown.json()) == (200, dispute)
    assert answer["callback"]["event"] == "CUSTOMER.DISPUTE.CREATED"


@pytest.mark.parametrize(
    ("body", "reason", "stage", "channel"),
    [
        ({"reason": "product_not_received"}, "MERCHANDISE_OR_SERVICE_NOT_RECEIVED", "INQUIRY",
         "INTERNAL"),
        ({"reason": "MERCHANDISE_OR_SERVICE_NOT_AS_DESCRIBED"},
         "MERCHANDISE_OR_SERVICE_NOT_AS_DESCRIBED", "INQUIRY", "INTERNAL"),
        ({"reason": "fraudulent", "kind": "mediation"}, "UNAUTHORISED", "INQUIRY", "INTERNAL"),
        ({"reason": "duplicate", "kind": "chargeback"}, "DUPLICATE_TRANSACTION", "CHARGEBACK",
         "EXTERNAL"),
        ({}, "UNAUTHORISED", "CHARGEBACK", "EXTERNAL"),  # the control API's default: fraudulent
    ],
)  # fmt: skip
def test_reasons_and_kinds_in_paypal_s_words(
    paypal_sdk: PaypalServersdkClient,
    control: httpx.Client,
    body: dict[str, str],
    reason: str,
    stage: str,
    channel: str,
) -> None:
    paid(paypal_sdk, control, "pw_d_r")

    dispute = open_dispute(control, "pw_d_r", **body)["dispute"]

    assert (dispute["reason"], dispute["dispute_life_cycle_stage"]) == (reason, stage)
    assert dispute["dispute_channel"] == channel


def test_what_cannot_be_disputed(paypal_sdk: PaypalServersdkClient, control: httpx.Client) -> None:
    capture_id = paid(paypal_sdk, control, "pw_d_e")
    refund(paypal_sdk, capture_id, "3.00")
    approved = create(paypal_sdk, "create-approved", reference="pw_d_approved")
    approve(control, approved.id)

    def opening(**body: Any) -> httpx.Response:
        return control.post("/disputes", json={"reference": "pw_d_e", **body})

    assert opening(amount=751).status_code == 400  # 7.50 is left of the capture
    assert "at most 750" in opening(amount=751).json()["error"]
    assert opening(reason="not_a_reason").status_code == 400
    assert opening(kind="pix_med").status_code == 400
    assert opening(amount=750).status_code == 201
    assert opening().status_code == 409  # one open dispute per capture
    for payment_id in ("pw_d_approved", "pw_unknown"):  # not captured; never made
        missing = control.post("/disputes", json={"reference": payment_id})
        assert missing.status_code == 404, missing.text
    elsewhere = {"reference": "pw_d_e", "gateway": "stripe"}
    assert control.post("/disputes", json=elsewhere).status_code == 404


# Reading.


def test_the_list_filters_by_capture_or_creation_and_pages(
    sim: SimulatorServer,
    paypal_sdk: PaypalServersdkClient,
    control: httpx.Client,
    api: httpx.Client,
) -> None:
    captures = [paid(paypal_sdk, control, f"pw_l_{n}") for n in range(3)]
    disputes = [open_dispute(control, "pw_l_0")["dispute"]]
    time.sleep(0.002)  # start_time is read to the millisecond
    since = datetime.now(UTC).isoformat(timespec="milliseconds")
    disputes += [open_dispute(control, f"pw_l_{n}")["dispute"] for n in (1, 2)]
    ids = [dispute["dispute_id"] for dispute in disputes]

    def listed(**query: Any) -> dict[str, Any]:
        answer = api.get(DISPUTES, params=query)
        assert answer.status_code == 200, answer.text
        return dict(answer.json())

    [only] = listed(disputed_transaction_id=captures[1])["items"]
    assert only["dispute_id"] == ids[1]
    assert set(only) == SUMMARY_FIELDS
    assert links(only) == {"self": f"{sim.base_url}/paypal{DISPUTES}/{ids[1]}"}
    assert listed(disputed_transaction_id="NOPE")["items"] == []
    assert [d["dispute_id"] for d in listed()["items"]] == ids  # oldest first
    assert [d["dispute_id"] for d in listed(start_time=since)["items"]] == ids[1:]
    later = (when(disputes[2]["create_time"]) + timedelta(seconds=1)).isoformat()
    assert listed(start_time=later)["items"] == []

    first = listed(page_size=2)
    assert [d["dispute_id"] for d in first["items"]] == ids[:2]
    next_url = httpx.URL(links(first)["next"])
    rest = listed(**dict(next_url.params))
    assert [d["dispute_id"] for d in rest["items"]] == ids[2:]
    assert "next" not in links(rest)


@pytest.mark.parametrize(
    "query",
    [
        {"start_time": "2024-05-01T00:00:00Z", "disputed_transaction_id": "X"},  # not both
        {"start_time": "yesterday"},
        {"start_time": "2024-05-01T00:00:00"},  # no offset
        {"page_size": "51"},
        {"page_size": "0"},
        {"next_page_token": "not-a-token"},
    ],
)
def test_a_list_query_paypal_refuses_is_400(api: httpx.Client, query: dict[str, str]) -> None:
    answer = api.get(DISPUTES, params=query)

    assert answer.status_code == 400
    [detail] = answer.json()["details"]
    assert detail["location"] == "query"
    assert detail["field"] in query


def test_an_unknown_dispute_is_404_and_every_route_wants_a_token(
    sim: SimulatorServer, api: httpx.Client
) -> None:
    missing = api.get(f"{DISPUTES}/PP-D-404")

    assert missing.status_code == 404
    assert missing.json()["name"] == "RESOURCE_NOT_FOUND"
    assert missing.json()["details"][0]["issue"] == "INVALID_RESOURCE_ID"
    evidence = api.post(f"{DISPUTES}/PP-D-404/provide-evidence", files=evidence_form("x"))
    assert evidence.status_code == 404
    assert httpx.get(sim.base_url + "/paypal" + DISPUTES).status_code == 401


# Webhooks.


@pytest.mark.usefixtures("captured_to_webhooks")
def test_each_change_sends_a_signed_dispute_event_that_verifies(
    sim: SimulatorServer,
    paypal_sdk: PaypalServersdkClient,
    control: httpx.Client,
    api: httpx.Client,
) -> None:
    paid(paypal_sdk, control, "pw_d_w")
    opened = open_dispute(control, "pw_d_w", reason="product_not_received")
    dispute_id = opened["id"]
    answered = api.post(f"{DISPUTES}/{dispute_id}/provide-evidence", files=evidence_form("sent"))
    assert answered.status_code == 200
    closed = close(control, dispute_id, "won").json()

    deliveries = control.get("/callbacks/deliveries", params={"gateway": "paypal"}).json()
    dispute_events = [d for d in deliveries if d["event"].startswith("CUSTOMER.DISPUTE.")]
    assert [d["event"] for d in dispute_events] == [
        "CUSTOMER.DISPUTE.CREATED",
        "CUSTOMER.DISPUTE.UPDATED",
        "CUSTOMER.DISPUTE.RESOLVED",
    ]
    bodies = [json.loads(d["body"]) for d in dispute_events]
    assert len({body["id"] for body in bodies}) == 3  # one event id per change
    assert {body["resource_type"] for body in bodies} == {"dispute"}
    assert [body["resource"]["status"] for body in bodies] == [
        "WAITING_FOR_SELLER_RESPONSE",
        "UNDER_REVIEW",
        "RESOLVED",
    ]
    assert bodies[0]["resource"] == opened["dispute"]
    assert bodies[2]["resource"] == closed["dispute"]
    assert bodies[0]["summary"] == f"A new dispute opened with Case # {dispute_id}"
    for delivery, body in zip(dispute_events, bodies, strict=True):
        headers = {name.lower(): value for name, value in delivery["headers"].items()}
        assert headers["paypal-auth-algo"] == "SHA256withRSA"
        assert verify(sim, paypal_sdk, **claimed_by(headers, body)) == "SUCCESS"
    headers, event = sent_event(opened)
    event["resource"]["dispute_amount"]["value"] = "0.01"
    assert verify(sim, paypal_sdk, **claimed_by(headers, event)) == "FAILURE"


# Closing.


def test_won_leaves_the_money_and_closes_once(
    paypal_sdk: PaypalServersdkClient, control: httpx.Client, api: httpx.Client
) -> None:
    capture_id = paid(paypal_sdk, control, "pw_d_won")
    dispute_id = open_dispute(control, "pw_d_won")["id"]

    won = close(control, dispute_id, "won")

    assert won.status_code == 200, won.text
    assert (won.json()["id"], won.json()["callback"]["event"]) == (
        dispute_id,
        "CUSTOMER.DISPUTE.RESOLVED",
    )
    shown = api.get(f"{DISPUTES}/{dispute_id}").json()
    assert (shown["status"], shown["dispute_state"]) == ("RESOLVED", "RESOLVED")
    assert shown["dispute_outcome"] == {"outcome_code": "RESOLVED_SELLER_FAVOUR"}
    assert "provide_evidence" not in links(shown)
    assert close(control, dispute_id, "lost").status_code == 409
    assert close(control, "PP-D-1", "won").status_code == 404
    assert close(control, dispute_id, "maybe").status_code == 400
    capture = paypal_sdk.payments.get_captured_payment({"capture_id": capture_id}).body
    assert capture.status == "COMPLETED"
    [charge] = control.get("/charges", params={"gateway": "paypal"}).json()
    assert charge["amount_refunded"] == 0
    assert refund(paypal_sdk, capture_id, "1.00").body.status == "COMPLETED"  # closed: refundable


def test_lost_takes_the_disputed_amount_back_from_the_capture(
    paypal_sdk: PaypalServersdkClient, control: httpx.Client, api: httpx.Client
) -> None:
    capture_id = paid(paypal_sdk, control, "pw_d_lost")
    dispute_id = open_dispute(control, "pw_d_lost", amount=400)["id"]

    lost = close(control, dispute_id, "lost").json()["dispute"]

    assert lost["dispute_outcome"] == {
        "outcome_code": "RESOLVED_BUYER_FAVOUR",
        "amount_refunded": {"currency_code": "BRL", "value": "4.00"},
    }
    assert lost["disputed_transactions"][0]["transaction_status"] == "PARTIALLY_REFUNDED"
    assert api.get(f"{DISPUTES}/{dispute_id}").json() == lost
    capture = paypal_sdk.payments.get_captured_payment({"capture_id": capture_id}).body
    assert capture.status == "PARTIALLY_REFUNDED"
    [charge] = control.get("/charges", params={"gateway": "paypal"}).json()
    assert charge["amount_refunded"] == 400
    with pytest.raises(ErrorException) as raised:
        refund(paypal_sdk, capture_id, "6.51")
    assert issue_of(raised)[2] == "REFUND_AMOUNT_EXCEEDED"
    assert refund(paypal_sdk, capture_id).body.amount.value == "6.50"  # what is left
    capture = paypal_sdk.payments.get_captured_payment({"capture_id": capture_id}).body
    assert capture.status == "REFUNDED"
    assert control.get("/charges").json()[0]["amount_refunded"] == 1050
    assert control.post("/disputes", json={"reference": "pw_d_lost"}).status_code == 404


def test_a_whole_capture_lost_reads_refunded(
    paypal_sdk: PaypalServersdkClient, control: httpx.Client
) -> None:
    capture_id = paid(paypal_sdk, control, "pw_d_all")
    dispute_id = open_dispute(control, "pw_d_all")["id"]

    close(control, dispute_id, "lost")

    capture = paypal_sdk.payments.get_captured_payment({"capture_id": capture_id}).body
    assert capture.status == "REFUNDED"
    with pytest.raises(ErrorException) as raised:
        refund(paypal_sdk, capture_id, "0.01")
    assert issue_of(raised)[2] == "CAPTURE_FULLY_REFUNDED"


@pytest.mark.parametrize(
    ("reason", "issue"),
    [("fraudulent", "REFUND_NOT_PERMITTED_DUE_TO_CHARGEBACK"),
     ("product_not_received", "TRANSACTION_REFUSED")],
)  # fmt: skip
def test_no_refund_while_a_dispute_is_open(
    paypal_sdk: PaypalServersdkClient, control: httpx.Client, reason: str, issue: str
) -> None:
    capture_id = paid(paypal_sdk, control, "pw_d_ref")
    dispute_id = open_dispute(control, "pw_d_ref", reason=reason)["id"]

    with pytest.raises(ErrorException) as raised:
        refund(paypal_sdk, capture_id, "1.00")

    assert issue_of(raised) == (422, "UNPROCESSABLE_ENTITY", issue)
    assert control.get("/refunds").json() == []
    if issue == "TRANSACTION_REFUSED":
        assert dispute_id in raised.value.details[0].description


# Evidence.


def test_evidence_puts_the_dispute_under_review_once(
    sim: SimulatorServer,
    paypal_sdk: PaypalServersdkClient,
    control: httpx.Client,
    api: httpx.Client,
) -> None:
    paid(paypal_sdk, control, "pw_d_ev")
    dispute_id = open_dispute(control, "pw_d_ev")["id"]
    path = f"{DISPUTES}/{dispute_id}/provide-evidence"

    answered = api.post(path, files=evidence_form("Delivered on 2024-05-02, tracking BR123."))

    assert answered.status_code == 200, answered.text
    self_url = f"{sim.base_url}/paypal{DISPUTES}/{dispute_id}"
    assert answered.json() == {"links": [{"href": self_url, "rel": "self", "method": "GET"}]}
    shown = api.get(f"{DISPUTES}/{dispute_id}").json()
    assert (shown["status"], shown["dispute_state"]) == ("UNDER_REVIEW", "UNDER_PAYPAL_REVIEW")
    [evidence] = shown["evidences"]
    assert evidence["notes"] == "Delivered on 2024-05-02, tracking BR123."
    assert (evidence["evidence_type"], evidence["source"]) == ("OTHER", "SUBMITTED_BY_SELLER")
    assert "provide_evidence" not in links(shown)
    again = api.post(path, files=evidence_form("more"))
    assert again.status_code == 422
    assert again.json()["details"][0]["issue"] == "ACTION_NOT_ALLOWED_IN_CURRENT_DISPUTE_STATE"
    assert close(control, dispute_id, "won").json()["dispute"]["evidences"] == [evidence]


@pytest.mark.parametrize(
    ("request_options", "issue"),
    [
        ({"json": {"evidences": [{"evidence_type": "OTHER", "notes": "x"}]}},
         "INVALID_PARAMETER_SYNTAX"),  # not multipart
        ({"files": {"other": (None, "{}", "application/json")}}, "MISSING_REQUIRED_PARAMETER"),
        ({"files": {"input": (None, "{not json", "application/json")}}, "MALFORMED_REQUEST_JSON"),
        ({"files": {"input": (None, '{"evidences": []}', "application/json")}},
         "MISSING_REQUIRED_PARAMETER"),
        ({"files": evidence_form("x" * 2001)}, "INVALID_STRING_LENGTH"),
    ],
)  # fmt: skip
def test_evidence_paypal_refuses_is_400_and_changes_nothing(
    paypal_sdk: PaypalServersdkClient,
    control: httpx.Client,
    api: httpx.Client,
    request_options: dict[str, Any],
    issue: str,
) -> None:
    paid(paypal_sdk, control, "pw_d_bad")
    dispute_id = open_dispute(control, "pw_d_bad")["id"]

    answer = api.post(f"{DISPUTES}/{dispute_id}/provide-evidence", **request_options)

    assert answer.status_code == 400
    assert answer.json()["details"][0]["issue"] == issue
    assert api.get(f"{DISPUTES}/{dispute_id}").json()["status"] == "WAITING_FOR_SELLER_RESPONSE"


# State.


def test_disputes_survive_a_restart(tmp_path: Path) -> None:
    config = SimulatorConfig(hang_ms=200, state_file=str(tmp_path / "sim.sqlite3"))
    with SimulatorServer("127.0.0.1", 0, config=config) as server:
        sdk = paypal_client(server.base_url)
        with httpx.Client(base_url=server.base_url + "/_sim", timeout=10) as control:
            capture_id = paid(sdk, control, "pw_d_state")
            dispute_id = open_dispute(control, "pw_d_state", amount=500)["id"]
            close(control, dispute_id, "lost").raise_for_status()

    with SimulatorServer("127.0.0.1", 0, config=config) as server:
        sdk = paypal_client(server.base_url)
        token = sdk.oauth_2.fetch_token().access_token
        shown = httpx.get(
            f"{server.base_url}/paypal{DISPUTES}/{dispute_id}",
            headers={"Authorization": f"Bearer {token}"},
        )
        assert shown.status_code == 200
        assert shown.json()["dispute_outcome"]["outcome_code"] == "RESOLVED_BUYER_FAVOUR"
        capture = sdk.payments.get_captured_payment({"capture_id": capture_id}).body
        assert capture.status == "PARTIALLY_REFUNDED"
        assert refund(sdk, capture_id).body.amount.value == "5.50"


def test_times_are_utc_with_milliseconds(
    paypal_sdk: PaypalServersdkClient, control: httpx.Client
) -> None:
    paid(paypal_sdk, control, "pw_d_t")
    before = datetime.now(UTC) - timedelta(seconds=1)

    dispute = open_dispute(control, "pw_d_t")["dispute"]

    created = when(dispute["create_time"])
    assert before <= created <= datetime.now(UTC)
    assert len(dispute["create_time"]) == len("2024-05-01T12:00:00.000Z")
