"""The adapters, built directly, against one simulator server per test module.

Nothing is mocked: each adapter drives its real SDK over HTTP to the simulators.
Every test starts from a reset simulator (no charges, faults or callback targets).
"""

import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from gateways.base import ChargeRequest, Payer
from gateways.credentials import SANDBOX_VALUES, Credentials
from gateways.simulators import SimulatorConfig, SimulatorServer

HANG_MS = 1500  # a timeout fault's hang; the adapters below give up long before
SHORT_TIMEOUT = 0.3  # seconds: an adapter that must see a read timeout
TIMEOUT = 5.0


def credentials(adapter: str) -> Credentials:
    """The real credentials reader on a prefix of its own: the sandbox values unless a
    test sets `<prefix><NAME>` (see `set_credential`)."""
    return Credentials(adapter=adapter, prefix=_prefix(adapter), sandbox=True)


def set_credential(monkeypatch: pytest.MonkeyPatch, adapter: str, name: str, value: str) -> None:
    monkeypatch.setenv(_prefix(adapter) + name, value)


def _prefix(adapter: str) -> str:
    return f"PAYWAVE_ADAPTER_TEST_{adapter.upper()}_"


def closed_port_url() -> str:
    """A URL on which nothing listens: connecting is refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"


def charge_request(
    *,
    key: str = "key-1",
    method: str = "pix",
    amount: int = 1050,
    card_token: str = "",
    payment_id: str = "pw-1",
    currency: str = "BRL",
    **extra: Any,
) -> ChargeRequest:
    return ChargeRequest(
        payment_id=payment_id,
        amount=amount,
        currency=currency,
        method=method,
        payer=Payer(
            name="Maria Silva", country="BR", email="maria@example.com", tax_id="52998224725"
        ),
        idempotency_key=key,
        card_token=card_token,
        **extra,
    )


@pytest.fixture(scope="module")
def sim() -> Iterator[SimulatorServer]:
    config = SimulatorConfig(
        hang_ms=HANG_MS,
        # Only the sandbox values pass, so a wrong key or token is refused (401).
        stripe_api_keys=frozenset({SANDBOX_VALUES["stripe"]["API_KEY"]}),
        mercadopago_access_tokens=frozenset({SANDBOX_VALUES["mercadopago"]["ACCESS_TOKEN"]}),
    )
    with SimulatorServer("127.0.0.1", 0, config=config, gateway_ports=True) as server:
        yield server


@pytest.fixture(scope="module")
def control(sim: SimulatorServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sim.base_url + "/_sim", timeout=10) as client:
        yield client


@pytest.fixture(autouse=True)
def _fresh_simulator(control: httpx.Client) -> None:
    assert control.post("/reset").status_code == 200


def faults(control: httpx.Client, gateway: str, **settings: Any) -> None:
    answer = control.put(f"/faults/{gateway}", json=settings)
    assert answer.status_code == 200, answer.text


def recorded_charges(control: httpx.Client, gateway: str, **query: str) -> list[dict[str, Any]]:
    return control.get("/charges", params={"gateway": gateway, **query}).json()


def requests_to(control: httpx.Client, path: str) -> list[dict[str, Any]]:
    return control.get("/requests", params={"path": path}).json()


@dataclass
class Delivery:
    """One callback as it arrived at the receiver."""

    path: str
    query: dict[str, str]  # single values, as a web framework's request.GET.get gives them
    headers: dict[str, str]  # names as sent
    body: bytes


@dataclass
class CallbackReceiver:
    url: str
    deliveries: list[Delivery] = field(default_factory=list)

    def only(self) -> Delivery:
        [delivery] = self.deliveries
        return delivery


@pytest.fixture
def receiver() -> Iterator[CallbackReceiver]:
    """A local HTTP server the simulators deliver callbacks to; it answers 200."""
    state = CallbackReceiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            split = urlsplit(self.path)
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            query = {name: values[-1] for name, values in parse_qs(split.query).items()}
            state.deliveries.append(Delivery(split.path, query, dict(self.headers.items()), body))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)
