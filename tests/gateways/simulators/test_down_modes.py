"""Outage modes (`down_mode`) as a client sees them, on the shared port and on each
gateway's own port, and whether the request was handled (a charge recorded)."""

import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import mercadopago
import pytest
import requests
import stripe
from gerencianet.exceptions import UnauthorizedError
from paypalserversdk.exceptions.error_exception import ErrorException

from gateways.simulators import SimulatorConfig, SimulatorServer
from gateways.simulators.config import (
    SANDBOX_GERENCIANET_CLIENT_ID,
    SANDBOX_GERENCIANET_CLIENT_SECRET,
    SANDBOX_PAYPAL_CLIENT_ID,
    SANDBOX_PAYPAL_CLIENT_SECRET,
)
from tests.gateways.simulators.conftest import (
    MP_TOKEN,
    RebasedHttpClient,
    card_params,
    cob_body,
    gerencianet_sdk,
    mp_options,
    paypal_client,
    paypal_order,
    pix_payment,
    point_gerencianet_at,
    stripe_client,
)

HANG_MS = 1000
CLIENT_TIMEOUT_S = 5.0


def client_timeout(mode_name: str) -> float:
    """Shorter than HANG_MS for a hang (a read timeout), ample for the others."""
    return 0.3 if mode_name == "hang" else CLIENT_TIMEOUT_S


GATEWAYS = ("stripe", "mercadopago", "gerencianet", "paypal")


@dataclass(frozen=True)
class Mode:
    own_port: str  # what a client of the gateway's own port observes
    shared_port: str  # what a client of the shared port observes
    handled: bool  # the charge is made and recorded


# The table of gateways/simulators/README.md ("Faults").
MODES = {
    "refuse": Mode("refused", "reset", handled=False),
    "reset_before_read": Mode("reset", "reset", handled=False),
    "reset": Mode("reset", "reset", handled=False),
    "reset_after_read": Mode("reset", "reset", handled=True),
    "hang": Mode("timeout", "timeout", handled=True),
    "502": Mode("502", "502", handled=True),
    "503": Mode("503", "503", handled=False),
    "504": Mode("504", "504", handled=True),
}
HANDLING_MODES = [name for name, mode in MODES.items() if mode.handled]


@pytest.fixture
def sim() -> Iterator[SimulatorServer]:
    config = SimulatorConfig(hang_ms=HANG_MS)
    with SimulatorServer("127.0.0.1", 0, config=config, gateway_ports=True) as server:
        yield server


@pytest.fixture
def control(sim: SimulatorServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sim.base_url + "/_sim", timeout=10) as client:
        yield client


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def raw(self) -> bytes:
        head = [
            f"{self.method} {self.path} HTTP/1.1",
            "Host: 127.0.0.1",
            "Connection: close",
            f"Content-Length: {len(self.body)}",
            *(f"{name}: {value}" for name, value in self.headers.items()),
        ]
        return "\r\n".join(head).encode() + b"\r\n\r\n" + self.body


def gerencianet_token(base_url: str) -> str:
    answer = httpx.post(
        base_url + "/gerencianet/oauth/token",
        auth=(SANDBOX_GERENCIANET_CLIENT_ID, SANDBOX_GERENCIANET_CLIENT_SECRET),
        json={"grant_type": "client_credentials"},
    )
    answer.raise_for_status()
    return answer.json()["access_token"]


def paypal_token(base_url: str) -> str:
    answer = httpx.post(
        base_url + "/paypal/v1/oauth2/token",
        auth=(SANDBOX_PAYPAL_CLIENT_ID, SANDBOX_PAYPAL_CLIENT_SECRET),
        data={"grant_type": "client_credentials"},
    )
    answer.raise_for_status()
    return answer.json()["access_token"]


def paypal_create(reference: str, base_url: str) -> Call:
    headers = {
        "Authorization": f"Bearer {paypal_token(base_url)}",  # taken while calm
        "PayPal-Request-Id": f"key-{reference}",
        "Content-Type": "application/json",
    }
    unit = {"amount": {"currency_code": "BRL", "value": "10.50"}, "custom_id": reference}
    body = json.dumps({"intent": "CAPTURE", "purchase_units": [unit]}).encode()
    return Call("POST", "/paypal/v2/checkout/orders", headers, body)


