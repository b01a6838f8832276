"""MercadoPagoAdapter's disputes (chargebacks and mediations) through the real mercadopago
SDK against the Mercado Pago simulator, and its chargebacks notifications."""

import hashlib
import hmac
import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from gateways.adapters.mercadopago import MercadoPagoAdapter, _chargeback_status
from gateways.base import (
    Ambiguous,
    CallbackKind,
    ChargeNotFound,
    ChargeStatus,
    Declined,
    DisputeKind,
    DisputeResult,
    DisputeStatus,
    InvalidCallback,
    Retryable,
    Unsupported,
)
from gateways.credentials import SANDBOX_VALUES
from gateways.simulators import SimulatorServer
from tests.gateways.adapters.conftest import (
    SHORT_TIMEOUT,
    TIMEOUT,
    CallbackReceiver,
    Delivery,
    charge_request,
    credentials,
    faults,
)

WEBHOOK_SECRET = SANDBOX_VALUES["mercadopago"]["WEBHOOK_SECRET"]


def mercadopago_at(base_url: str, *, timeout: float = TIMEOUT) -> MercadoPagoAdapter:
    return MercadoPagoAdapter(
        code="mercadopago",
        timeout_seconds=timeout,
        credentials=credentials("mercadopago"),
        api_base=base_url + "/mercadopago",
    )


@pytest.fixture
def adapter(sim: SimulatorServer) -> MercadoPagoAdapter:
    return mercadopago_at(sim.base_url)


def paid(adapter: MercadoPagoAdapter, control: httpx.Client, payment_id: str = "pw-1") -> str:
    """A paid PIX charge for PayWave's payment `payment_id`: its Mercado Pago payment id."""
    charged = adapter.charge(charge_request(payment_id=payment_id, key=f"key-{payment_id}"))
    answer = control.post(f"/pix/{charged.reference}/pay", params={"gateway": "mercadopago"})
    assert answer.status_code == 200, answer.text
    return charged.reference


def open_dispute(control: httpx.Client, payment_id: str = "pw-1", **body: Any) -> dict[str, Any]:
    answer = control.post("/disputes", json={"reference": payment_id, **body})
    assert answer.status_code == 201, answer.text
    return answer.json()


def close(control: httpx.Client, dispute_id: str, outcome: str) -> None:
    answer = control.post(f"/disputes/{dispute_id}/close", json={"outcome": outcome})
    assert answer.status_code == 200, answer.text


# Chargebacks.


def test_a_chargeback_is_read_as_one_dispute_needing_a_response(
    adapter: MercadoPagoAdapter, control: httpx.Client
) -> None:
    reference = paid(adapter, control)
    assert adapter.disputes(reference) == []
    before = datetime.now(UTC)

    opened = open_dispute(control, amount=700, reason="fraudulent")

    [found] = adapter.disputes(reference)
    assert found == DisputeResult(
        reference=opened["id"],
        charge_reference=reference,
        kind=DisputeKind.CHARGEBACK,
        status=DisputeStatus.NEEDS_RESPONSE,
        raw_status="charged_back/in_process, documentation pending",
        amount=700,
        currency="BRL",
        reason="fraudulent",
        evidence_due_at=found.evidence_due_at,
        evidence_submittable=False,
    )
    assert found.evidence_due_at is not None
    due_in = found.evidence_due_at - before
    assert timedelta(days=10) - timedelta(seconds=5) < due_in < timedelta(days=10, seconds=5)
    assert adapter.dispute(opened["id"]) == found
    assert adapter.retrieve(reference).status is ChargeStatus.CHARGED_BACK  # mapping as it was


@pytest.mark.parametrize(
    ("outcome", "status", "raw_status"),
    [
        ("won", DisputeStatus.WON, "charged_back/reimbursed, documentation valid"),
        ("lost", DisputeStatus.LOST, "charged_back/settled, documentation invalid"),
    ],
)
def test_a_closed_chargeback_is_won_or_lost(
    adapter: MercadoPagoAdapter,
    control: httpx.Client,
    outcome: str,
    status: DisputeStatus,
    raw_status: str,
) -> None:
    reference = paid(adapter, control)
    opened = open_dispute(control)

    close(control, opened["id"], outcome)

    found = adapter.dispute(opened["id"])
    assert (found.status, found.raw_status, found.amount) == (status, raw_status, 1050)
    assert adapter.disputes(reference) == [found]


