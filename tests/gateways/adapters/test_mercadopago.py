"""MercadoPagoAdapter through the real mercadopago SDK against the Mercado Pago simulator."""

import hashlib
import hmac
import json
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateways.adapters.mercadopago import MercadoPagoAdapter
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
from tests.gateways.certificates import make_certificates

WEBHOOK_SECRET = SANDBOX_VALUES["mercadopago"]["WEBHOOK_SECRET"]
CREATE_PATH = "/mercadopago/v1/payments"


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


def pay(control: httpx.Client, reference: str) -> dict[str, Any]:
    answer = control.post(f"/pix/{reference}/pay", params={"gateway": "mercadopago"})
    assert answer.status_code == 200, answer.text
    return answer.json()


# Charges.


def test_a_pix_charge_gives_a_br_code_for_its_amount_and_an_expiry(
    adapter: MercadoPagoAdapter, control: httpx.Client
) -> None:
    before = datetime.now(UTC)

    result = adapter.charge(charge_request(pix_expires_in=1800))

    assert result.status is ChargeStatus.AWAITING_PAYMENT
    assert result.raw_status == "pending/pending_waiting_transfer"
    assert result.amount == 1050
    assert result.pix is not None
    code = parse(result.pix.br_code)
    assert code.amount == 1050
    assert code.url is not None
    assert code.url.startswith("pix-sim.invalid/mercadopago/")
    assert code.txid is None  # a dynamic code: the payload behind the location says it
    assert result.pix.txid == result.reference  # Mercado Pago's id is the one to look up
    assert result.pix.expires_at is not None
    expected = before + timedelta(seconds=1800)
    assert expected - timedelta(seconds=5) < result.pix.expires_at < expected + timedelta(seconds=5)
    [recorded] = recorded_charges(control, "mercadopago")
    assert (recorded["id"], recorded["reference"]) == (result.reference, "pw-1")
    assert (recorded["idempotency_key"], recorded["amount"]) == ("key-1", 1050)


@pytest.mark.parametrize("amount", [1, 99, 1050, 123456789])
def test_amounts_cross_the_wire_exactly(
    adapter: MercadoPagoAdapter, control: httpx.Client, amount: int
) -> None:
    result = adapter.charge(charge_request(amount=amount))

    assert result.amount == amount
    assert result.pix is not None
    assert parse(result.pix.br_code).amount == amount
    assert recorded_charges(control, "mercadopago")[0]["amount"] == amount


def test_only_pix_goes_to_mercado_pago(adapter: MercadoPagoAdapter, control: httpx.Client) -> None:
    with pytest.raises(Declined) as raised:
        adapter.charge(charge_request(method="card", card_token="pm_card_visa"))

    assert raised.value.code == "method_not_supported"
    assert requests_to(control, CREATE_PATH) == []


def test_retrieve_reads_pending_then_paid(
    adapter: MercadoPagoAdapter, control: httpx.Client
) -> None:
    charged = adapter.charge(charge_request())
    assert adapter.retrieve(charged.reference).status is ChargeStatus.AWAITING_PAYMENT

    pay(control, charged.reference)

    paid = adapter.retrieve(charged.reference)
    assert (paid.status, paid.raw_status, paid.amount) == (
        ChargeStatus.SUCCEEDED,
        "approved/accredited",
        1050,
    )


def test_an_unpaid_charge_past_its_expiry_reads_expired(adapter: MercadoPagoAdapter) -> None:
    charged = adapter.charge(charge_request(pix_expires_in=1))
    time.sleep(1.1)

    assert adapter.retrieve(charged.reference).status is ChargeStatus.EXPIRED


def test_retrieving_an_unknown_reference_is_charge_not_found(
    adapter: MercadoPagoAdapter,
) -> None:
    with pytest.raises(ChargeNotFound) as raised:
        adapter.retrieve("999999")

    assert raised.value.http_status == 404


def test_cancel_a_pending_charge(adapter: MercadoPagoAdapter, control: httpx.Client) -> None:
    charged = adapter.charge(charge_request())

    canceled = adapter.cancel(charged.reference)

    assert canceled.status is ChargeStatus.CANCELED
    assert recorded_charges(control, "mercadopago")[0]["status"] == "cancelled"