def charge_create(gateway: str, reference: str, base_url: str) -> Call:
    """The request that creates a charge, with an idempotency key (Efí's: the txid)."""
    if gateway == "paypal":
        return paypal_create(reference, base_url)
    if gateway == "stripe":
        form = {
            "amount": "1050",
            "currency": "brl",
            "payment_method": "pm_card_visa",
            "confirm": "true",
            "metadata[payment_id]": reference,
        }
        headers = {
            "Authorization": "Bearer sk_test_x",
            "Idempotency-Key": f"key-{reference}",
            "Content-Type": "application/x-www-form-urlencoded",
        }
        return Call("POST", "/stripe/v1/payment_intents", headers, urlencode(form).encode())
    if gateway == "mercadopago":
        headers = {
            "Authorization": "Bearer TEST-token",
            "X-Idempotency-Key": f"key-{reference}",
            "Content-Type": "application/json",
        }
        return Call(
            "POST", "/mercadopago/v1/payments", headers, json.dumps(pix_payment(reference)).encode()
        )
    headers = {
        "Authorization": f"Bearer {gerencianet_token(base_url)}",  # taken while calm
        "Content-Type": "application/json",
    }
    txid = reference.ljust(26, "0")
    body = json.dumps(cob_body(reference)).encode()
    return Call("PUT", f"/gerencianet/v2/cob/{txid}", headers, body)


def observe(port: int, call: Call, timeout: float = CLIENT_TIMEOUT_S) -> str:
    """What a client sees at the socket: "refused", "reset", "timeout", "closed" (EOF
    without an answer) or the answer's status.

    A reset can reach the client while it connects, sends (a broken pipe after the
    reset) or reads, depending on when it arrives."""
    try:
        connection = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    except ConnectionRefusedError:
        return "refused"
    except ConnectionResetError:
        return "reset"
    with connection:
        try:
            connection.sendall(call.raw())
            first = connection.recv(65536)
        except (ConnectionResetError, BrokenPipeError):
            return "reset"
        except TimeoutError:
            return "timeout"
    return first.split(b" ", 2)[1].decode() if first else "closed"


def answer_json(port: int, call: Call) -> tuple[int, Any]:
    answer = httpx.request(
        call.method,
        f"http://127.0.0.1:{port}{call.path}",
        headers=call.headers,
        content=call.body,
        timeout=10,
    )
    return answer.status_code, answer.json()


def charge_id(gateway: str, data: Any) -> str:
    return str(data["txid"] if gateway == "gerencianet" else data["id"])


@pytest.mark.parametrize("port_kind", ["own", "shared"])
@pytest.mark.parametrize("gateway", GATEWAYS)
@pytest.mark.parametrize("mode_name", MODES)
def test_each_mode_as_a_client_sees_it_and_whether_the_charge_was_made(
    sim: SimulatorServer, control: httpx.Client, mode_name: str, gateway: str, port_kind: str
) -> None:
    mode = MODES[mode_name]
    port = sim.gateway_port(gateway) if port_kind == "own" else sim.port
    reference = f"pwdown{mode_name.replace('_', '')}"
    call = charge_create(gateway, reference, sim.base_url)
    earlier = len(control.get("/requests").json())  # Efí's token, taken while calm
    settings = {"down": True, "down_mode": mode_name}
    assert control.put(f"/faults/{gateway}", json=settings).json()["down_mode"] == mode_name

    observed = observe(port, call, timeout=client_timeout(mode_name))

    expected = mode.own_port if port_kind == "own" else mode.shared_port
    assert observed == expected
    recorded = control.get("/charges", params={"reference": reference}).json()
    assert len(recorded) == (1 if mode.handled else 0)
    logged = [
        (r["method"], r["path"], r["verdict"], r["status"])
        for r in control.get("/requests").json()[earlier:]
    ]
    counts = control.get("/faults").json()[gateway]["counts"]
    verdict = f"down:{mode_name}"
    status = int(mode_name) if mode_name.isdigit() else None
    if observed == "refused":  # the kernel refused: nothing reached the simulator
        assert logged == []
        assert set(counts.values()) == {0}
    elif (port_kind, mode_name) == ("own", "reset_before_read"):  # not even the head read
        assert logged == [(None, None, verdict, None)]
        assert counts[verdict] == 1
    else:
        assert logged == [(call.method, call.path, verdict, status)]
        assert counts[verdict] == 1
    assert sum(counts.values()) == len(logged)

    # Calm again, the same request on the same port: a handled one replays its saved
    # answer (the same charge), one not handled is charged now; one charge either way.
    control.delete(f"/faults/{gateway}")
    status_code, data = answer_json(port, call)
    assert status_code in (200, 201)
    [charge] = control.get("/charges", params={"reference": reference}).json()
    assert charge_id(gateway, data) == charge["id"]
    if mode.handled:
        assert charge == recorded[0]


