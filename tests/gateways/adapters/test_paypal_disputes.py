"""PayPalAdapter's disputes: the Disputes API v1 over plain HTTP with the SDK's token,
against the PayPal simulator; disputes opened and closed through its control API."""

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from gateways.adapters._common import header
from gateways.adapters.paypal import PayPalAdapter
from gateways.base import (
    Ambiguous,
    CallbackKind,
    ChargeNotFound,
    ChargeStatus,
    Declined,
    DisputeKind,
    DisputeStatus,
    GatewayError,
    InvalidCallback,
    Retryable,
)
from gateways.simulators import SimulatorServer
from tests.gateways.adapters.conftest import (
    SHORT_TIMEOUT,
    CallbackReceiver,
    faults,
    requests_to,
)
from tests.gateways.adapters.test_paypal import (
    TOKEN_PATH,
    captured,
    event_of,
    paypal_at,
    with_token,
)

DISPUTES_PATH = "/paypal/v1/customer/disputes"


@pytest.fixture
def adapter(sim: SimulatorServer) -> PayPalAdapter:
    return paypal_at(sim.base_url)


@pytest.fixture
def hooked(control: httpx.Client, receiver: CallbackReceiver) -> CallbackReceiver:
    answer = control.put("/callbacks/paypal", json={"url": receiver.url + "/webhooks/paypal"})
    assert answer.status_code == 200, answer.text
    return receiver


def paid(adapter: PayPalAdapter, control: httpx.Client, payment_id: str) -> str:
    """A captured order for PayWave's payment `payment_id`: the order id."""
    return captured(adapter, control, payment_id=payment_id, key=f"key-{payment_id}").reference


def open_dispute(control: httpx.Client, payment_id: str, **body: Any) -> dict[str, Any]:
    answer = control.post("/disputes", json={"reference": payment_id, **body})
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


def close(control: httpx.Client, dispute_id: str, outcome: str) -> None:
    answer = control.post(f"/disputes/{dispute_id}/close", json={"outcome": outcome})
    assert answer.status_code == 200, answer.text


def when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


# Reading.


def test_an_order_has_no_dispute_until_one_is_opened(
    adapter: PayPalAdapter, control: httpx.Client
) -> None:
    order_id = paid(adapter, control, "pw-d1")
    assert adapter.disputes(order_id) == []

    opened = open_dispute(control, "pw-d1", amount=500, reason="fraudulent")

    [dispute] = adapter.disputes(order_id)
    assert (dispute.reference, dispute.charge_reference) == (opened["id"], order_id)
    assert (dispute.kind, dispute.status) == (DisputeKind.CHARGEBACK, DisputeStatus.NEEDS_RESPONSE)
    assert dispute.raw_status == "WAITING_FOR_SELLER_RESPONSE"
    assert (dispute.amount, dispute.currency, dispute.reason) == (500, "BRL", "UNAUTHORISED")
    assert dispute.evidence_due_at == when(opened["dispute"]["seller_response_due_date"])
    assert dispute.evidence_due_at is not None
    assert dispute.evidence_due_at - datetime.now(UTC) > timedelta(days=9)
    assert dispute.evidence_submittable is True
    assert len(requests_to(control, DISPUTES_PATH)) == 2  # listed by capture, before and after


def test_a_dispute_by_its_id_names_the_order_of_its_capture(
    adapter: PayPalAdapter, control: httpx.Client
) -> None:
    order_id = paid(adapter, control, "pw-d2")
    opened = open_dispute(control, "pw-d2", reason="product_not_received")

    dispute = adapter.dispute(opened["id"])

    assert dispute == adapter.disputes(order_id)[0]
    assert (dispute.charge_reference, dispute.kind) == (order_id, DisputeKind.MEDIATION)
    assert (dispute.reason, dispute.amount) == ("MERCHANDISE_OR_SERVICE_NOT_RECEIVED", 1050)


@pytest.mark.parametrize("reference", ["PP-D-404", "", "PP-D-1/provide-evidence"])
def test_an_unknown_dispute_is_charge_not_found(adapter: PayPalAdapter, reference: str) -> None:
    with pytest.raises(ChargeNotFound):
        adapter.dispute(reference)


