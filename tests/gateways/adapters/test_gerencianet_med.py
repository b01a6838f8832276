"""GerencianetAdapter's disputes (PIX MED infractions) through the real gerencianet SDK,
its endpoint table extended with Efí's MED endpoints, against the Efí simulator."""

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from gerencianet import Gerencianet
from gerencianet.constants import Constants

from gateways.adapters import gerencianet as gerencianet_module
from gateways.adapters.gerencianet import GerencianetAdapter
from gateways.base import (
    Ambiguous,
    CallbackKind,
    ChargeNotFound,
    Declined,
    DisputeKind,
    DisputeStatus,
    GatewayError,
    InvalidCallback,
    Retryable,
)
from gateways.simulators import SimulatorServer
from gateways.simulators.config import (
    SANDBOX_GERENCIANET_CLIENT_ID,
    SANDBOX_GERENCIANET_CLIENT_SECRET,
)
from tests.gateways.adapters.conftest import (
    CallbackReceiver,
    charge_request,
    faults,
    requests_to,
)
from tests.gateways.adapters.test_gerencianet import OAUTH_PATH, WEBHOOK_SECRET, gerencianet_at, pay

MED_PATH = "/gerencianet/v2/gn/infracoes"


@pytest.fixture
def adapter(sim: SimulatorServer) -> GerencianetAdapter:
    return gerencianet_at(sim.base_url)


def paid_charge(
    adapter: GerencianetAdapter, control: httpx.Client, payment_id: str = "pw-1"
) -> str:
    """A PIX charge of 10.50 for `payment_id`, paid; its txid."""
    charged = adapter.charge(charge_request(key=f"key-{payment_id}", payment_id=payment_id))
    pay(control, charged.reference)
    return charged.reference


def open_dispute(control: httpx.Client, payment_id: str = "pw-1", **body: Any) -> dict[str, Any]:
    answer = control.post("/disputes", json={"reference": payment_id, **body})
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


def close(control: httpx.Client, dispute_id: str, outcome: str) -> dict[str, Any]:
    answer = control.post(f"/disputes/{dispute_id}/close", json={"outcome": outcome})
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def sdk_for(sim: SimulatorServer, monkeypatch: pytest.MonkeyPatch) -> Gerencianet:
    """The bare SDK at the simulator: the adapter's import gave it `med_list`, `med_defense`."""
    monkeypatch.setitem(Constants.APIS["PIX"]["URL"], "sandbox", sim.base_url + "/gerencianet")
    options = {"client_id": SANDBOX_GERENCIANET_CLIENT_ID, "sandbox": True,
               "client_secret": SANDBOX_GERENCIANET_CLIENT_SECRET, "certificate": None}  # fmt: skip
    return Gerencianet(options)


# Reading.


def test_a_paid_charge_has_no_dispute_until_one_is_opened(
    adapter: GerencianetAdapter, control: httpx.Client
) -> None:
    txid = paid_charge(adapter, control)
    assert adapter.disputes(txid) == []
    before = datetime.now(UTC)

    opened = open_dispute(control, reason="fraude")

    [dispute] = adapter.disputes(txid)
    assert dispute.reference == opened["id"]
    assert (dispute.charge_reference, dispute.kind) == (txid, DisputeKind.PIX_MED)
    assert (dispute.status, dispute.raw_status) == (DisputeStatus.NEEDS_RESPONSE, "ABERTA")
    assert (dispute.amount, dispute.currency, dispute.reason) == (1050, "BRL", "fraude")
    assert dispute.evidence_submittable is True
    assert dispute.evidence_due_at is not None
    due = before + timedelta(days=7)
    assert due - timedelta(seconds=5) < dispute.evidence_due_at < due + timedelta(seconds=5)
    assert adapter.dispute(opened["id"]) == dispute


def test_an_unpaid_charge_has_no_dispute_and_is_not_listed_for(
    adapter: GerencianetAdapter, control: httpx.Client
) -> None:
    charged = adapter.charge(charge_request())

    assert adapter.disputes(charged.reference) == []
    assert requests_to(control, MED_PATH) == []


