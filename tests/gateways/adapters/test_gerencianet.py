"""GerencianetAdapter through the real gerencianet SDK against the Efí PIX simulator,
over plain HTTP (the sandbox) and over mTLS (as Efí's production API wants)."""

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateways.adapters.gerencianet import GerencianetAdapter, txid_for
from gateways.base import (
    Ambiguous,
    CallbackKind,
    ChargeNotFound,
    ChargeStatus,
    Declined,
    GatewayError,
    InvalidCallback,
    Misconfigured,
    RefundStatus,
    Retryable,
)
from gateways.credentials import SANDBOX_VALUES
from gateways.pix.brcode import parse
from gateways.simulators import MTLSSettings, SimulatorServer
from tests.gateways.adapters.conftest import (
    SHORT_TIMEOUT,
    TIMEOUT,
    CallbackReceiver,
    Delivery,
    charge_request,
    closed_port_url,
    credentials,
    faults,
    recorded_charges,
    requests_to,
    set_credential,
)
from tests.gateways.certificates import Certificates, make_certificates

WEBHOOK_SECRET = SANDBOX_VALUES["gerencianet"]["WEBHOOK_SECRET"]
OAUTH_PATH = "/gerencianet/oauth/token"


def gerencianet_at(base_url: str, *, timeout: float = TIMEOUT) -> GerencianetAdapter:
    return GerencianetAdapter(
        code="gerencianet",
        timeout_seconds=timeout,
        credentials=credentials("gerencianet"),
        api_base=base_url + "/gerencianet",
    )


@pytest.fixture
def adapter(sim: SimulatorServer) -> GerencianetAdapter:
    return gerencianet_at(sim.base_url)


def cob_path(key: str = "key-1") -> str:
    return f"/gerencianet/v2/cob/{txid_for(key)}"


def pay(control: httpx.Client, txid: str) -> dict[str, Any]:
    answer = control.post(f"/pix/{txid}/pay", params={"gateway": "gerencianet"})
    assert answer.status_code == 200, answer.text
    return answer.json()


# Charges.


def test_a_pix_charge_gives_a_br_code_for_its_amount_under_its_txid(
    adapter: GerencianetAdapter, control: httpx.Client
) -> None:
    before = datetime.now(UTC)

    result = adapter.charge(charge_request(pix_expires_in=1800))

    assert result.status is ChargeStatus.AWAITING_PAYMENT
    assert (result.raw_status, result.amount) == ("ATIVA", 1050)
    assert result.reference == txid_for("key-1")
    assert result.pix is not None
    assert result.pix.txid == result.reference
    code = parse(result.pix.br_code)
    assert code.amount == 1050
    assert code.url is not None
    assert code.url.startswith("pix-sim.invalid/gerencianet/")
    assert code.txid is None  # a dynamic code: the payload behind the location says it
    assert result.pix.expires_at is not None
    expected = before + timedelta(seconds=1800)
    assert expected - timedelta(seconds=5) < result.pix.expires_at < expected + timedelta(seconds=5)
    [recorded] = recorded_charges(control, "gerencianet")
    assert (recorded["id"], recorded["reference"]) == (result.reference, "pw-1")
    assert recorded["amount"] == 1050


@pytest.mark.parametrize("amount", [1, 99, 1050, 123456789])
def test_amounts_cross_the_wire_exactly(
    adapter: GerencianetAdapter, control: httpx.Client, amount: int
) -> None:
    result = adapter.charge(charge_request(amount=amount))

    assert result.amount == amount
    assert result.pix is not None
    assert parse(result.pix.br_code).amount == amount
    assert recorded_charges(control, "gerencianet")[0]["amount"] == amount


def test_only_pix_goes_to_gerencianet(adapter: GerencianetAdapter, control: httpx.Client) -> None:
    with pytest.raises(Declined) as raised:
        adapter.charge(charge_request(method="card", card_token="pm_card_visa"))

    assert raised.value.code == "method_not_supported"
    assert control.get("/requests").json() == []