def test_a_paid_charge_cannot_be_canceled(
    adapter: MercadoPagoAdapter, control: httpx.Client
) -> None:
    charged = adapter.charge(charge_request())
    pay(control, charged.reference)

    with pytest.raises(Declined):
        adapter.cancel(charged.reference)


def test_refund_partly_then_the_rest_then_nothing_more(
    adapter: MercadoPagoAdapter, control: httpx.Client
) -> None:
    charged = adapter.charge(charge_request())
    pay(control, charged.reference)

    partial = adapter.refund(reference=charged.reference, amount=400, idempotency_key="rf-1")
    with pytest.raises(Declined):
        adapter.refund(reference=charged.reference, amount=651, idempotency_key="rf-2")
    rest = adapter.refund(reference=charged.reference, amount=650, idempotency_key="rf-3")
    with pytest.raises(Declined):
        adapter.refund(reference=charged.reference, amount=1, idempotency_key="rf-4")

    assert (partial.status, partial.amount) == (RefundStatus.SUCCEEDED, 400)
    assert (rest.status, rest.amount) == (RefundStatus.SUCCEEDED, 650)
    assert partial.reference != rest.reference
    refunded = adapter.retrieve(charged.reference)
    assert refunded.raw_status == "refunded/refunded"
    assert refunded.status is ChargeStatus.REFUNDED  # paid once, never a success to settle on
    assert [r["amount"] for r in control.get("/refunds").json()] == [400, 650]


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("refunded", ChargeStatus.REFUNDED),
        ("charged_back", ChargeStatus.CHARGED_BACK),
        ("in_mediation", ChargeStatus.IN_DISPUTE),
        ("approved", ChargeStatus.SUCCEEDED),
    ],
)
def test_money_that_came_back_is_never_read_as_a_success(
    adapter: MercadoPagoAdapter, status: str, expected: ChargeStatus
) -> None:
    """Mercado Pago's words for a payment whose money went back or is contested."""
    answer = {"id": 1, "status": status, "transaction_amount": 10.5, "currency_id": "BRL"}

    result = adapter._result({"response": answer})

    assert (result.status, result.amount, result.currency) == (expected, 1050, "BRL")