@pytest.mark.parametrize(
    ("chargeback", "payment_detail", "expected"),
    [
        ({"coverage_applied": True, "documentation_status": "valid"}, "reimbursed",
         DisputeStatus.WON),
        ({"coverage_applied": True, "documentation_status": "valid"}, "in_process",
         DisputeStatus.WON),
        ({"coverage_applied": False, "documentation_status": "valid"}, "reimbursed",
         DisputeStatus.WON),
        ({"coverage_applied": False, "documentation_status": "invalid"}, "settled",
         DisputeStatus.LOST),
        ({"coverage_applied": False, "documentation_status": "not_supplied"}, "settled",
         DisputeStatus.LOST),
        ({"coverage_applied": False, "documentation_status": "review_pending"}, "in_process",
         DisputeStatus.UNDER_REVIEW),
        ({"coverage_applied": False, "documentation_status": "pending"}, "in_process",
         DisputeStatus.NEEDS_RESPONSE),
        ({"coverage_applied": False, "documentation_status": "invalid"}, "in_process",
         DisputeStatus.NEEDS_RESPONSE),
        ({}, "", DisputeStatus.NEEDS_RESPONSE),
    ],
)  # fmt: skip
def test_chargeback_status_mapping(
    chargeback: dict[str, Any], payment_detail: str, expected: DisputeStatus
) -> None:
    """Including review_pending, which the simulator's control API never sets."""
    assert _chargeback_status(chargeback, payment_detail) is expected


def test_a_charged_back_payment_cannot_be_refunded(
    adapter: MercadoPagoAdapter, control: httpx.Client
) -> None:
    reference = paid(adapter, control)
    open_dispute(control)

    with pytest.raises(Declined) as refused:
        adapter.refund(reference=reference, amount=100, idempotency_key="refund-1")

    assert refused.value.http_status == 400


# Mediations.


def test_a_mediation_is_read_from_its_payment(
    adapter: MercadoPagoAdapter, control: httpx.Client
) -> None:
    reference = paid(adapter, control)
    adapter.refund(reference=reference, amount=50, idempotency_key="refund-1")

    open_dispute(control, kind="mediation")

    expected = DisputeResult(
        reference=f"mediation-{reference}",
        charge_reference=reference,
        kind=DisputeKind.MEDIATION,
        status=DisputeStatus.NEEDS_RESPONSE,
        raw_status="in_mediation/partially_refunded",
        amount=1000,
        currency="BRL",
    )
    assert adapter.disputes(reference) == [expected]
    assert adapter.dispute(f"mediation-{reference}") == expected
    assert adapter.retrieve(reference).status is ChargeStatus.IN_DISPUTE


def test_a_mediation_won_reads_won_by_its_id(
    adapter: MercadoPagoAdapter, control: httpx.Client
) -> None:
    reference = paid(adapter, control)
    opened = open_dispute(control, kind="mediation")

    close(control, opened["id"], "won")

    found = adapter.dispute(opened["id"])
    assert (found.status, found.raw_status, found.amount) == (
        DisputeStatus.WON,
        "approved/accredited",
        1050,
    )
    # An approved payment does not tell it was ever mediated: only its id finds it.
    assert adapter.disputes(reference) == []


def test_a_mediation_lost_reads_lost_by_its_id_and_among_the_payment_s_disputes(
    adapter: MercadoPagoAdapter, control: httpx.Client
) -> None:
    reference = paid(adapter, control)
    opened = open_dispute(control, kind="mediation")

    close(control, opened["id"], "lost")

    found = adapter.dispute(opened["id"])
    assert (found.status, found.raw_status, found.amount) == (
        DisputeStatus.LOST,
        "refunded/bpp_refunded",
        1050,
    )
    assert adapter.disputes(reference) == [found]
    assert adapter.retrieve(reference).status is ChargeStatus.REFUNDED