def test_refuse_closes_only_that_gateways_port_until_the_fault_is_cleared(
    sim: SimulatorServer, control: httpx.Client
) -> None:
    balance = Call("GET", "/stripe/v1/balance", {"Authorization": "Bearer sk_test_x"}, b"")
    stripe_port = sim.gateway_port("stripe")
    # Set through Stripe's own port: the answer still arrives, then the port is closed.
    own_control = f"{sim.gateway_base_url('stripe')}/_sim/faults/stripe"
    refused = httpx.put(own_control, json={"down": True, "down_mode": "refuse"}, timeout=10)
    assert refused.json()["down_mode"] == "refuse"

    assert observe(stripe_port, balance) == "refused"
    assert observe(stripe_port, balance) == "refused"
    assert observe(sim.port, balance) == "reset"  # the shared port cannot refuse per gateway
    users_me = Call("GET", "/mercadopago/users/me", {"Authorization": "Bearer t"}, b"")
    assert observe(sim.gateway_port("mercadopago"), users_me) == "200"
    assert control.get("/ports").json()["stripe"] == stripe_port  # still its port

    control.delete("/faults/stripe")
    assert observe(stripe_port, balance) == "200"  # the same port listens again

    control.put("/faults/stripe", json={"down": True, "down_mode": "refuse"})
    assert observe(stripe_port, balance) == "refused"
    control.put("/faults/stripe", json={"down": True, "down_mode": "503"})  # changed
    assert observe(stripe_port, balance) == "503"

    control.put("/faults/stripe", json={"down": True, "down_mode": "refuse"})
    control.post("/reset")
    assert observe(stripe_port, balance) == "200"


def test_a_port_closed_and_opened_again_keeps_its_running_connections(
    sim: SimulatorServer, control: httpx.Client
) -> None:
    port = sim.gateway_port("mercadopago")
    users_me = Call("GET", "/mercadopago/users/me", {"Authorization": "Bearer t"}, b"")
    control.put("/faults/mercadopago", json={"down": True, "down_mode": "hang"})
    hanging: list[str] = []
    client = threading.Thread(target=lambda: hanging.append(observe(port, users_me)))
    client.start()
    deadline = time.monotonic() + 5
    while not control.get("/requests").json() and time.monotonic() < deadline:
        time.sleep(0.02)

    control.put("/faults/mercadopago", json={"down": True, "down_mode": "refuse"})
    assert observe(port, users_me) == "refused"
    control.delete("/faults/mercadopago")
    assert observe(port, users_me) == "200"
    client.join(timeout=5)

    assert hanging == ["closed"]  # held for hang_ms, then closed with no answer


def test_hang_holds_the_connection_for_hang_ms_then_closes_it_unanswered(
    sim: SimulatorServer, control: httpx.Client
) -> None:
    call = charge_create("stripe", "pwhang", sim.base_url)
    control.put("/faults/stripe", json={"down": True, "down_mode": "hang", "hang_ms": 300})

    started = time.monotonic()
    observed = observe(sim.gateway_port("stripe"), call)

    assert observed == "closed"
    assert 0.3 <= time.monotonic() - started < 5
    assert len(control.get("/charges", params={"reference": "pwhang"}).json()) == 1


def test_502_and_504_answer_in_each_gateways_error_shape(
    sim: SimulatorServer, control: httpx.Client
) -> None:
    for status in (502, 504):
        for gateway in GATEWAYS:
            control.put(f"/faults/{gateway}", json={"down": True, "down_mode": str(status)})
        stripe_answer = httpx.get(sim.base_url + "/stripe/v1/balance")
        mp_answer = httpx.get(sim.base_url + "/mercadopago/users/me")
        gn_answer = httpx.post(sim.base_url + "/gerencianet/oauth/token")  # OAuth included
        pp_answer = httpx.post(sim.base_url + "/paypal/v1/oauth2/token")

        answers = [stripe_answer, mp_answer, gn_answer, pp_answer]
        assert [answer.status_code for answer in answers] == [status] * 4
        assert stripe_answer.json()["error"]["type"] == "api_error"
        assert mp_answer.json()["status"] == status
        assert gn_answer.headers["content-type"] == "application/problem+json"
        assert gn_answer.json()["status"] == status
        assert pp_answer.json()["name"] == {502: "BAD_GATEWAY", 504: "GATEWAY_TIMEOUT"}[status]