def test_retrieve_reads_active_then_paid(
    adapter: GerencianetAdapter, control: httpx.Client
) -> None:
    charged = adapter.charge(charge_request())
    assert adapter.retrieve(charged.reference) == charged

    pay(control, charged.reference)

    paid = adapter.retrieve(charged.reference)
    assert (paid.status, paid.raw_status, paid.amount) == (
        ChargeStatus.SUCCEEDED,
        "CONCLUIDA",
        1050,
    )


def test_an_unpaid_charge_past_its_expiry_reads_expired(adapter: GerencianetAdapter) -> None:
    charged = adapter.charge(charge_request(pix_expires_in=1))
    time.sleep(1.1)

    assert adapter.retrieve(charged.reference).status is ChargeStatus.EXPIRED


def test_retrieving_an_unknown_reference_is_charge_not_found(
    adapter: GerencianetAdapter,
) -> None:
    with pytest.raises(ChargeNotFound) as raised:
        adapter.retrieve(txid_for("never-charged"))

    assert raised.value.http_status == 404


def test_cancel_an_active_charge(adapter: GerencianetAdapter, control: httpx.Client) -> None:
    charged = adapter.charge(charge_request())

    canceled = adapter.cancel(charged.reference)

    assert (canceled.status, canceled.raw_status) == (
        ChargeStatus.CANCELED,
        "REMOVIDA_PELO_USUARIO_RECEBEDOR",
    )
    assert recorded_charges(control, "gerencianet")[0]["status"] == canceled.raw_status


def test_a_paid_charge_cannot_be_canceled(
    adapter: GerencianetAdapter, control: httpx.Client
) -> None:
    charged = adapter.charge(charge_request())
    pay(control, charged.reference)

    with pytest.raises(Declined) as raised:
        adapter.cancel(charged.reference)

    assert raised.value.http_status == 400


def test_refund_partly_then_the_rest_then_nothing_more(
    adapter: GerencianetAdapter, control: httpx.Client
) -> None:
    charged = adapter.charge(charge_request())
    pay(control, charged.reference)

    partial = adapter.refund(reference=charged.reference, amount=400, idempotency_key="rf-1")
    with pytest.raises(Declined):
        adapter.refund(reference=charged.reference, amount=651, idempotency_key="rf-2")
    rest = adapter.refund(reference=charged.reference, amount=650, idempotency_key="rf-3")
    with pytest.raises(Declined):
        adapter.refund(reference=charged.reference, amount=1, idempotency_key="rf-4")

    assert (partial.status, partial.amount, partial.raw_status) == (
        RefundStatus.SUCCEEDED,
        400,
        "DEVOLVIDO",
    )
    assert (rest.status, rest.amount) == (RefundStatus.SUCCEEDED, 650)
    assert partial.reference.startswith("D")
    assert partial.reference != rest.reference
    assert [r["amount"] for r in control.get("/refunds").json()] == [400, 650]
    assert recorded_charges(control, "gerencianet")[0]["amount_refunded"] == 1050


def test_an_unpaid_charge_cannot_be_refunded(
    adapter: GerencianetAdapter, control: httpx.Client
) -> None:
    charged = adapter.charge(charge_request())

    with pytest.raises(Declined) as raised:
        adapter.refund(reference=charged.reference, amount=100, idempotency_key="rf-unpaid")

    assert raised.value.code == "not_paid"
    assert control.get("/refunds").json() == []


def test_a_repeated_refund_key_refunds_once(
    adapter: GerencianetAdapter, control: httpx.Client
) -> None:
    charged = adapter.charge(charge_request())
    pay(control, charged.reference)

    first = adapter.refund(reference=charged.reference, amount=300, idempotency_key="rf-same")
    second = adapter.refund(reference=charged.reference, amount=300, idempotency_key="rf-same")

    assert first == second
    assert [r["amount"] for r in control.get("/refunds").json()] == [300]