# Polling.


def test_disputes_since_finds_the_payments_disputed_or_decided_since(
    adapter: MercadoPagoAdapter, control: httpx.Client
) -> None:
    paid(adapter, control, "pw-early")
    early = open_dispute(control, "pw-early")
    time.sleep(0.01)
    since = datetime.now(UTC)
    paid(adapter, control, "pw-chargeback")
    chargeback = open_dispute(control, "pw-chargeback")
    paid(adapter, control, "pw-mediation")
    mediation = open_dispute(control, "pw-mediation", kind="mediation")
    paid(adapter, control, "pw-lost")
    lost = open_dispute(control, "pw-lost", kind="mediation")
    close(control, lost["id"], "lost")
    paid(adapter, control, "pw-approved")
    refunded = paid(adapter, control, "pw-refunded")  # by the merchant: no dispute
    adapter.refund(reference=refunded, amount=1050, idempotency_key="refund-1")

    found = adapter.disputes_since(since)

    assert {(d.reference, d.status) for d in found} == {
        (chargeback["id"], DisputeStatus.NEEDS_RESPONSE),
        (mediation["id"], DisputeStatus.NEEDS_RESPONSE),
        (lost["id"], DisputeStatus.LOST),
    }
    earlier = adapter.disputes_since(since - timedelta(minutes=1))
    assert early["id"] in {d.reference for d in earlier}
    assert len(earlier) == 4


def test_disputes_since_reads_every_page(
    adapter: MercadoPagoAdapter, control: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("gateways.adapters.mercadopago.SEARCH_PAGE", 2)
    since = datetime.now(UTC)
    opened = set()
    for n in range(5):
        paid(adapter, control, f"pw-{n}")
        opened.add(open_dispute(control, f"pw-{n}")["id"])

    found = adapter.disputes_since(since)

    assert {d.reference for d in found} == opened
    assert len(found) == 5


# What Mercado Pago does not offer, or does not know.


def test_evidence_cannot_be_sent_through_the_api(
    adapter: MercadoPagoAdapter, control: httpx.Client
) -> None:
    paid(adapter, control)
    opened = open_dispute(control)

    with pytest.raises(Unsupported):
        adapter.submit_dispute_evidence(opened["id"], "The payer received the goods.")

    assert adapter.dispute(opened["id"]).status is DisputeStatus.NEEDS_RESPONSE


@pytest.mark.parametrize(
    "dispute_id", ["233300000000999999", "search", "not-a-chargeback", "mediation-1", "mediation-"]
)
def test_an_unknown_dispute_is_charge_not_found(
    adapter: MercadoPagoAdapter, dispute_id: str
) -> None:
    with pytest.raises(ChargeNotFound):
        adapter.dispute(dispute_id)


def test_a_payment_never_paid_has_no_mediation(
    adapter: MercadoPagoAdapter, control: httpx.Client
) -> None:
    pending = adapter.charge(charge_request())

    with pytest.raises(ChargeNotFound):
        adapter.dispute(f"mediation-{pending.reference}")
    assert adapter.disputes(pending.reference) == []


def test_disputes_of_an_unknown_payment_is_charge_not_found(adapter: MercadoPagoAdapter) -> None:
    with pytest.raises(ChargeNotFound):
        adapter.disputes("999")


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({"error_rate": 1, "error_status": 503}, Retryable),
        ({"error_rate": 1, "error_status": 500}, Ambiguous),
        ({"timeout_rate": 1}, Ambiguous),
    ],
)
def test_gateway_failures_map_as_for_payments(
    sim: SimulatorServer,
    control: httpx.Client,
    settings: dict[str, Any],
    expected: type[Exception],
) -> None:
    adapter = mercadopago_at(sim.base_url, timeout=SHORT_TIMEOUT)
    paid(adapter, control)
    opened = open_dispute(control)
    faults(control, "mercadopago", **settings)

    with pytest.raises(expected):
        adapter.dispute(opened["id"])


# Notifications.


