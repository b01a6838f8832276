"""Fixtures for tests against the gateway simulators over HTTP, through the real SDKs.

Most tests drive a payment's steps in process (`drive`): each step is what one
job does, and the countdown it asks for is recorded instead of waited for.
tests/payments/processing/test_worker.py runs real Celery workers over RabbitMQ instead.
"""

import importlib
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from django.conf import LazySettings

from gateways.models import Gateway
from gateways.simulators import SimulatorConfig, SimulatorServer
from gateways.simulators.config import SANDBOX_WEBHOOK_SECRETS
from payments.models import Payment
from payments.processing import NextStep, payment_process_step
from tests.factories import PaymentFactory

# Gateway calls time out after this; a simulator "timeout" fault holds the answer longer.
GATEWAY_TIMEOUT_MS = 600
HANG_MS = 2000
SEED_GATEWAYS = [
    *importlib.import_module("gateways.migrations.0002_seed_gateways").SEED,
    *importlib.import_module("gateways.migrations.0007_seed_paypal").SEED,
]


@pytest.fixture(scope="session")
def simulator() -> Iterator[SimulatorServer]:
    with SimulatorServer("127.0.0.1", 0, config=SimulatorConfig(hang_ms=HANG_MS)) as server:
        yield server


@pytest.fixture
def sim(simulator: SimulatorServer) -> Iterator["SimControl"]:
    control = SimControl(simulator.base_url)
    control.reset_faults()
    yield control
    control.reset_faults()
    control.close()


@pytest.fixture
def capture(sim: "SimControl") -> Iterator["SimControl"]:
    """The simulators sign each callback and hand it back in their answer instead of sending it."""
    for gateway in SANDBOX_WEBHOOK_SECRETS:
        sim.http.put(
            f"/callbacks/{gateway}", json={"url": f"capture://paywave/webhooks/{gateway}"}
        ).raise_for_status()
    yield sim
    for gateway in SANDBOX_WEBHOOK_SECRETS:
        sim.http.put(f"/callbacks/{gateway}", json={"url": ""})


class SimControl:
    """The simulators' control API (/_sim), as the chaos harness and operators use it."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.http = httpx.Client(base_url=base_url + "/_sim", timeout=10)

    def close(self) -> None:
        self.http.close()

    def reset_faults(self) -> None:
        self.http.delete("/faults").raise_for_status()

    def faults(self, gateway: str, **knobs: Any) -> None:
        self.http.put(f"/faults/{gateway}", json=knobs).raise_for_status()

    def charges(self, reference: Any = None, gateway: str | None = None) -> list[dict[str, Any]]:
        params = {"reference": str(reference)} if reference is not None else {}
        if gateway:
            params["gateway"] = gateway
        response = self.http.get("/charges", params=params)
        response.raise_for_status()
        body = response.json()
        return body["charges"] if isinstance(body, dict) else body


@pytest.fixture
def processing_settings(settings: LazySettings, simulator: SimulatorServer) -> LazySettings:
    settings.PAYWAVE_SANDBOX = True
    settings.PAYWAVE_SIMULATOR_URL = simulator.base_url
    settings.PAYWAVE_RETRY_BASE_SECONDS = 1.0
    settings.PAYWAVE_RETRY_FACTOR = 2.0
    settings.PAYWAVE_RETRY_JITTER = 0.2
    settings.PAYWAVE_TRIES_PER_GATEWAY = 3
    settings.PAYWAVE_CIRCUIT_THRESHOLD = 100
    return settings


@pytest.fixture
def gateways(db: Any, processing_settings: LazySettings) -> dict[str, Gateway]:
    """The seeded gateways (re-created after a transactional test flushed them), fast timeouts."""
    rows = {}
    for seed in SEED_GATEWAYS:
        gateway, _ = Gateway.objects.update_or_create(
            code=seed["code"], defaults={**seed, "enabled": True, "timeout_ms": GATEWAY_TIMEOUT_MS}
        )
        rows[gateway.code] = gateway
    Gateway.objects.exclude(code__in=rows).delete()
    return rows


@pytest.fixture
def second_stripe(gateways: dict[str, Gateway]) -> Gateway:
    """Another Stripe account behind the first, for card fallback."""
    return Gateway.objects.create(
        code="stripe-backup",
        adapter="stripe",
        display_name="Stripe (backup account)",
        priority=20,
        methods=["card"],
        currencies=["BRL", "USD"],
        countries=[],
        timeout_ms=GATEWAY_TIMEOUT_MS,
    )


@pytest.fixture
def pix_payment(gateways: dict[str, Gateway]) -> Callable[..., Payment]:
    def make(**fields: Any) -> Payment:
        return PaymentFactory(**fields)

    return make


@pytest.fixture
def card_payment(gateways: dict[str, Gateway]) -> Callable[..., Payment]:
    def make(card_token: str = "pm_card_visa", **fields: Any) -> Payment:  # noqa: S107
        return PaymentFactory(card=True, card_token=card_token, **fields)

    return make


@pytest.fixture
def paypal_payment(gateways: dict[str, Gateway]) -> Callable[..., Payment]:
    def make(**fields: Any) -> Payment:
        return PaymentFactory(paypal=True, **fields)

    return make


class Drive:
    """What driving a payment to rest did: the steps asked for, the final payment."""

    def __init__(self, payment: Payment, steps: list[NextStep]) -> None:
        self.payment = payment
        self.steps = steps

    @property
    def countdowns(self) -> list[float]:
        return [step.countdown for step in self.steps]


def drive(
    payment: Payment, *, max_steps: int = 30, before_step: Callable[[int], None] | None = None
) -> Drive:
    """Run the payment's jobs one after another, as workers would, until none is left."""
    token: str | None = str(payment.dispatch_token)
    steps: list[NextStep] = []
    for number in range(max_steps):
        if before_step:
            before_step(number)
        step = payment_process_step(payment.pk, token)
        if step is None:
            payment.refresh_from_db()
            return Drive(payment, steps)
        steps.append(step)
        token = step.token
    raise AssertionError(f"payment {payment.pk} still had work after {max_steps} steps")