def test_a_pending_refund_is_read_back_within_the_gateway_s_timeout(
    sim: SimulatorServer, control: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The read-back of a pending refund goes with the engine's options, as every call
    does: a gateway that hangs there answers within the adapter's timeout, not the SDK's
    default of a minute."""
    from mercadopago.resources.refund import Refund

    adapter = mercadopago_at(sim.base_url, timeout=SHORT_TIMEOUT)
    charged = adapter.charge(charge_request())
    pay(control, charged.reference)
    faults(control, "mercadopago", refund_status="pending")
    read_back = Refund.get

    def read_back_while_hanging(self: Refund, *args: Any, **kwargs: Any) -> Any:
        faults(control, "mercadopago", down=True, down_mode="hang", hang_ms=3000)
        return read_back(self, *args, **kwargs)

    monkeypatch.setattr(Refund, "get", read_back_while_hanging)
    started = time.monotonic()

    with pytest.raises(GatewayError):
        adapter.refund(reference=charged.reference, amount=300, idempotency_key="rf-hang")

    assert time.monotonic() - started < 2.5  # the hang lasts 3 s


def test_refunding_more_than_was_paid_is_declined_not_trimmed(
    adapter: MercadoPagoAdapter, control: httpx.Client
) -> None:
    charged = adapter.charge(charge_request())
    pay(control, charged.reference)

    with pytest.raises(Declined) as raised:
        adapter.refund(reference=charged.reference, amount=2000, idempotency_key="rf-big")

    assert raised.value.http_status == 400
    assert control.get("/refunds").json() == []


def test_an_unpaid_charge_cannot_be_refunded(adapter: MercadoPagoAdapter) -> None:
    charged = adapter.charge(charge_request())

    with pytest.raises(Declined):
        adapter.refund(reference=charged.reference, amount=100, idempotency_key="rf-unpaid")


def test_a_repeated_refund_key_refunds_once(
    adapter: MercadoPagoAdapter, control: httpx.Client
) -> None:
    charged = adapter.charge(charge_request())
    pay(control, charged.reference)

    first = adapter.refund(reference=charged.reference, amount=300, idempotency_key="rf-same")
    second = adapter.refund(reference=charged.reference, amount=300, idempotency_key="rf-same")

    assert first == second
    assert [r["amount"] for r in control.get("/refunds").json()] == [300]


def test_the_same_idempotency_key_twice_is_one_charge(
    adapter: MercadoPagoAdapter, control: httpx.Client
) -> None:
    first = adapter.charge(charge_request(key="same-key"))
    second = adapter.charge(charge_request(key="same-key"))

    assert second.reference == first.reference
    assert len(recorded_charges(control, "mercadopago", idempotency_key="same-key")) == 1
    assert len(recorded_charges(control, "mercadopago")) == 1


def test_a_key_longer_than_mercado_pago_takes_is_hashed_stably(
    adapter: MercadoPagoAdapter, control: httpx.Client
) -> None:
    key = "paywave-" + "x" * 92

    first = adapter.charge(charge_request(key=key))
    second = adapter.charge(charge_request(key=key))

    assert second.reference == first.reference
    [recorded] = recorded_charges(control, "mercadopago")
    assert recorded["idempotency_key"] == hashlib.sha256(key.encode()).hexdigest()


def test_find_charge_by_payment_id(adapter: MercadoPagoAdapter) -> None:
    charged = adapter.charge(charge_request(payment_id="pw-find"))

    found = adapter.find_charge(charge_request(payment_id="pw-find"))

    assert found is not None
    assert found.reference == charged.reference
    assert adapter.find_charge(charge_request(payment_id="pw-never")) is None


def test_find_charge_gives_the_newest_of_a_payment_s_charges(adapter: MercadoPagoAdapter) -> None:
    """One payment charged twice (a retry under a new key after the first went unanswered):
    the newest charge is the one the payment goes on with."""
    adapter.charge(charge_request(payment_id="pw-twice", key="key-1"))
    newest = adapter.charge(charge_request(payment_id="pw-twice", key="key-2"))

    found = adapter.find_charge(charge_request(payment_id="pw-twice"))

    assert found is not None
    assert found.reference == newest.reference


def test_find_charge_and_health_are_bounded_by_the_adapter_s_timeout(
    sim: SimulatorServer, control: httpx.Client
) -> None:
    adapter = mercadopago_at(sim.base_url, timeout=SHORT_TIMEOUT)
    faults(control, "mercadopago", latency_ms=int(SHORT_TIMEOUT * 1000) + 1500)

    with pytest.raises((Retryable, Ambiguous)):
        adapter.find_charge(charge_request(payment_id="pw-slow"))
    assert adapter.health().healthy is False


# Health.


def test_health_is_healthy_with_its_latency(
    adapter: MercadoPagoAdapter, control: httpx.Client
) -> None:
    faults(control, "mercadopago", latency_ms=60)

    health = adapter.health()

    assert health.healthy is True
    assert 60 <= health.latency_ms < 2000


def test_health_is_unhealthy_when_the_simulator_is_down() -> None:
    health = mercadopago_at(closed_port_url()).health()

    assert health.healthy is False
    assert health.detail.startswith("retryable")


def test_health_is_unhealthy_with_a_wrong_token(
    sim: SimulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_credential(monkeypatch, "mercadopago", "ACCESS_TOKEN", "TEST-not-this-one")

    health = mercadopago_at(sim.base_url).health()

    assert (health.healthy, health.detail.split(":")[0]) == (False, "misconfigured")


# The error mapping table.


@dataclass(frozen=True)
class Case:
    expected: type[GatewayError]
    faults: dict[str, Any] = field(default_factory=dict)
    timeout: float = TIMEOUT
    refused: bool = False  # point the adapter at a closed port
    own_port: bool = False  # point the adapter at the gateway's own simulator port
    token: str = ""  # a wrong access token
    email: str = "maria@example.com"
    recorded: int = 0  # charges the simulator holds afterwards
    http_status: int | None = None
    sent: int = 1  # requests that reached the simulator: the SDK never retries


ERROR_TABLE = {
    "connection refused": Case(Retryable, refused=True, sent=0),
    "500": Case(Ambiguous, {"error_rate": 1}, http_status=500),
    "502": Case(Ambiguous, {"error_rate": 1, "error_status": 502}, http_status=502),
    "503": Case(Retryable, {"error_rate": 1, "error_status": 503}, http_status=503),
    "outage as 503": Case(Retryable, {"down": True, "down_mode": "503"}, http_status=503),
    "429": Case(Retryable, {"error_rate": 1, "error_status": 429}, http_status=429),
    "504 from a proxy": Case(Ambiguous, {"error_rate": 1, "error_status": 504}, http_status=504),
    "reset after sending": Case(Ambiguous, {"down": True}),
    "read timeout": Case(Ambiguous, {"timeout_rate": 1}, timeout=SHORT_TIMEOUT, recorded=1),
    "401 wrong token": Case(Misconfigured, token="TEST-wrong", http_status=401),
    "400 no payer email": Case(Declined, email="", http_status=400),
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
    return sim.gateway_base_url("mercadopago") if case.own_port else sim.base_url


@pytest.mark.parametrize("case", ERROR_TABLE.values(), ids=ERROR_TABLE.keys())
def test_error_mapping(
    case: Case, sim: SimulatorServer, control: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    if case.token:
        set_credential(monkeypatch, "mercadopago", "ACCESS_TOKEN", case.token)
    base_url = closed_port_url() if case.refused else _base_url(sim, case)
    adapter = mercadopago_at(base_url, timeout=case.timeout)
    if case.faults:
        faults(control, "mercadopago", **case.faults)
    request = charge_request()
    request = replace(request, payer=replace(request.payer, email=case.email))

    started = time.monotonic()
    with pytest.raises(GatewayError) as raised:
        adapter.charge(request)

    assert type(raised.value) is case.expected, raised.value
    assert raised.value.http_status == case.http_status
    assert time.monotonic() - started < case.timeout + 1
    assert len(requests_to(control, CREATE_PATH)) == case.sent
    assert len(recorded_charges(control, "mercadopago")) == case.recorded


def test_after_an_ambiguous_timeout_the_same_key_replays_the_one_charge(
    sim: SimulatorServer, control: httpx.Client
) -> None:
    impatient = mercadopago_at(sim.base_url, timeout=SHORT_TIMEOUT)
    faults(control, "mercadopago", timeout_rate=1)
    with pytest.raises(Ambiguous):
        impatient.charge(charge_request(key="lost-answer", payment_id="pw-lost"))
    [recorded] = recorded_charges(control, "mercadopago")
    control.delete("/faults")

    found = impatient.find_charge(charge_request(key="lost-answer", payment_id="pw-lost"))
    retried = impatient.charge(charge_request(key="lost-answer", payment_id="pw-lost"))

    assert found is not None
    assert found.reference == recorded["id"]
    assert retried.reference == recorded["id"]
    assert len(recorded_charges(control, "mercadopago")) == 1


# Over https the SDK mounts a urllib3 Retry for 429/5xx on GET and PUT: it must not retry
# nor turn the answer into a RetryError (which reads as "no answer").


@pytest.fixture(scope="module")
def tls_sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SimulatorServer, Path]]:
    certificates = make_certificates(tmp_path_factory.mktemp("mp-tls"))
    settings = MTLSSettings(
        0, str(certificates.server_cert), str(certificates.server_key), client_ca_file=None
    )
    with SimulatorServer("127.0.0.1", 0, mtls=settings) as server:
        yield server, certificates.ca


@pytest.mark.parametrize(
    ("status", "expected"), [(429, Retryable), (500, Ambiguous), (503, Retryable)]
)
def test_over_https_an_error_status_is_an_answer_and_never_retried(
    tls_sim: tuple[SimulatorServer, Path],
    monkeypatch: pytest.MonkeyPatch,
    status: int,
    expected: type[GatewayError],
) -> None:
    server, ca = tls_sim
    assert server.mtls_base_url is not None
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(ca))
    adapter = mercadopago_at(server.mtls_base_url)
    with httpx.Client(base_url=server.base_url + "/_sim") as control:
        control.post("/reset")
        charged = adapter.charge(charge_request())
        faults(control, "mercadopago", error_rate=1, error_status=status)

        with pytest.raises(expected) as on_get:
            adapter.retrieve(charged.reference)
        with pytest.raises(expected) as on_put:
            adapter.cancel(charged.reference)

        path = f"/mercadopago/v1/payments/{charged.reference}"
        assert [r["method"] for r in requests_to(control, path)] == ["GET", "PUT"]
    assert on_get.value.http_status == on_put.value.http_status == status


# An answer that is not JSON (a proxy's or a load balancer's HTML page): read by its status.


@contextmanager
def answering_html(status: int) -> Iterator[str]:
    """A server answering every request `status` with an HTML page; its base URL."""

    class Page(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # a charge is a POST
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            page = b"<html><body>upstream trouble</body></html>"
            self.send_response(status)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Page)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.mark.parametrize(
    ("status", "expected", "message"),
    [
        (200, Ambiguous, "mercadopago: unreadable answer"),
        (300, Declined, "mercadopago: the payment was refused"),
        (502, Ambiguous, "mercadopago: HTTP 502, the outcome is unknown"),
        (503, Retryable, "mercadopago: HTTP 503, not processed"),
    ],
)
def test_an_answer_that_is_not_json_is_read_by_its_status(
    status: int, expected: type[GatewayError], message: str
) -> None:
    """A 2xx page may come after the payment was made: ambiguous, never a success."""
    with answering_html(status) as base_url, pytest.raises(GatewayError) as raised:
        mercadopago_at(base_url).charge(charge_request())

    assert (type(raised.value), raised.value.message) == (expected, message)
    assert "Invalid JSON in response body" in raised.value.gateway_message
    if status >= 300:
        assert (raised.value.http_status, raised.value.code) == (status, str(status))


# Callbacks.


@pytest.fixture
def delivered(
    adapter: MercadoPagoAdapter, control: httpx.Client, receiver: CallbackReceiver
) -> Delivery:
    """A real notification, sent when the simulated payer pays."""
    control.put("/callbacks/mercadopago", json={"url": receiver.url + "/callbacks/mercadopago"})
    charged = adapter.charge(charge_request())
    assert pay(control, charged.reference)["callback"]["delivered"] is True
    return receiver.only()


def test_a_real_delivery_is_accepted_and_normalized(
    adapter: MercadoPagoAdapter, delivered: Delivery
) -> None:
    event = adapter.parse_callback(
        headers=delivered.headers, query=delivered.query, body=delivered.body
    )

    body = json.loads(delivered.body)
    assert event.kind is CallbackKind.PAYMENT_UPDATED
    assert (event.gateway, event.reference) == ("mercadopago", delivered.query["data.id"])
    assert event.event_id == str(body["id"])
    assert event.raw == body


def test_a_redelivery_is_the_same_event(
    adapter: MercadoPagoAdapter,
    control: httpx.Client,
    receiver: CallbackReceiver,
    delivered: Delivery,
) -> None:
    [first] = control.get("/callbacks/deliveries").json()
    control.post(f"/callbacks/deliveries/{first['id']}/redeliver")
    again = receiver.deliveries[-1]

    event = adapter.parse_callback(headers=again.headers, query=again.query, body=again.body)

    assert _lower(again.headers)["x-request-id"] != _lower(delivered.headers)["x-request-id"]
    assert event.event_id == str(json.loads(delivered.body)["id"])


def _lower(headers: dict[str, str]) -> dict[str, str]:
    return {name.lower(): value for name, value in headers.items()}


def _signed(data_id: str, *, at: int, request_id: str, secret: str = WEBHOOK_SECRET) -> str:
    manifest = f"id:{data_id};request-id:{request_id};ts:{at};"
    digest = hmac.new(secret.encode(), manifest.encode(), hashlib.sha256).hexdigest()
    return f"ts={at},v1={digest}"


@pytest.mark.parametrize(
    "why",
    ["forged signature", "another payment in the query", "another request id", "stale timestamp"],
)
def test_forged_tampered_and_stale_callbacks_are_refused(
    adapter: MercadoPagoAdapter, delivered: Delivery, why: str
) -> None:
    data_id, request_id, now = delivered.query["data.id"], str(uuid.uuid4()), int(time.time())
    body = delivered.body
    forged = _signed(data_id, at=now, request_id=request_id, secret="guess")
    stale = _signed(data_id, at=now - 301, request_id=request_id)
    other_body = json.dumps({**json.loads(body), "data": {"id": "1"}}).encode()
    headers, query, payload = {
        "forged signature": ({"x-signature": forged, "x-request-id": request_id},
                             delivered.query, body),
        "another payment in the query": (delivered.headers, {"data.id": "1"}, other_body),
        "another request id": ({**_lower(delivered.headers), "x-request-id": request_id},
                               delivered.query, body),
        "stale timestamp": ({"x-signature": stale, "x-request-id": request_id},
                            delivered.query, body),
    }[why]  # fmt: skip

    with pytest.raises(InvalidCallback):
        adapter.parse_callback(headers=headers, query=query, body=payload)


def test_a_re_signed_notification_within_the_tolerance_is_accepted(
    adapter: MercadoPagoAdapter, delivered: Delivery
) -> None:
    data_id, request_id = delivered.query["data.id"], str(uuid.uuid4())
    signature = _signed(data_id, at=int(time.time()) - 200, request_id=request_id)
    headers = {"x-signature": signature, "x-request-id": request_id}

    event = adapter.parse_callback(headers=headers, query=delivered.query, body=delivered.body)

    assert event.reference == data_id


def test_a_notification_without_a_request_id_is_accepted(
    adapter: MercadoPagoAdapter, delivered: Delivery
) -> None:
    """Without an x-request-id header, Mercado Pago signs a manifest without the pair."""
    data_id, now = delivered.query["data.id"], int(time.time())
    manifest = f"id:{data_id};ts:{now};"
    digest = hmac.new(WEBHOOK_SECRET.encode(), manifest.encode(), hashlib.sha256).hexdigest()
    headers = {"x-signature": f"ts={now},v1={digest}"}

    event = adapter.parse_callback(headers=headers, query=delivered.query, body=delivered.body)

    assert (event.reference, event.event_id) == (data_id, str(json.loads(delivered.body)["id"]))


MALFORMED = "mercadopago: malformed notification"


@pytest.mark.parametrize(
    ("headers", "query", "body", "reason"),
    [
        ({"x-request-id": "r"}, None, None, "mercadopago: MissingSignatureHeader"),
        ({"x-signature": "garbage", "x-request-id": "r"}, None, None,
         "mercadopago: MalformedSignatureHeader"),
        ({"x-signature": "ts=abc,v1=00", "x-request-id": "r"}, None, None,
         "mercadopago: MalformedSignatureHeader"),
        (None, None, b"not json", MALFORMED),
        (None, None, b"[]", MALFORMED),
        (None, None, b'{"data": {}}', MALFORMED),
        (None, None, b'{"data": "x"}', MALFORMED),
        (None, None, b"\xff", MALFORMED),
        (None, {"data.id": "other"}, None,
         "mercadopago: the body names another payment than the query"),
    ],
    ids=[
        "no signature",
        "garbage signature",
        "bad timestamp",
        "not json",
        "a list",
        "no data id",
        "data not an object",
        "not utf-8",
        "body and query disagree",
    ],
)  # fmt: skip
def test_malformed_callbacks_are_invalid(
    adapter: MercadoPagoAdapter,
    delivered: Delivery,
    headers: dict[str, str] | None,
    query: dict[str, str] | None,
    body: bytes | None,
    reason: str,
) -> None:
    """Refused with the reason a rejected callback keeps (its detail) for an operator."""
    with pytest.raises(InvalidCallback) as refused:
        adapter.parse_callback(
            headers=delivered.headers if headers is None else headers,
            query=delivered.query if query is None else query,
            body=delivered.body if body is None else body,
        )

    assert str(refused.value) == reason