@pytest.fixture
def chargeback_notification(
    adapter: MercadoPagoAdapter, control: httpx.Client, receiver: CallbackReceiver
) -> tuple[Delivery, str, str]:
    """The real notification of a chargeback opened, its id and its payment's."""
    reference = paid(adapter, control)
    control.put("/callbacks/mercadopago", json={"url": receiver.url + "/callbacks/mercadopago"})
    opened = open_dispute(control)
    assert opened["callback"]["delivered"] is True
    return receiver.only(), opened["id"], reference


def test_a_chargeback_notification_is_a_dispute_update_of_its_payment(
    adapter: MercadoPagoAdapter, chargeback_notification: tuple[Delivery, str, str]
) -> None:
    delivered, chargeback_id, reference = chargeback_notification

    event = adapter.parse_callback(
        headers=delivered.headers, query=delivered.query, body=delivered.body
    )

    body = json.loads(delivered.body)
    assert delivered.query == {"data.id": chargeback_id, "type": "topic_chargebacks_wh"}
    assert event.kind is CallbackKind.DISPUTE_UPDATED
    assert (event.gateway, event.reference, event.payment_id) == ("mercadopago", reference, "")
    assert event.event_id == str(body["id"])
    assert event.raw == body
    assert adapter.disputes(event.reference)[0].reference == chargeback_id


def test_a_closed_chargeback_notifies_again_with_another_event_id(
    adapter: MercadoPagoAdapter,
    control: httpx.Client,
    receiver: CallbackReceiver,
    chargeback_notification: tuple[Delivery, str, str],
) -> None:
    delivered, chargeback_id, reference = chargeback_notification

    close(control, chargeback_id, "won")

    changed = receiver.deliveries[-1]
    event = adapter.parse_callback(headers=changed.headers, query=changed.query, body=changed.body)
    first = adapter.parse_callback(
        headers=delivered.headers, query=delivered.query, body=delivered.body
    )
    assert (event.kind, event.reference) == (CallbackKind.DISPUTE_UPDATED, reference)
    assert event.event_id != first.event_id


def test_the_topic_in_the_body_is_enough(
    adapter: MercadoPagoAdapter, chargeback_notification: tuple[Delivery, str, str]
) -> None:
    delivered, chargeback_id, reference = chargeback_notification

    event = adapter.parse_callback(
        headers=delivered.headers, query={"data.id": chargeback_id}, body=delivered.body
    )

    assert (event.kind, event.reference) == (CallbackKind.DISPUTE_UPDATED, reference)


def _signed(data_id: str, *, secret: str) -> dict[str, str]:
    request_id, now = str(uuid.uuid4()), int(time.time())
    manifest = f"id:{data_id};request-id:{request_id};ts:{now};"
    digest = hmac.new(secret.encode(), manifest.encode(), hashlib.sha256).hexdigest()
    return {"x-signature": f"ts={now},v1={digest}", "x-request-id": request_id}


@pytest.mark.parametrize("why", ["forged signature", "signed over the payment id"])
def test_a_forged_chargeback_notification_is_refused(
    adapter: MercadoPagoAdapter, chargeback_notification: tuple[Delivery, str, str], why: str
) -> None:
    delivered, chargeback_id, reference = chargeback_notification
    headers = {
        "forged signature": _signed(chargeback_id, secret="guess"),
        "signed over the payment id": _signed(reference, secret=WEBHOOK_SECRET),
    }[why]

    with pytest.raises(InvalidCallback):
        adapter.parse_callback(headers=headers, query=delivered.query, body=delivered.body)


def test_a_mediation_notifies_as_a_payment_update(
    adapter: MercadoPagoAdapter, control: httpx.Client, receiver: CallbackReceiver
) -> None:
    reference = paid(adapter, control)
    control.put("/callbacks/mercadopago", json={"url": receiver.url})
    open_dispute(control, kind="mediation")

    delivered = receiver.only()
    event = adapter.parse_callback(
        headers=delivered.headers, query=delivered.query, body=delivered.body
    )

    assert (event.kind, event.reference) == (CallbackKind.PAYMENT_UPDATED, reference)
    assert adapter.disputes(event.reference)[0].kind is DisputeKind.MEDIATION