def test_the_control_api_is_never_faulted(sim: SimulatorServer, control: httpx.Client) -> None:
    for mode_name in MODES:
        for gateway in GATEWAYS:
            control.put(f"/faults/{gateway}", json={"down": True, "down_mode": mode_name})
        assert control.get("/health").json() == {"ok": True}
        assert httpx.get(sim.base_url + "/_sim/charges").status_code == 200


def test_every_mode_is_accepted_and_others_are_refused(control: httpx.Client) -> None:
    for mode_name in MODES:
        answer = control.put("/faults/stripe", json={"down": True, "down_mode": mode_name})
        assert answer.json()["down_mode"] == mode_name

    wrong = control.put("/faults/stripe", json={"down": True, "down_mode": "500"})
    assert wrong.status_code == 400
    assert "reset_after_read" in wrong.json()["error"]
    assert control.put("/faults/stripe", json={"down": True}).json()["down_mode"] == "reset"
    assert set(control.get("/faults").json()["stripe"]["counts"]) == {
        "pass",
        "error",
        "timeout",
        *(f"down:{mode_name}" for mode_name in MODES),
    }


def test_ports_lists_the_shared_and_each_gateways_port(
    sim: SimulatorServer, control: httpx.Client
) -> None:
    ports = control.get("/ports").json()

    assert ports == {"shared": sim.port, **sim.gateway_ports}
    assert set(sim.gateway_ports) == set(GATEWAYS)
    assert len(set(ports.values())) == 1 + len(GATEWAYS)
    assert sim.gateway_base_url("gerencianet") == f"http://127.0.0.1:{ports['gerencianet']}"


def test_without_gateway_ports_only_the_shared_port_is_listed() -> None:
    with SimulatorServer("127.0.0.1", 0) as server:
        assert httpx.get(server.base_url + "/_sim/ports").json() == {"shared": server.port}
        with pytest.raises(KeyError):
            server.gateway_port("stripe")


def test_gateway_ports_can_be_chosen() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free = probe.getsockname()[1]
    with SimulatorServer("127.0.0.1", 0, gateway_ports={"stripe": free}) as server:
        assert server.gateway_port("stripe") == free
        assert set(server.gateway_ports) == set(GATEWAYS)
    with pytest.raises(ValueError, match="adyen"):
        SimulatorServer("127.0.0.1", 0, gateway_ports={"adyen": free})


@pytest.mark.parametrize("mode_name", HANDLING_MODES)
def test_the_state_file_keeps_what_the_handling_modes_charged(
    tmp_path: Path, mode_name: str
) -> None:
    config = SimulatorConfig(hang_ms=HANG_MS, state_file=str(tmp_path / "sim.sqlite3"))
    with SimulatorServer("127.0.0.1", 0, config=config, gateway_ports=True) as server:
        call = charge_create("stripe", "pwstate", server.base_url)
        httpx.put(
            server.base_url + "/_sim/faults/stripe", json={"down": True, "down_mode": mode_name}
        )
        observed = observe(server.gateway_port("stripe"), call, client_timeout(mode_name))
        assert observed == MODES[mode_name].own_port

    with SimulatorServer("127.0.0.1", 0, config=config) as server:
        [recorded] = httpx.get(server.base_url + "/_sim/charges").json()
        status_code, replayed = answer_json(server.port, call)  # the saved answer
        assert (status_code, replayed["id"]) == (200, recorded["id"])
        assert len(httpx.get(server.base_url + "/_sim/charges").json()) == 1


# Through the real SDKs, pointed at each gateway's own port.

CONNECTION_LOST = ["refuse", "reset_before_read", "reset", "reset_after_read"]
ANSWERED = ["502", "503", "504"]


def down(control: httpx.Client, gateway: str, mode_name: str) -> None:
    settings = {"down": True, "down_mode": mode_name}  # hang: HANG_MS
    control.put(f"/faults/{gateway}", json=settings).raise_for_status()


