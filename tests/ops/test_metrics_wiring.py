"""Counters move when payments succeed and fail, driven through the real engine.

The counters move when the change commits (a rolled-back transition counts
nothing), so these tests commit for real.
"""

from typing import Any

import pytest
from prometheus_client import REGISTRY

from payments.models import AttemptOutcome
from payments.models import PaymentStatus as S
from tests.gateway_fixtures import drive

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]

WIRE_TRANSITION = "wire paywave.observability.metrics.record_transition in payments/transitions.py"
WIRE_ATTEMPT = "wire paywave.observability.metrics.record_attempt in payments/processing.py"


def transitions(to_status: str, method: str, gateway: str) -> float:
    labels = {"to_status": to_status, "method": method, "gateway": gateway}
    return REGISTRY.get_sample_value("paywave_payment_transitions_total", labels) or 0.0


def attempts(gateway: str, outcome: str) -> float:
    labels = {"gateway": gateway, "outcome": outcome}
    return REGISTRY.get_sample_value("paywave_gateway_attempt_seconds_count", labels) or 0.0


def test_a_successful_card_payment_moves_the_counters(card_payment: Any, sim: Any) -> None:
    succeeded = transitions(S.SUCCEEDED, "card", "stripe")
    calls = attempts("stripe", AttemptOutcome.SUCCEEDED)

    assert drive(card_payment()).payment.status == S.SUCCEEDED

    assert transitions(S.SUCCEEDED, "card", "stripe") == succeeded + 1, WIRE_TRANSITION
    assert attempts("stripe", AttemptOutcome.SUCCEEDED) == calls + 1, WIRE_ATTEMPT


def test_a_declined_card_payment_moves_the_failure_counters(card_payment: Any, sim: Any) -> None:
    failed = transitions(S.FAILED, "card", "stripe")
    declines = attempts("stripe", AttemptOutcome.DECLINED)

    assert drive(card_payment("pm_card_chargeDeclined")).payment.status == S.FAILED

    assert transitions(S.FAILED, "card", "stripe") == failed + 1, WIRE_TRANSITION
    assert attempts("stripe", AttemptOutcome.DECLINED) == declines + 1, WIRE_ATTEMPT


def test_retries_and_fallback_are_observed_per_gateway(pix_payment: Any, sim: Any) -> None:
    sim.faults("mercadopago", down=True, down_mode="503")
    retryable = attempts("mercadopago", AttemptOutcome.RETRYABLE)
    awaiting = transitions(S.AWAITING_PAYMENT, "pix", "gerencianet")

    assert drive(pix_payment()).payment.status == S.AWAITING_PAYMENT

    assert attempts("mercadopago", AttemptOutcome.RETRYABLE) == retryable + 3, WIRE_ATTEMPT
    assert transitions(S.AWAITING_PAYMENT, "pix", "gerencianet") == awaiting + 1, WIRE_TRANSITION
