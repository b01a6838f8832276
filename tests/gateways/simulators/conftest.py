"""Simulators on a free port, the real SDKs pointed at them, and a callback receiver."""

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import mercadopago
import pytest
import stripe
from gerencianet import Gerencianet
from gerencianet.constants import Constants
from mercadopago.config import RequestOptions
from mercadopago.http import HttpClient
from paypalserversdk.configuration import Configuration, Server
from paypalserversdk.http.auth.o_auth_2 import ClientCredentialsAuthCredentials
from paypalserversdk.models.amount_with_breakdown import AmountWithBreakdown
from paypalserversdk.models.checkout_payment_intent import CheckoutPaymentIntent
from paypalserversdk.models.order_application_context import OrderApplicationContext
from paypalserversdk.models.order_request import OrderRequest
from paypalserversdk.models.payment_source import PaymentSource
from paypalserversdk.models.paypal_wallet import PaypalWallet
from paypalserversdk.models.paypal_wallet_experience_context import (
    PaypalWalletExperienceContext,
)
from paypalserversdk.models.purchase_unit_request import PurchaseUnitRequest
from paypalserversdk.paypal_serversdk_client import PaypalServersdkClient

from gateways.simulators import SimulatorConfig, SimulatorServer
from gateways.simulators.config import (
    SANDBOX_GERENCIANET_CLIENT_ID,
    SANDBOX_GERENCIANET_CLIENT_SECRET,
    SANDBOX_PAYPAL_CLIENT_ID,
    SANDBOX_PAYPAL_CLIENT_SECRET,
)

HANG_MS = 1500  # a timeout fault's hang: longer than the clients' timeouts below, kept short
STRIPE_KEY = "sk_test_x"
MP_TOKEN = "TEST-token"


@pytest.fixture
def sim() -> Iterator[SimulatorServer]:
    with SimulatorServer("127.0.0.1", 0, config=SimulatorConfig(hang_ms=HANG_MS)) as server:
        yield server


@pytest.fixture
def control(sim: SimulatorServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sim.base_url + "/_sim", timeout=10) as client:
        yield client


def stripe_client(base_url: str, *, timeout: float = 10) -> stripe.StripeClient:
    return stripe.StripeClient(
        STRIPE_KEY,
        base_addresses={"api": base_url + "/stripe"},
        max_network_retries=0,
        http_client=stripe.RequestsClient(timeout=timeout),
    )


@pytest.fixture
def stripe_sdk(sim: SimulatorServer) -> stripe.StripeClient:
    return stripe_client(sim.base_url)


def card_params(payment_method: str = "pm_card_visa", **extra: Any) -> dict[str, Any]:
    return {
        "amount": 1050,
        "currency": "brl",
        "payment_method": payment_method,
        "payment_method_types": ["card"],
        "confirm": True,
        "metadata": {"payment_id": "pw_card_1"},
        "expand": ["payment_method"],
        **extra,
    }


