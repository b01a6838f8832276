"""A charge the gateway took but has not decided (Stripe's `processing`, Mercado Pago's
`in_process`): the payment waits for it, whatever job runs its step again.

The outbox sweep, a redelivered job or a staff member's *Retry now* all run the
payment's step with its current token. Moving past a pending charge would charge the
payer at the next gateway while the first may still take the money, or fail a payment
the gateway then completes. The step reads the charge again instead: still undecided,
or unreadable, the payment keeps waiting (reconciliation reads it too); decided, it takes
that state.
"""

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from gateways.models import Gateway
from gateways.registry import adapter_for
from payments.charges import idempotency_key_for
from payments.models import AttemptOutcome, Payment, PaymentAttempt
from payments.models import PaymentStatus as S
from payments.processing import _on_result, payment_process_step
from payments.sweeps import payments_sweep_outbox

pytestmark = [pytest.mark.services, pytest.mark.django_db]


def unconfirmed_intent(stripe: Gateway, payment: Payment) -> str:
    """A PaymentIntent Stripe holds undecided (`requires_confirmation`): the adapter reads
    it as pending, as it reads `processing`."""
    intent = adapter_for(stripe)._client.v1.payment_intents.create(  # type: ignore[attr-defined]
        params={
            "amount": payment.amount,
            "currency": payment.currency.lower(),
            "payment_method": "pm_card_visa",
            "payment_method_types": ["card"],
            "confirm": False,
            "metadata": {"payment_id": str(payment.pk)},
        }
    )
    return str(intent.id)


@pytest.fixture
def waiting(card_payment: Any, gateways: dict[str, Gateway], second_stripe: Gateway) -> Payment:
    """A card payment whose charge at Stripe was answered pending, through the real path."""
    stripe = gateways["stripe"]
    payment = card_payment(status=S.PROCESSING)
    attempt = PaymentAttempt.objects.create(
        payment=payment, gateway="stripe", number=1, outcome=AttemptOutcome.IN_FLIGHT,
        idempotency_key=idempotency_key_for(payment, "stripe"),
    )  # fmt: skip
    answer = adapter_for(stripe).retrieve(unconfirmed_intent(stripe, payment))
    assert answer.status == "pending"
    _on_result(payment, stripe, attempt, answer, 5)
    payment.refresh_from_db()
    return payment


def run_step_again(payment: Payment) -> Payment:
    """What a republished, redelivered or staff-requested job does: the step, current token.
    It publishes no next step: the callback, the sweep or reconciliation comes back."""
    payment.refresh_from_db()
    assert payment_process_step(payment.pk, str(payment.dispatch_token)) is None
    payment.refresh_from_db()
    return payment


def intents(sim: Any, payment: Payment) -> list[str]:
    return [charge["gateway"] for charge in sim.charges(payment.id)]


def test_a_pending_charge_is_not_due_for_the_outbox_sweep(waiting: Payment) -> None:
    assert waiting.status == S.PROCESSING
    assert waiting.next_attempt_at > timezone.now() + timedelta(seconds=250)
    assert payments_sweep_outbox() == 0


def test_the_step_run_again_waits_for_the_pending_charge(waiting: Payment, sim: Any) -> None:
    Payment.objects.filter(pk=waiting.pk).update(next_attempt_at=timezone.now())

    payment = run_step_again(waiting)

    assert (payment.status, payment.failure_code) == (S.PROCESSING, "")
    assert list(payment.attempts.values_list("gateway", "outcome")) == [("stripe", "pending")]
    assert intents(sim, payment) == ["stripe"]  # nothing at stripe-backup
    assert payment.next_attempt_at > timezone.now() + timedelta(seconds=250)


def test_once_the_gateway_decides_the_step_settles_the_payment(
    waiting: Payment, gateways: dict[str, Gateway], sim: Any
) -> None:
    client = adapter_for(gateways["stripe"])._client  # type: ignore[attr-defined]
    client.v1.payment_intents.confirm(waiting.gateway_reference)

    payment = run_step_again(waiting)

    assert payment.status == S.SUCCEEDED
    assert intents(sim, payment) == ["stripe"]


def test_a_pending_charge_that_cannot_be_read_keeps_the_payment_waiting(
    waiting: Payment, sim: Any
) -> None:
    sim.faults("stripe", error_rate=1.0, error_status=503)
    Payment.objects.filter(pk=waiting.pk).update(next_attempt_at=timezone.now())

    payment = run_step_again(waiting)

    assert payment.status == S.PROCESSING
    assert list(payment.attempts.values_list("gateway", flat=True)) == ["stripe"]
    assert intents(sim, payment) == ["stripe"]
    assert payment.next_attempt_at > timezone.now() + timedelta(seconds=250)


def _reference_lost(payment: Payment) -> None:
    PaymentAttempt.objects.filter(payment=payment).update(gateway_reference="")


def _gateway_gone(payment: Payment) -> None:
    Gateway.objects.filter(code="stripe").delete()


def _gateway_disabled(payment: Payment) -> None:
    Gateway.objects.filter(code="stripe").update(enabled=False)


@pytest.mark.parametrize("change", [_reference_lost, _gateway_gone, _gateway_disabled])
def test_a_pending_charge_that_cannot_be_looked_up_is_never_passed_over(
    waiting: Payment, sim: Any, change: Any
) -> None:
    """No reference to read, or its gateway no longer routed (or disabled): the payment
    still waits for that charge, and stripe-backup charges nothing."""
    change(waiting)
    Payment.objects.filter(pk=waiting.pk).update(next_attempt_at=timezone.now())

    payment = run_step_again(waiting)

    assert payment.status == S.PROCESSING
    assert list(payment.attempts.values_list("gateway", "outcome")) == [("stripe", "pending")]
    assert "stripe-backup" not in intents(sim, payment)
    assert payment.next_attempt_at > timezone.now() + timedelta(seconds=250)
