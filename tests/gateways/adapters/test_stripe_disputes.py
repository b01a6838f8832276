"""StripeAdapter's disputes through the real stripe SDK against the Stripe simulator."""

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from gateways.adapters.stripe import StripeAdapter
from gateways.base import (
    Ambiguous,
    CallbackKind,
    ChargeNotFound,
    Declined,
    DisputeKind,
    DisputeResult,
    DisputeStatus,
    GatewayError,
    InvalidCallback,
    Retryable,
)
from gateways.credentials import SANDBOX_VALUES
from gateways.simulators import SimulatorServer
from tests.gateways.adapters.conftest import faults, requests_to
from tests.gateways.adapters.test_stripe import card, stripe_at

API_KEY = SANDBOX_VALUES["stripe"]["API_KEY"]
WEBHOOK_SECRET = SANDBOX_VALUES["stripe"]["WEBHOOK_SECRET"]
LIST_PATH = "/stripe/v1/disputes"


@pytest.fixture
def adapter(sim: SimulatorServer) -> StripeAdapter:
    return stripe_at(sim.base_url)


def paid(adapter: StripeAdapter, payment_id: str = "pw-1") -> str:
    """A succeeded card charge for 10.50 BRL; its reference (the PaymentIntent id)."""
    return adapter.charge(card(key=f"key-{payment_id}", payment_id=payment_id)).reference


def open_dispute(control: httpx.Client, payment_id: str = "pw-1", **body: Any) -> dict[str, Any]:
    answer = control.post("/disputes", json={"reference": payment_id, **body})
    assert answer.status_code == 201, answer.text
    return answer.json()


def close_dispute(control: httpx.Client, dispute_id: str, outcome: str) -> dict[str, Any]:
    answer = control.post(f"/disputes/{dispute_id}/close", json={"outcome": outcome})
    assert answer.status_code == 200, answer.text
    return answer.json()


def next_second() -> None:
    """Sleep until the clock's whole second changes (Stripe's `created` is whole seconds)."""
    started = int(time.time())
    while int(time.time()) == started:
        time.sleep(0.02)


# Reading.


def test_a_charge_has_no_disputes_then_the_one_opened(
    adapter: StripeAdapter, control: httpx.Client
) -> None:
    reference = paid(adapter)
    assert adapter.disputes(reference) == []

    opened = open_dispute(control, amount=500, reason="product_not_received")

    created = opened["dispute"]["created"]
    assert adapter.disputes(reference) == [
        DisputeResult(
            reference=opened["id"],
            charge_reference=reference,
            kind=DisputeKind.CHARGEBACK,
            status=DisputeStatus.NEEDS_RESPONSE,
            raw_status="needs_response",
            amount=500,
            currency="BRL",
            reason="product_not_received",
            evidence_due_at=datetime.fromtimestamp(created, UTC) + timedelta(days=7),
            evidence_submittable=True,
        )
    ]


def test_one_dispute_by_its_id(adapter: StripeAdapter, control: httpx.Client) -> None:
    reference = paid(adapter)
    opened = open_dispute(control)

    dispute = adapter.dispute(opened["id"])

    assert [dispute] == adapter.disputes(reference)
    assert (dispute.amount, dispute.reason) == (1050, "fraudulent")
    assert dispute.evidence_due_at is not None
    assert dispute.evidence_due_at.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    ("outcome", "status"), [("won", DisputeStatus.WON), ("lost", DisputeStatus.LOST)]
)
def test_a_closed_dispute_is_won_or_lost(
    adapter: StripeAdapter, control: httpx.Client, outcome: str, status: DisputeStatus
) -> None:
    reference = paid(adapter)
    opened = open_dispute(control)

    close_dispute(control, opened["id"], outcome)

    [dispute] = adapter.disputes(reference)
    assert (dispute.status, dispute.raw_status) == (status, outcome)
    assert dispute.evidence_submittable is False


def test_an_inquiry_needs_a_response_and_closes_won(
    adapter: StripeAdapter, control: httpx.Client
) -> None:
    paid(adapter)
    opened = open_dispute(control, kind="inquiry")
    asked = adapter.dispute(opened["id"])

    close_dispute(control, opened["id"], "won")

    assert (asked.status, asked.raw_status) == (
        DisputeStatus.NEEDS_RESPONSE,
        "warning_needs_response",
    )
    assert asked.evidence_submittable is True
    closed = adapter.dispute(opened["id"])
    assert (closed.status, closed.raw_status) == (DisputeStatus.WON, "warning_closed")


def test_an_unknown_dispute_is_charge_not_found(adapter: StripeAdapter) -> None:
    with pytest.raises(ChargeNotFound):
        adapter.dispute("dp_unknown")
    with pytest.raises(ChargeNotFound):
        adapter.submit_dispute_evidence("dp_unknown", "text")


# Listing since a moment.