class RebasedHttpClient(HttpClient):
    """Mercado Pago's own HTTP client, sent to the simulator instead of api.mercadopago.com."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        url = url.replace("https://api.mercadopago.com", self.base_url)
        return super().request(method, url, *args, **kwargs)


@pytest.fixture
def mp_sdk(sim: SimulatorServer) -> mercadopago.SDK:
    return mercadopago.SDK(MP_TOKEN, http_client=RebasedHttpClient(sim.base_url + "/mercadopago"))


def mp_options(idempotency_key: str | None = None, *, timeout: float = 10.0) -> RequestOptions:
    headers = {"X-Idempotency-Key": idempotency_key} if idempotency_key else None
    return RequestOptions(connection_timeout=timeout, custom_headers=headers, max_retries=0)


def pix_payment(reference: str = "pw_mp", amount: float = 10.5) -> dict[str, Any]:
    return {
        "transaction_amount": amount,
        "payment_method_id": "pix",
        "description": "PayWave test",
        "external_reference": reference,
        "payer": {
            "email": "maria@example.com",
            "first_name": "Maria",
            "identification": {"type": "CPF", "number": "12345678909"},
        },
    }


def point_gerencianet_at(monkeypatch: pytest.MonkeyPatch, base_url: str) -> None:
    monkeypatch.setitem(Constants.APIS["PIX"]["URL"], "sandbox", base_url + "/gerencianet")


def gerencianet_sdk(
    *, certificate: str | None = None, client_secret: str = SANDBOX_GERENCIANET_CLIENT_SECRET
) -> Gerencianet:
    return Gerencianet(
        {
            "client_id": SANDBOX_GERENCIANET_CLIENT_ID,
            "client_secret": client_secret,
            "sandbox": True,
            "certificate": certificate,
        }
    )


@pytest.fixture
def gn_sdk(sim: SimulatorServer, monkeypatch: pytest.MonkeyPatch) -> Gerencianet:
    point_gerencianet_at(monkeypatch, sim.base_url)
    return gerencianet_sdk()


def cob_body(reference: str = "pw_gn", amount: str = "12.34") -> dict[str, Any]:
    return {
        "calendario": {"expiracao": 3600},
        "devedor": {"cpf": "12345678909", "nome": "Maria Silva"},
        "valor": {"original": amount},
        "chave": "pix@paywave.example",
        "solicitacaoPagador": "PayWave test",
        "infoAdicionais": [{"nome": "payment_id", "valor": reference}],
    }


class SimulatorConfiguration(Configuration):
    """PayPal's SDK configuration with its one server (Server.DEFAULT) at the simulator."""

    def __init__(self, base_url: str, **options: Any) -> None:
        self.base_url = base_url
        super().__init__(**options)

    def get_base_uri(self, server: Server = Server.DEFAULT) -> str:
        return self.base_url


def paypal_client(
    base_url: str, *, timeout: float = 10, client_secret: str = SANDBOX_PAYPAL_CLIENT_SECRET
) -> PaypalServersdkClient:
    """The SDK at `<base_url>/paypal`, its own retries off (max_retries=0)."""
    credentials = ClientCredentialsAuthCredentials(SANDBOX_PAYPAL_CLIENT_ID, client_secret)
    config = SimulatorConfiguration(
        base_url + "/paypal",
        client_credentials_auth_credentials=credentials,
        timeout=timeout,
        max_retries=0,
    )
    return PaypalServersdkClient(config=config)


@pytest.fixture
def paypal_sdk(sim: SimulatorServer) -> PaypalServersdkClient:
    return paypal_client(sim.base_url)


RETURN_URL = "https://shop.example/paypal/return"
CANCEL_URL = "https://shop.example/paypal/cancel"


def paypal_order(
    reference: str = "pw_pp_1", value: str = "10.50", *, payment_source: bool = False
) -> OrderRequest:
    """An order for `value` BRL carrying PayWave's payment id as custom_id."""
    unit = PurchaseUnitRequest(
        amount=AmountWithBreakdown(currency_code="BRL", value=value),
        custom_id=reference,
        invoice_id=f"inv-{reference}",
    )
    if payment_source:
        context = PaypalWalletExperienceContext(return_url=RETURN_URL, cancel_url=CANCEL_URL)
        source = PaymentSource(paypal=PaypalWallet(experience_context=context))
        return OrderRequest(CheckoutPaymentIntent.CAPTURE, [unit], payment_source=source)
    context = OrderApplicationContext(return_url=RETURN_URL, cancel_url=CANCEL_URL)
    return OrderRequest(CheckoutPaymentIntent.CAPTURE, [unit], application_context=context)


@dataclass
class Received:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class CallbackReceiver:
    """A local HTTP server that records what it is sent and answers `status`."""

    url: str
    requests: list[Received] = field(default_factory=list)
    status: int = 200
    arrived: threading.Event = field(default_factory=threading.Event)


@pytest.fixture
def receiver() -> Iterator[CallbackReceiver]:
    state = CallbackReceiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            split = urlsplit(self.path)
            state.requests.append(
                Received(
                    method=self.command,
                    path=split.path,
                    query=parse_qs(split.query, keep_blank_values=True),
                    headers={name.lower(): value for name, value in self.headers.items()},
                    body=self.rfile.read(length),
                )
            )
            self.send_response(state.status)
            self.send_header("Content-Length", "0")
            self.end_headers()
            state.arrived.set()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()