def test_disputes_are_those_on_the_charges_own_pix(
    adapter: GerencianetAdapter, control: httpx.Client
) -> None:
    first, second = paid_charge(adapter, control, "pw-1"), paid_charge(adapter, control, "pw-2")
    on_second = open_dispute(control, "pw-2", amount=300)

    assert adapter.disputes(first) == []
    assert [(d.reference, d.amount) for d in adapter.disputes(second)] == [(on_second["id"], 300)]


def test_disputes_of_an_unknown_charge_is_charge_not_found(adapter: GerencianetAdapter) -> None:
    with pytest.raises(ChargeNotFound):
        adapter.disputes("PayWaveNeverCharged0000000000001")


def test_an_unknown_dispute_is_charge_not_found(
    adapter: GerencianetAdapter, control: httpx.Client
) -> None:
    paid_charge(adapter, control)
    open_dispute(control)

    with pytest.raises(ChargeNotFound):
        adapter.dispute("00000000-0000-4000-8000-000000000000")


@pytest.mark.parametrize(
    ("outcome", "status", "raw"),
    [("won", DisputeStatus.WON, "REJEITADA"), ("lost", DisputeStatus.LOST, "ACEITA")],
)
def test_a_closed_dispute_reads_won_or_lost(
    adapter: GerencianetAdapter,
    control: httpx.Client,
    outcome: str,
    status: DisputeStatus,
    raw: str,
) -> None:
    txid = paid_charge(adapter, control)
    opened = open_dispute(control)

    close(control, opened["id"], outcome)

    [dispute] = adapter.disputes(txid)
    assert (dispute.status, dispute.raw_status) == (status, raw)
    assert dispute.evidence_submittable is False
    assert adapter.dispute(opened["id"]) == dispute


def test_a_lost_dispute_leaves_only_the_rest_to_refund(
    adapter: GerencianetAdapter, control: httpx.Client
) -> None:
    txid = paid_charge(adapter, control)
    close(control, open_dispute(control, amount=1000)["id"], "lost")

    with pytest.raises(Declined):
        adapter.refund(reference=txid, amount=51, idempotency_key="rf-over")
    rest = adapter.refund(reference=txid, amount=50, idempotency_key="rf-rest")

    assert rest.amount == 50


def test_an_open_dispute_blocks_its_amount_from_refunds(
    adapter: GerencianetAdapter, control: httpx.Client
) -> None:
    txid = paid_charge(adapter, control)
    open_dispute(control, amount=1000)

    with pytest.raises(Declined) as refused:
        adapter.refund(reference=txid, amount=51, idempotency_key="rf-blocked")

    assert refused.value.http_status == 400


def test_disputes_since_finds_those_opened_or_changed_after(
    adapter: GerencianetAdapter, control: httpx.Client
) -> None:
    paid_charge(adapter, control, "pw-1")
    paid_charge(adapter, control, "pw-2")
    earlier = open_dispute(control, "pw-1")
    time.sleep(0.01)
    since = datetime.now(UTC)
    time.sleep(0.01)

    later = open_dispute(control, "pw-2")

    assert [d.reference for d in adapter.disputes_since(since)] == [later["id"]]
    close(control, earlier["id"], "won")  # changed after `since`: listed again
    found = {d.reference: d.status for d in adapter.disputes_since(since)}
    assert found == {earlier["id"]: DisputeStatus.WON, later["id"]: DisputeStatus.NEEDS_RESPONSE}
    assert adapter.disputes_since(datetime.now(UTC) + timedelta(seconds=1)) == []