def test_the_same_idempotency_key_twice_is_one_charge(
    adapter: GerencianetAdapter, control: httpx.Client
) -> None:
    first = adapter.charge(charge_request(key="same-key"))
    second = adapter.charge(charge_request(key="same-key"))
    found = adapter.find_charge(charge_request(key="same-key"))

    assert second.reference == first.reference
    assert found is not None
    assert found.reference == first.reference
    assert len(recorded_charges(control, "gerencianet", idempotency_key=first.reference)) == 1
    assert len(recorded_charges(control, "gerencianet")) == 1


def test_find_charge_of_a_key_never_used_is_none(adapter: GerencianetAdapter) -> None:
    assert adapter.find_charge(charge_request(key="never-used")) is None


# The OAuth token.


def test_one_oauth_token_serves_every_call_while_valid(
    adapter: GerencianetAdapter, control: httpx.Client
) -> None:
    charged = adapter.charge(charge_request())
    adapter.retrieve(charged.reference)
    adapter.find_charge(charge_request())
    adapter.health()
    adapter.cancel(charged.reference)

    assert len(requests_to(control, OAUTH_PATH)) == 1
    assert len(control.get("/requests").json()) == 6


def test_a_refused_cached_token_is_replaced_once(
    adapter: GerencianetAdapter, control: httpx.Client
) -> None:
    adapter.health()
    control.post("/reset")  # the simulator forgets its tokens, as after a restart

    health = adapter.health()

    assert health.healthy is True, health.detail
    assert [(r["path"], r["status"]) for r in control.get("/requests").json()] == [
        ("/gerencianet/v2/cob", 401),
        (OAUTH_PATH, 200),
        ("/gerencianet/v2/cob", 200),
    ]