def test_disputes_since_a_moment_leave_out_older_ones(
    adapter: StripeAdapter, control: httpx.Client
) -> None:
    before = datetime.now(UTC) - timedelta(seconds=1)
    paid(adapter, "pw-old")
    paid(adapter, "pw-new")
    older = open_dispute(control, "pw-old")
    next_second()
    since = datetime.now(UTC)
    newer = open_dispute(control, "pw-new")

    assert [d.reference for d in adapter.disputes_since(since)] == [newer["id"]]
    assert [d.reference for d in adapter.disputes_since(before)] == [newer["id"], older["id"]]
    assert adapter.disputes_since(since + timedelta(seconds=2)) == []


def test_disputes_since_reads_every_page(
    adapter: StripeAdapter, control: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("gateways.adapters.stripe._DISPUTES_PAGE", 2)
    opened = []
    for n in range(5):
        paid(adapter, f"pw-{n}")
        opened.append(open_dispute(control, f"pw-{n}")["id"])

    found = adapter.disputes_since(datetime.now(UTC) - timedelta(minutes=1))

    assert [d.reference for d in found] == opened[::-1]
    assert len(requests_to(control, LIST_PATH)) == 3


# Answering.


def test_submitted_evidence_puts_the_dispute_under_review(
    sim: SimulatorServer, adapter: StripeAdapter, control: httpx.Client
) -> None:
    reference = paid(adapter)
    opened = open_dispute(control)

    answered = adapter.submit_dispute_evidence(opened["id"], "Delivered on 2024-05-02, BR123")

    assert (answered.status, answered.raw_status) == (DisputeStatus.UNDER_REVIEW, "under_review")
    assert (answered.reference, answered.charge_reference) == (opened["id"], reference)
    assert answered.evidence_submittable is False
    shown = httpx.get(
        f"{sim.base_url}{LIST_PATH}/{opened['id']}",
        headers={"Authorization": f"Bearer {API_KEY}"},
    ).json()
    assert shown["evidence"]["uncategorized_text"] == "Delivered on 2024-05-02, BR123"
    assert shown["evidence_details"]["submission_count"] == 1
    # Stripe takes evidence once.
    with pytest.raises(Declined):
        adapter.submit_dispute_evidence(opened["id"], "more")


def test_evidence_for_a_closed_dispute_is_declined(
    adapter: StripeAdapter, control: httpx.Client
) -> None:
    paid(adapter)
    opened = open_dispute(control)
    close_dispute(control, opened["id"], "lost")

    with pytest.raises(Declined) as raised:
        adapter.submit_dispute_evidence(opened["id"], "too late")

    assert raised.value.http_status == 400


# Failures map as every other call's.


@pytest.mark.parametrize(("status", "expected"), [(429, Retryable), (500, Ambiguous)])
def test_a_gateway_failure_maps_as_other_calls(
    adapter: StripeAdapter,
    control: httpx.Client,
    status: int,
    expected: type[GatewayError],
) -> None:
    reference = paid(adapter)
    faults(control, "stripe", error_rate=1, error_status=status)

    with pytest.raises(GatewayError) as raised:
        adapter.disputes(reference)

    assert type(raised.value) is expected
    assert raised.value.http_status == status


# Callbacks.


def captured(control: httpx.Client) -> list[dict[str, Any]]:
    return control.get("/callbacks/deliveries", params={"gateway": "stripe"}).json()


def test_every_dispute_callback_reads_as_dispute_updated(
    adapter: StripeAdapter, control: httpx.Client
) -> None:
    target = {"url": "capture://paywave/webhooks/stripe", "secret": WEBHOOK_SECRET}
    control.put("/callbacks/stripe", json=target)
    reference = paid(adapter)
    opened = open_dispute(control)
    adapter.submit_dispute_evidence(opened["id"], "evidence")
    close_dispute(control, opened["id"], "won")

    deliveries = captured(control)
    events = [
        adapter.parse_callback(
            headers=delivery["headers"], query={}, body=delivery["body"].encode()
        )
        for delivery in deliveries
    ]

    assert [delivery["event"] for delivery in deliveries] == [
        "charge.dispute.created",
        "charge.dispute.updated",
        "charge.dispute.closed",
    ]
    for delivery, event in zip(deliveries, events, strict=True):
        assert event.kind is CallbackKind.DISPUTE_UPDATED
        assert (event.gateway, event.reference) == ("stripe", reference)
        assert event.event_id == json.loads(delivery["body"])["id"]
    assert len({event.event_id for event in events}) == 3


def test_a_forged_dispute_callback_is_refused(
    adapter: StripeAdapter, control: httpx.Client
) -> None:
    target = {"url": "capture://paywave/webhooks/stripe", "secret": "whsec_not_ours"}
    control.put("/callbacks/stripe", json=target)
    paid(adapter)
    delivery = open_dispute(control)["callback"]

    with pytest.raises(InvalidCallback):
        adapter.parse_callback(
            headers=delivery["headers"], query={}, body=delivery["body"].encode()
        )