def test_every_page_is_read(
    adapter: GerencianetAdapter, control: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(gerencianet_module, "MED_PAGE_SIZE", 2)
    opened = []
    for n in range(5):
        paid_charge(adapter, control, f"pw-{n}")
        opened.append(open_dispute(control, f"pw-{n}")["id"])

    found = adapter.disputes_since(datetime.now(UTC) - timedelta(minutes=1))

    assert [d.reference for d in found] == opened
    assert len(requests_to(control, MED_PATH)) == 3


# Answering.


def test_evidence_contests_the_infraction(
    adapter: GerencianetAdapter,
    control: httpx.Client,
    sim: SimulatorServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    txid = paid_charge(adapter, control)
    opened = open_dispute(control)

    answered = adapter.submit_dispute_evidence(opened["id"], "Pedido entregue em 02/05.")

    assert answered.reference == opened["id"]
    assert (answered.status, answered.raw_status) == (DisputeStatus.UNDER_REVIEW, "EM_ANALISE")
    assert answered.evidence_submittable is False
    assert adapter.disputes(txid) == [answered]
    # The PSP decides later; the merchant cannot answer twice.
    with pytest.raises(Declined) as refused:
        adapter.submit_dispute_evidence(opened["id"], "de novo")
    assert (refused.value.http_status, refused.value.code) == (400, "infracao_nao_permite_defesa")
    assert "EM_ANALISE" in refused.value.gateway_message
    assert len(requests_to(control, OAUTH_PATH)) == 1  # one token for every call
    # What the simulator keeps of the answer, through the bare SDK's med_list.
    now = datetime.now(UTC)
    window = {"inicio": (now - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
              "fim": (now + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")}  # fmt: skip
    [infraction] = sdk_for(sim, monkeypatch).med_list(params=window)["infracoes"]
    assert infraction["defesa"]["analise"] == "rejeitado"
    assert infraction["defesa"]["justificativa"] == "Pedido entregue em 02/05."


def test_evidence_for_a_closed_dispute_is_declined(
    adapter: GerencianetAdapter, control: httpx.Client
) -> None:
    paid_charge(adapter, control)
    opened = open_dispute(control)
    close(control, opened["id"], "won")

    with pytest.raises(Declined):
        adapter.submit_dispute_evidence(opened["id"], "tarde demais")


def test_evidence_for_an_unknown_dispute_is_charge_not_found(adapter: GerencianetAdapter) -> None:
    with pytest.raises(ChargeNotFound) as raised:
        adapter.submit_dispute_evidence("00000000-0000-4000-8000-000000000000", "x")

    assert (raised.value.http_status, raised.value.code) == (404, "infracao_nao_encontrada")


def test_an_id_that_is_not_a_path_segment_stays_one(adapter: GerencianetAdapter) -> None:
    with pytest.raises(ChargeNotFound):
        adapter.submit_dispute_evidence("../../cob/x?y=", "x")


# Faults.


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({"error_rate": 1, "error_status": 503}, Retryable),
        ({"error_rate": 1, "error_status": 500}, Ambiguous),
    ],
    ids=["503", "500"],
)
def test_a_fault_maps_as_the_other_calls(
    adapter: GerencianetAdapter,
    control: httpx.Client,
    settings: dict[str, Any],
    expected: type[GatewayError],
) -> None:
    paid_charge(adapter, control)
    dispute_id = open_dispute(control)["id"]
    faults(control, "gerencianet", **settings)

    for call in (
        lambda: adapter.dispute(dispute_id),
        lambda: adapter.disputes_since(datetime.now(UTC)),
        lambda: adapter.submit_dispute_evidence(dispute_id, "x"),
    ):
        with pytest.raises(GatewayError) as raised:
            call()
        assert type(raised.value) is expected
        assert raised.value.http_status == settings["error_status"]


# Callbacks.


def deliveries(
    adapter: GerencianetAdapter, control: httpx.Client, receiver: CallbackReceiver
) -> tuple[str, str]:
    """Pay, open and close a dispute with callbacks to the receiver: (txid, dispute id)."""
    control.put("/callbacks/gerencianet", json={"url": receiver.url + "/callbacks/gerencianet"})
    txid = paid_charge(adapter, control)
    opened = open_dispute(control)
    close(control, opened["id"], "lost")
    return txid, opened["id"]


def test_a_real_dispute_callback_is_a_dispute_update(
    adapter: GerencianetAdapter, control: httpx.Client, receiver: CallbackReceiver
) -> None:
    txid, dispute_id = deliveries(adapter, control, receiver)
    payment, opened, closed = receiver.deliveries

    events = [
        adapter.parse_callback(headers=d.headers, query=d.query, body=d.body)
        for d in (opened, closed)
    ]

    assert opened.query == {"hmac": WEBHOOK_SECRET, "ignorar": "/pix"}
    for event, delivery in zip(events, (opened, closed), strict=True):
        infraction = json.loads(delivery.body)["infracoes"][0]
        assert event.kind is CallbackKind.DISPUTE_UPDATED
        assert (event.gateway, event.reference, event.txid) == ("gerencianet", txid, txid)
        assert event.event_id == (
            f"med:{dispute_id}:{infraction['situacao']}:{infraction['atualizacao']}"
        )
        assert event.amount == 1050
    assert events[0].event_id != events[1].event_id
    # The payment's notification is still read as before.
    paid = adapter.parse_callback(headers=payment.headers, query=payment.query, body=payment.body)
    assert paid.kind is CallbackKind.PAYMENT_UPDATED


def test_a_redelivered_dispute_callback_is_the_same_event(
    adapter: GerencianetAdapter, control: httpx.Client, receiver: CallbackReceiver
) -> None:
    deliveries(adapter, control, receiver)
    opened = receiver.deliveries[1]
    first = adapter.parse_callback(headers=opened.headers, query=opened.query, body=opened.body)
    sent = next(d for d in control.get("/callbacks/deliveries").json() if d["event"] == "infracao")

    control.post(f"/callbacks/deliveries/{sent['id']}/redeliver")
    again = receiver.deliveries[-1]

    event = adapter.parse_callback(headers=again.headers, query=again.query, body=again.body)
    assert event.event_id == first.event_id


@pytest.mark.parametrize(
    "query",
    [{}, {"hmac": "gn-guess"}, {"hmac": WEBHOOK_SECRET + "/pix"}],
    ids=["no secret", "forged", "with /pix appended"],
)
def test_a_forged_dispute_callback_is_refused(
    adapter: GerencianetAdapter,
    control: httpx.Client,
    receiver: CallbackReceiver,
    query: dict[str, str],
) -> None:
    deliveries(adapter, control, receiver)
    opened = receiver.deliveries[1]

    with pytest.raises(InvalidCallback):
        adapter.parse_callback(headers=opened.headers, query=query, body=opened.body)


@pytest.mark.parametrize(
    "infracoes",
    [
        "[]",
        "{}",
        '[{"situacao": "ABERTA", "atualizacao": "2026-05-01T12:00:00.000Z"}]',
        '[{"idInfracao": "i1", "atualizacao": "2026-05-01T12:00:00.000Z"}]',
        '[{"idInfracao": "i1", "situacao": "ABERTA"}]',
        '[{"idInfracao": "", "situacao": "ABERTA", "atualizacao": "t"}]',
        '[{"idInfracao": 7, "situacao": "ABERTA", "atualizacao": "t"}]',
        '[{"idInfracao": "i1", "situacao": "ABERTA", "atualizacao": "t", "txid": 5}]',
        '[{"idInfracao": "i1", "situacao": "ABERTA", "atualizacao": "t", "valor": "1.005"}]',
        '[{"idInfracao": "i1", "situacao": "ABERTA", "atualizacao": "t", "valor": "abc"}]',
        "[7]",
    ],
    ids=[
        "empty",
        "not a list",
        "no id",
        "no situacao",
        "no atualizacao",
        "empty id",
        "id not a string",
        "txid not a string",
        "sub-centavo amount",
        "amount not a number",
        "not an object",
    ],
)
def test_a_malformed_dispute_callback_is_invalid(
    adapter: GerencianetAdapter, infracoes: str
) -> None:
    body = f'{{"infracoes": {infracoes}}}'.encode()

    with pytest.raises(InvalidCallback):
        adapter.parse_callback(headers={}, query={"hmac": WEBHOOK_SECRET}, body=body)


def test_a_minimal_dispute_callback_without_txid_still_parses(
    adapter: GerencianetAdapter,
) -> None:
    body = b'{"infracoes": [{"idInfracao": "i1", "situacao": "EM_ANALISE", "atualizacao": "t"}]}'

    event = adapter.parse_callback(headers={}, query={"hmac": WEBHOOK_SECRET}, body=body)

    assert (event.kind, event.reference, event.amount) == (CallbackKind.DISPUTE_UPDATED, "", None)
    assert event.event_id == "med:i1:EM_ANALISE:t"


def test_the_sdk_knows_the_med_endpoints() -> None:
    endpoints = Constants.APIS["PIX"]["ENDPOINTS"]

    assert endpoints["med_list"] == {"route": "/v2/gn/infracoes", "method": "get"}
    assert endpoints["med_defense"] == {
        "route": "/v2/gn/infracoes/:idInfracao/defesa",
        "method": "post",
    }