@pytest.mark.parametrize("mode_name", MODES)
def test_the_stripe_sdk_in_each_mode(
    sim: SimulatorServer, control: httpx.Client, mode_name: str
) -> None:
    client = stripe_client(sim.gateway_base_url("stripe"), timeout=client_timeout(mode_name))
    down(control, "stripe", mode_name)

    with pytest.raises(stripe.StripeError) as raised:
        client.v1.payment_intents.create(params=card_params(), options={"idempotency_key": "k"})

    if mode_name in ANSWERED:
        assert type(raised.value) is stripe.APIError
        assert raised.value.http_status == int(mode_name)
    else:
        assert type(raised.value) is stripe.APIConnectionError
    charged = control.get("/charges", params={"gateway": "stripe"}).json()
    assert len(charged) == (1 if MODES[mode_name].handled else 0)


@pytest.mark.parametrize("mode_name", MODES)
def test_the_mercado_pago_sdk_in_each_mode(
    sim: SimulatorServer, control: httpx.Client, mode_name: str
) -> None:
    base_url = sim.gateway_base_url("mercadopago") + "/mercadopago"
    sdk = mercadopago.SDK(MP_TOKEN, http_client=RebasedHttpClient(base_url))
    down(control, "mercadopago", mode_name)

    def create() -> Any:
        return sdk.payment().create(
            pix_payment(), mp_options("k", timeout=client_timeout(mode_name))
        )

    if mode_name in ANSWERED:
        assert create()["status"] == int(mode_name)
    elif mode_name == "hang":
        with pytest.raises(requests.exceptions.ReadTimeout):
            create()
    else:
        with pytest.raises(requests.exceptions.ConnectionError) as raised:
            create()
        if mode_name == "refuse":
            assert "Connection refused" in str(raised.value)
    charged = control.get("/charges", params={"gateway": "mercadopago"}).json()
    assert len(charged) == (1 if MODES[mode_name].handled else 0)


@pytest.mark.parametrize("mode_name", MODES)
def test_the_gerencianet_sdk_fails_at_oauth_in_each_mode(
    sim: SimulatorServer,
    control: httpx.Client,
    monkeypatch: pytest.MonkeyPatch,
    mode_name: str,
) -> None:
    point_gerencianet_at(monkeypatch, sim.gateway_base_url("gerencianet"))
    down(control, "gerencianet", mode_name)

    def create() -> Any:  # the SDK takes a token first, on every call
        txid = "Fault0123456789abcdefABCDEF0123"
        return gerencianet_sdk().pix_create_charge(params={"txid": txid}, body=cob_body())

    if mode_name in ANSWERED:
        with pytest.raises(UnauthorizedError, match=f"Status:{mode_name}"):
            create()
    else:  # the SDK sets no timeout: a hang ends when the connection is closed
        with pytest.raises(requests.exceptions.ConnectionError):
            create()
    assert control.get("/charges").json() == []
    logged = [(r["path"], r["verdict"]) for r in control.get("/requests").json()]
    if mode_name == "refuse":
        assert logged == []
    elif mode_name == "reset_before_read":
        assert logged == [(None, "down:reset_before_read")]
    else:
        assert logged == [("/gerencianet/oauth/token", f"down:{mode_name}")]


@pytest.mark.parametrize("mode_name", MODES)
def test_the_paypal_sdk_in_each_mode(
    sim: SimulatorServer, control: httpx.Client, mode_name: str
) -> None:
    sdk = paypal_client(sim.gateway_base_url("paypal"), timeout=client_timeout(mode_name))
    assert sdk.oauth_2.is_valid()  # the token, taken while calm
    down(control, "paypal", mode_name)

    def create() -> Any:
        return sdk.orders.create_order({"body": paypal_order(), "paypal_request_id": "k"})

    if mode_name in ANSWERED:
        with pytest.raises(ErrorException) as raised:
            create()
        assert raised.value.response_code == int(mode_name)
    elif mode_name == "hang":
        with pytest.raises(requests.exceptions.ReadTimeout):
            create()
    else:
        with pytest.raises(requests.exceptions.ConnectionError) as raised:
            create()
        if mode_name == "refuse":
            assert "Connection refused" in str(raised.value)
    charged = control.get("/charges", params={"gateway": "paypal"}).json()
    assert len(charged) == (1 if MODES[mode_name].handled else 0)
