"""What a failure means, per gateway (docs/gateways.md): the rows where nothing was sent.

Each failure is produced for real on this machine (a name that cannot resolve, a
listener whose queue is full, a server that resets the TLS handshake) and reached
through the adapter's real SDK. Nothing was sent, so each one is Retryable: the
engine may try again, and go to another gateway, without a lookup.

The rows where the request was sent (resets, hangs, 5xx) are in each adapter's
`test_error_mapping`, against the simulators' fault modes.
"""

import socket
import struct
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import httpx
import pytest
import requests
from urllib3 import HTTPConnectionPool
from urllib3.exceptions import EmptyPoolError

from gateways.adapters._common import replay_charge
from gateways.base import (
    ChargeRequest,
    ChargeResult,
    ChargeStatus,
    Declined,
    GatewayAdapter,
    GatewayError,
    Retryable,
)
from gateways.simulators import SimulatorServer
from gateways.transport import transport_error
from tests.gateways.adapters.conftest import charge_request
from tests.gateways.adapters.test_gerencianet import gerencianet_at
from tests.gateways.adapters.test_mercadopago import mercadopago_at
from tests.gateways.adapters.test_paypal import paypal, paypal_at
from tests.gateways.adapters.test_stripe import stripe_at

TIMEOUT = 0.5


@contextmanager
def full_listener() -> Iterator[str]:
    """A port that accepts nothing more: its queue is full, so a connect times out."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(0)
        port = server.getsockname()[1]
        queued = []
        for _ in range(3):  # fill the accept queue; later SYNs are dropped
            client = socket.socket()
            client.setblocking(False)
            client.connect_ex(("127.0.0.1", port))
            queued.append(client)
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            for client in queued:
                client.close()


@contextmanager
def handshake_resetter() -> Iterator[str]:
    """An https:// address whose server resets every connection during the TLS handshake."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                connection, _ = server.accept()
            except TimeoutError:
                continue
            connection.recv(4096)  # the ClientHello
            connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            connection.close()  # RST

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.getsockname()[1]}"
    finally:
        stop.set()
        thread.join()
        server.close()


@contextmanager
def unresolvable() -> Iterator[str]:
    yield "http://gateway.invalid"  # RFC 2606: never resolves


ADAPTERS: dict[str, Callable[[str], GatewayAdapter]] = {
    "stripe": lambda url: stripe_at(url, timeout=TIMEOUT),
    "mercadopago": lambda url: mercadopago_at(url, timeout=TIMEOUT),
    "gerencianet": lambda url: gerencianet_at(url, timeout=TIMEOUT),
    "paypal": lambda url: paypal_at(url, timeout=TIMEOUT),
}
NOT_SENT = {"name resolution failed": unresolvable, "connect timeout": full_listener,
            "TLS handshake failed": handshake_resetter}  # fmt: skip


def _request_for(gateway: str) -> object:
    if gateway == "stripe":
        return charge_request(method="card", card_token="pm_card_visa")
    if gateway == "paypal":
        return paypal()
    return charge_request()


@pytest.mark.parametrize("row", NOT_SENT, ids=NOT_SENT)
@pytest.mark.parametrize("gateway", ADAPTERS)
def test_a_request_that_never_left_is_retryable(
    gateway: str, row: str, sim: SimulatorServer, control: httpx.Client
) -> None:
    adapter = ADAPTERS[gateway](sim.base_url)
    if gateway == "gerencianet":
        adapter.health()  # an OAuth token in hand: the failure meets the charge itself
    if gateway == "paypal":
        assert adapter._sdk.oauth_2.is_valid()  # type: ignore[attr-defined]  # the same
    reached_before = len(control.get("/requests", params={"gateway": gateway}).json())
    with NOT_SENT[row]() as failing_url:
        if gateway == "gerencianet":
            adapter._sdk._paywave_base_url = failing_url + "/gerencianet"  # type: ignore[attr-defined]
        elif gateway == "paypal":
            adapter._sdk.config.base_url = failing_url + "/paypal"  # type: ignore[attr-defined]
        else:
            adapter = ADAPTERS[gateway](failing_url)

        with pytest.raises(GatewayError) as raised:
            adapter.charge(_request_for(gateway))  # type: ignore[arg-type]

    assert type(raised.value) is Retryable, raised.value
    assert "not sent" in raised.value.message
    assert len(control.get("/requests", params={"gateway": gateway}).json()) == reached_before


def test_no_free_pooled_connection_is_retryable() -> None:
    """Our sessions' pools never block (a busy pool opens another connection); a pool
    that does and has none free has sent nothing."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        pool = HTTPConnectionPool("127.0.0.1", server.getsockname()[1], maxsize=1, block=True)
        held = pool._get_conn()
        try:
            with pytest.raises(EmptyPoolError) as raised:
                pool.urlopen("GET", "/", pool_timeout=0.05, retries=False)
        finally:
            pool._put_conn(held)
            pool.close()

    assert type(transport_error(raised.value, gateway="x")) is Retryable


def test_a_reset_after_the_handshake_is_not_taken_for_a_handshake_failure() -> None:
    """The same exception type as a handshake reset, but the request had left: Ambiguous."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)

        def read_then_reset() -> None:
            connection, _ = server.accept()
            connection.recv(65536)
            connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            connection.close()

        thread = threading.Thread(target=read_then_reset)
        thread.start()
        adapter = mercadopago_at(f"http://127.0.0.1:{server.getsockname()[1]}", timeout=2)
        with pytest.raises(GatewayError) as raised:
            adapter.charge(charge_request())
        thread.join()

    assert type(raised.value).__name__ == "Ambiguous", raised.value
    assert isinstance(raised.value.__cause__, requests.ConnectionError)


def test_a_replayed_create_the_gateway_refuses_is_a_failed_charge_not_a_missing_one() -> None:
    def refuse(request: ChargeRequest) -> ChargeResult:
        raise Declined("x: the card was refused", code="card_declined")

    found = replay_charge(refuse, charge_request(method="card", key="k"))

    assert found == ChargeResult(
        status=ChargeStatus.FAILED, reference="", raw_status="declined",
        failure_code="card_declined", failure_message="x: the card was refused",
    )  # fmt: skip