def test_the_disputes_of_an_unknown_order_are_charge_not_found(adapter: PayPalAdapter) -> None:
    with pytest.raises(ChargeNotFound):
        adapter.disputes("NOSUCHORDER")


# Closing.


def test_won_and_lost_are_paywave_s_words_and_lost_refunds_the_order(
    adapter: PayPalAdapter, control: httpx.Client
) -> None:
    kept, taken = paid(adapter, control, "pw-won"), paid(adapter, control, "pw-lost")
    won_id = open_dispute(control, "pw-won")["id"]
    lost_id = open_dispute(control, "pw-lost")["id"]

    close(control, won_id, "won")
    close(control, lost_id, "lost")

    [won] = adapter.disputes(kept)
    [lost] = adapter.disputes(taken)
    assert (won.status, won.raw_status) == (DisputeStatus.WON, "RESOLVED/RESOLVED_SELLER_FAVOUR")
    assert (lost.status, lost.raw_status) == (
        DisputeStatus.LOST,
        "RESOLVED/RESOLVED_BUYER_FAVOUR",
    )
    assert not won.evidence_submittable
    assert adapter.retrieve(kept).status is ChargeStatus.SUCCEEDED
    assert adapter.retrieve(taken).status is ChargeStatus.REFUNDED


def test_a_refund_while_a_chargeback_is_open_is_declined(
    adapter: PayPalAdapter, control: httpx.Client
) -> None:
    order_id = paid(adapter, control, "pw-d-refund")
    open_dispute(control, "pw-d-refund", reason="fraudulent")

    with pytest.raises(Declined) as raised:
        adapter.refund(reference=order_id, amount=100, idempotency_key="rf-1")

    assert raised.value.code == "REFUND_NOT_PERMITTED_DUE_TO_CHARGEBACK"
    assert raised.value.http_status == 422


# Polling.


def test_disputes_since_finds_those_opened_at_or_after_it(
    adapter: PayPalAdapter, control: httpx.Client
) -> None:
    before_id = paid(adapter, control, "pw-s1")
    after_id = paid(adapter, control, "pw-s2")
    earlier = open_dispute(control, "pw-s1")["id"]
    time.sleep(0.002)  # PayPal's start_time is read to the millisecond
    since = datetime.now(UTC)
    later = open_dispute(control, "pw-s2")["id"]

    found = adapter.disputes_since(since)
    everything = adapter.disputes_since(since - timedelta(hours=1))

    assert [(d.reference, d.charge_reference) for d in found] == [(later, after_id)]
    assert {(d.reference, d.charge_reference) for d in everything} == {
        (earlier, before_id),
        (later, after_id),
    }
    assert adapter.disputes_since(datetime.now(UTC) + timedelta(seconds=1)) == []