def test_wrong_client_credentials_are_misconfigured_and_tried_once(
    sim: SimulatorServer, control: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_credential(monkeypatch, "gerencianet", "CLIENT_SECRET", "wrong")

    with pytest.raises(Misconfigured) as raised:
        gerencianet_at(sim.base_url).charge(charge_request())

    assert raised.value.http_status == 401
    assert [r["path"] for r in control.get("/requests").json()] == [OAUTH_PATH]


# Health.


def test_health_is_healthy_with_its_latency(
    adapter: GerencianetAdapter, control: httpx.Client
) -> None:
    adapter.health()  # the token first: the latency below is one call's
    faults(control, "gerencianet", latency_ms=60)

    health = adapter.health()

    assert health.healthy is True
    assert 60 <= health.latency_ms < 2000


def test_health_is_unhealthy_when_the_simulator_is_down() -> None:
    health = gerencianet_at(closed_port_url()).health()

    assert health.healthy is False
    assert health.detail.startswith("retryable")


# The error mapping table.


@dataclass(frozen=True)
class Case:
    expected: type[GatewayError]
    faults: dict[str, Any] = field(default_factory=dict)
    warm: bool = True  # a token cached first, so the fault meets the cob itself
    timeout: float = TIMEOUT
    refused: bool = False  # point the adapter at a closed port
    own_port: bool = False  # point the adapter at the gateway's own simulator port
    client_secret: str = ""  # a wrong secret
    tax_id: str = "52998224725"
    recorded: int = 0  # charges the simulator holds afterwards
    http_status: int | None = None
    sent: int = 1  # cob requests that reached the simulator: the SDK never retries


ERROR_TABLE = {
    "connection refused": Case(Retryable, refused=True, warm=False, sent=0),
    "500": Case(Ambiguous, {"error_rate": 1}, http_status=500),
    "502": Case(Ambiguous, {"error_rate": 1, "error_status": 502}, http_status=502),
    "503": Case(Retryable, {"error_rate": 1, "error_status": 503}, http_status=503),
    "outage as 503": Case(Retryable, {"down": True, "down_mode": "503"}, http_status=503),
    "429": Case(Retryable, {"error_rate": 1, "error_status": 429}, http_status=429),
    "504 from a proxy": Case(Ambiguous, {"error_rate": 1, "error_status": 504}, http_status=504),
    "reset after sending": Case(Ambiguous, {"down": True}),
    "read timeout": Case(Ambiguous, {"timeout_rate": 1}, timeout=SHORT_TIMEOUT, recorded=1),
    "401 wrong secret": Case(Misconfigured, warm=False, client_secret="no", http_status=401,
                             sent=0),
    "400 bad tax id": Case(Declined, tax_id="123", http_status=400),
    # The token request fails: nothing can have been charged, whatever became of it.
    "OAuth 503": Case(Retryable, {"error_rate": 1, "error_status": 503}, warm=False,
                      http_status=503, sent=0),
    "OAuth 429": Case(Retryable, {"error_rate": 1, "error_status": 429}, warm=False,
                      http_status=429, sent=0),
    "OAuth reset": Case(Retryable, {"down": True}, warm=False, sent=0),
    "OAuth read timeout": Case(Retryable, {"timeout_rate": 1}, warm=False, timeout=SHORT_TIMEOUT,
                               sent=0),
    # The simulators' outage modes (down_mode): what a real gateway's outage looks like.
    "refused at its own port": Case(Retryable, {"down": True, "down_mode": "refuse"},
                                    own_port=True, sent=0),
    "reset before reading": Case(Ambiguous, {"down": True, "down_mode": "reset_before_read"}),
    "reset after handling": Case(Ambiguous, {"down": True, "down_mode": "reset_after_read"},
                                 recorded=1),
    "hang after handling": Case(Ambiguous, {"down": True, "down_mode": "hang"},
                                timeout=SHORT_TIMEOUT, recorded=1),
    "502 after handling": Case(Ambiguous, {"down": True, "down_mode": "502"}, http_status=502,
                               recorded=1),
    "504 after handling": Case(Ambiguous, {"down": True, "down_mode": "504"}, http_status=504,
                               recorded=1),
}  # fmt: skip


def _base_url(sim: SimulatorServer, case: Case) -> str:
    return sim.gateway_base_url("gerencianet") if case.own_port else sim.base_url


@pytest.mark.parametrize("case", ERROR_TABLE.values(), ids=ERROR_TABLE.keys())
def test_error_mapping(
    case: Case, sim: SimulatorServer, control: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    if case.client_secret:
        set_credential(monkeypatch, "gerencianet", "CLIENT_SECRET", case.client_secret)
    base_url = closed_port_url() if case.refused else _base_url(sim, case)
    adapter = gerencianet_at(base_url, timeout=case.timeout)
    if case.warm:
        assert adapter.health().healthy
    if case.faults:
        faults(control, "gerencianet", **case.faults)
    request = charge_request()
    request = replace(request, payer=replace(request.payer, tax_id=case.tax_id))

    started = time.monotonic()
    with pytest.raises(GatewayError) as raised:
        adapter.charge(request)

    assert type(raised.value) is case.expected, raised.value
    assert raised.value.http_status == case.http_status
    assert time.monotonic() - started < case.timeout * 2 + 1
    assert len(requests_to(control, cob_path())) == case.sent
    assert len(recorded_charges(control, "gerencianet")) == case.recorded


def test_after_an_ambiguous_timeout_the_same_key_finds_the_one_charge(
    sim: SimulatorServer, control: httpx.Client
) -> None:
    impatient = gerencianet_at(sim.base_url, timeout=SHORT_TIMEOUT)
    impatient.health()
    faults(control, "gerencianet", timeout_rate=1)
    with pytest.raises(Ambiguous):
        impatient.charge(charge_request(key="lost-answer"))
    [recorded] = recorded_charges(control, "gerencianet")
    control.delete("/faults")

    found = impatient.find_charge(charge_request(key="lost-answer"))
    retried = impatient.charge(charge_request(key="lost-answer"))

    assert found is not None
    assert found.reference == recorded["id"]
    assert retried.reference == recorded["id"]
    assert len(recorded_charges(control, "gerencianet")) == 1


# Callbacks.


@pytest.fixture
def delivered(
    adapter: GerencianetAdapter, control: httpx.Client, receiver: CallbackReceiver
) -> Delivery:
    """A real notification, sent when the simulated payer pays, to the URL registered
    in Efí's documented form (`?hmac=<secret>&ignorar=`; Efí appends "/pix")."""
    control.put("/callbacks/gerencianet", json={"url": receiver.url + "/callbacks/gerencianet"})
    charged = adapter.charge(charge_request())
    assert pay(control, charged.reference)["callback"]["delivered"] is True
    return receiver.only()


def test_a_real_delivery_is_accepted_and_normalized(
    adapter: GerencianetAdapter, delivered: Delivery
) -> None:
    assert delivered.query == {"hmac": WEBHOOK_SECRET, "ignorar": "/pix"}

    event = adapter.parse_callback(
        headers=delivered.headers, query=delivered.query, body=delivered.body
    )

    [pix] = json.loads(delivered.body)["pix"]
    assert event.kind is CallbackKind.PAYMENT_UPDATED
    assert (event.gateway, event.reference, event.txid) == (
        "gerencianet",
        txid_for("key-1"),
        txid_for("key-1"),
    )
    assert (event.event_id, event.amount) == (pix["endToEndId"], 1050)


def test_a_redelivery_is_the_same_event(
    adapter: GerencianetAdapter,
    control: httpx.Client,
    receiver: CallbackReceiver,
    delivered: Delivery,
) -> None:
    """Efí signs nothing and stamps no time on the request, so there is no staleness to
    check: a replay is the same event (deduplicated by its endToEndId), and the adapter's
    callers confirm the state with a GET of the cob before trusting it."""
    [first] = control.get("/callbacks/deliveries").json()
    control.post(f"/callbacks/deliveries/{first['id']}/redeliver")
    again = receiver.deliveries[-1]

    event = adapter.parse_callback(headers=again.headers, query=again.query, body=again.body)

    assert event.event_id == json.loads(delivered.body)["pix"][0]["endToEndId"]


@pytest.mark.parametrize(
    "query",
    [
        {},
        {"hmac": ""},
        {"hmac": "gn-guess"},
        {"hmac": WEBHOOK_SECRET + "x"},
        {"hmac": WEBHOOK_SECRET + "/pix"},  # registered without "&ignorar=": Efí's trap
    ],
    ids=["no secret", "empty", "forged", "longer", "with /pix appended"],
)
def test_a_wrong_or_missing_secret_is_refused(
    adapter: GerencianetAdapter, delivered: Delivery, query: dict[str, str]
) -> None:
    with pytest.raises(InvalidCallback) as refused:
        adapter.parse_callback(headers=delivered.headers, query=query, body=delivered.body)

    assert str(refused.value) == "gerencianet: wrong or missing callback secret"


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"\xff",
        b"[]",
        b"{}",
        b'{"pix": []}',
        b'{"pix": {}}',
        b'{"pix": [{"txid": "a"}]}',
        b'{"pix": [{"txid": "a", "endToEndId": "E1", "valor": "1.005"}]}',
        b'{"pix": [{"txid": "a", "endToEndId": "E1", "valor": "abc"}]}',
    ],
    ids=[
        "not json",
        "not utf-8",
        "a list",
        "no pix",
        "empty pix",
        "pix not a list",
        "no end-to-end id",
        "sub-centavo amount",
        "amount not a number",
    ],
)
def test_malformed_callbacks_are_invalid(
    adapter: GerencianetAdapter, delivered: Delivery, body: bytes
) -> None:
    with pytest.raises(InvalidCallback):
        adapter.parse_callback(headers=delivered.headers, query=delivered.query, body=body)


# Over mTLS.


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("gn-mtls"))


@pytest.fixture
def mtls_sim(certificates: Certificates) -> Iterator[SimulatorServer]:
    settings = MTLSSettings(
        port=0,
        cert_file=str(certificates.server_cert),
        key_file=str(certificates.server_key),
        client_ca_file=str(certificates.ca),
    )
    with SimulatorServer("127.0.0.1", 0, mtls=settings) as server:
        yield server


@pytest.fixture
def trusting_the_test_ca(certificates: Certificates, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(certificates.ca))


def over_mtls(server: SimulatorServer) -> GerencianetAdapter:
    assert server.mtls_base_url is not None
    return gerencianet_at(server.mtls_base_url)


def sim_requests(server: SimulatorServer) -> list[dict[str, Any]]:
    return httpx.get(server.base_url + "/_sim/requests").json()


@pytest.mark.usefixtures("trusting_the_test_ca")
def test_with_the_client_certificate_the_adapter_works(
    mtls_sim: SimulatorServer, certificates: Certificates, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_credential(monkeypatch, "gerencianet", "CERT_PEM", str(certificates.client_pem))
    adapter = over_mtls(mtls_sim)

    charged = adapter.charge(charge_request())

    assert charged.status is ChargeStatus.AWAITING_PAYMENT
    assert adapter.retrieve(charged.reference).reference == charged.reference
    assert adapter.health().healthy is True
    charges = httpx.get(mtls_sim.base_url + "/_sim/charges").json()
    assert [c["id"] for c in charges] == [charged.reference]


@pytest.mark.usefixtures("trusting_the_test_ca")
@pytest.mark.parametrize("client_pem", ["", "stranger", "missing"])
def test_without_an_accepted_client_certificate_it_is_misconfigured(
    mtls_sim: SimulatorServer,
    certificates: Certificates,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    client_pem: str,
) -> None:
    """Misconfigured, not Retryable: the TLS session never existed, so nothing was
    charged, and no retry will make the certificate acceptable: an operator must act."""
    files = {"stranger": str(certificates.stranger_pem), "missing": str(tmp_path / "none.pem")}
    if client_pem:
        set_credential(monkeypatch, "gerencianet", "CERT_PEM", files[client_pem])
    adapter = over_mtls(mtls_sim)

    with pytest.raises(Misconfigured) as raised:
        adapter.charge(charge_request())

    assert raised.value.code == "tls_certificate"
    assert sim_requests(mtls_sim) == []  # nothing got past TLS
    health = adapter.health()
    assert (health.healthy, health.detail.split(":")[0]) == (False, "misconfigured")


def test_an_untrusted_server_certificate_is_misconfigured(
    mtls_sim: SimulatorServer, certificates: Certificates, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    set_credential(monkeypatch, "gerencianet", "CERT_PEM", str(certificates.client_pem))

    with pytest.raises(Misconfigured) as raised:
        over_mtls(mtls_sim).charge(charge_request())

    assert "not trusted" in raised.value.message
    assert sim_requests(mtls_sim) == []


def test_a_tls_failure_other_than_a_certificate_is_retryable(mtls_sim: SimulatorServer) -> None:
    """TLS spoken to a plain HTTP port fails the handshake on the protocol, not on a
    certificate: nothing was sent, and it is no certificate for an operator to replace."""
    adapter = gerencianet_at(mtls_sim.base_url.replace("http://", "https://"))

    with pytest.raises(Retryable) as raised:
        adapter.charge(charge_request())

    assert "SSL" in raised.value.gateway_message
    assert sim_requests(mtls_sim) == []
    health = adapter.health()
    assert (health.healthy, health.detail.split(":")[0]) == (False, "retryable")


def test_the_plain_http_sandbox_needs_no_certificate(mtls_sim: SimulatorServer) -> None:
    charged = gerencianet_at(mtls_sim.base_url).charge(charge_request())

    assert charged.status is ChargeStatus.AWAITING_PAYMENT
    assert [r["path"] for r in sim_requests(mtls_sim)] == [OAUTH_PATH, cob_path()]