def test_disputes_since_reads_every_page(
    adapter: PayPalAdapter, control: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("gateways.adapters.paypal.DISPUTES_PAGE_SIZE", 2)
    since = datetime.now(UTC) - timedelta(minutes=1)
    opened = set()
    for n in range(3):
        paid(adapter, control, f"pw-p{n}")
        opened.add(open_dispute(control, f"pw-p{n}")["id"])

    found = adapter.disputes_since(since)

    assert {dispute.reference for dispute in found} == opened
    assert len(requests_to(control, DISPUTES_PATH)) == 2  # two pages (details: other paths)


def test_a_token_paypal_forgot_is_replaced_once(
    adapter: PayPalAdapter, control: httpx.Client
) -> None:
    with_token(adapter)
    assert control.post("/reset").status_code == 200  # the simulator forgets its tokens

    assert adapter.disputes_since(datetime.now(UTC) - timedelta(days=1)) == []

    assert len(requests_to(control, TOKEN_PATH)) == 1
    assert [r["status"] for r in requests_to(control, DISPUTES_PATH)] == [401, 200]


# Evidence.


def test_evidence_puts_the_dispute_under_review_with_the_text(
    adapter: PayPalAdapter, control: httpx.Client
) -> None:
    paid(adapter, control, "pw-ev")
    dispute_id = open_dispute(control, "pw-ev", reason="product_not_received")["id"]

    answered = adapter.submit_dispute_evidence(dispute_id, "Delivered 2024-05-02 (BR123).")

    assert (answered.reference, answered.status) == (dispute_id, DisputeStatus.UNDER_REVIEW)
    assert (answered.raw_status, answered.evidence_submittable) == ("UNDER_REVIEW", False)
    [evidence] = adapter._dispute_details(dispute_id)["evidences"]
    assert (evidence["evidence_type"], evidence["notes"]) == (
        "OTHER",
        "Delivered 2024-05-02 (BR123).",
    )
    with pytest.raises(Declined) as raised:
        adapter.submit_dispute_evidence(dispute_id, "again")
    assert raised.value.code == "ACTION_NOT_ALLOWED_IN_CURRENT_DISPUTE_STATE"
    with pytest.raises(ChargeNotFound):
        adapter.submit_dispute_evidence("PP-D-404", "anything")


# Failures.


@pytest.mark.parametrize(
    ("fault", "expected"),
    [({"error_rate": 1, "error_status": 503}, Retryable), ({"timeout_rate": 1}, Ambiguous),
     ({"error_rate": 1}, Ambiguous)],
)  # fmt: skip
def test_a_failed_dispute_read_is_mapped_as_every_call(
    sim: SimulatorServer,
    adapter: PayPalAdapter,
    control: httpx.Client,
    fault: dict[str, Any],
    expected: type[GatewayError],
) -> None:
    impatient = paypal_at(sim.base_url, timeout=SHORT_TIMEOUT)  # for the hang
    paid(impatient, control, "pw-f")  # its token is taken before the faults
    dispute_id = open_dispute(control, "pw-f")["id"]
    faults(control, "paypal", **fault)

    with pytest.raises(GatewayError) as raised:
        impatient.dispute(dispute_id)

    assert type(raised.value) is expected
    control.delete("/faults")
    # Read again without the short timeout: what is tested is that the fault is gone,
    # not how fast a busy machine answers two reads.
    assert adapter.dispute(dispute_id).reference == dispute_id


# Callbacks.


def test_dispute_callbacks_name_the_capture_and_the_payment(
    adapter: PayPalAdapter, control: httpx.Client, hooked: CallbackReceiver
) -> None:
    done = captured(adapter, control, payment_id="pw-cb", key="key-cb")
    dispute_id = open_dispute(control, "pw-cb", amount=300)["id"]
    adapter.submit_dispute_evidence(dispute_id, "see attached")
    close(control, dispute_id, "won")
    deliveries = hooked.deliveries[2:]  # after the order's approval and capture

    events = [
        adapter.parse_callback(headers=delivery.headers, query={}, body=delivery.body)
        for delivery in deliveries
    ]

    assert [event_of(delivery)["event_type"] for delivery in deliveries] == [
        "CUSTOMER.DISPUTE.CREATED",
        "CUSTOMER.DISPUTE.UPDATED",
        "CUSTOMER.DISPUTE.RESOLVED",
    ]
    for event, delivery in zip(events, deliveries, strict=True):
        assert event.kind is CallbackKind.DISPUTE_UPDATED
        assert (event.gateway, event.reference, event.payment_id) == (
            "paypal",
            done.capture_reference,
            "pw-cb",
        )
        assert (event.event_id, event.amount) == (event_of(delivery)["id"], 300)
    assert len({event.event_id for event in events}) == 3
    assert len(requests_to(control, "/paypal/v1/notifications/verify-webhook-signature")) == 3


def test_a_forged_dispute_callback_is_refused(
    adapter: PayPalAdapter, control: httpx.Client, hooked: CallbackReceiver
) -> None:
    paid(adapter, control, "pw-forged")
    dispute_id = open_dispute(control, "pw-forged")["id"]
    delivery = hooked.deliveries[-1]
    assert header(delivery.headers, "PAYPAL-TRANSMISSION-SIG")
    forged = delivery.body.replace(dispute_id.encode(), b"PP-D-999")
    assert forged != delivery.body

    with pytest.raises(InvalidCallback):
        adapter.parse_callback(headers=delivery.headers, query={}, body=forged)
