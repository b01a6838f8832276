"""Outages as gateways really have them: resets, hangs, 503s at the primary.

PIX falls back through them (a charge whose answer was lost was never shown to a
payer), leaving the possible charge behind as an orphan (what becomes of it:
test_orphan_withdrawal.py); cards never leave a gateway that may have charged them, and
get unstuck by reconciliation. Every payment is driven step by step (each step is
what one job does) through the real SDKs against the simulators.
"""

import time
from typing import Any

import pytest
from django.conf import LazySettings

from payments.models import AttemptOutcome, OrphanCharge, Payment, PaymentEvent
from payments.models import PaymentStatus as S
from payments.processing import payment_park, payment_process_step
from payments.reconciliation import payments_reconcile
from payments.services import payment_update_details
from tests.gateway_fixtures import GATEWAY_TIMEOUT_MS, drive
from tests.payments.callbacks.helpers import pay_pix, receive_and_process

pytestmark = [pytest.mark.services, pytest.mark.django_db]

# What each outage looks like at the simulator, and whether the primary may hold a charge.
OUTAGES = {
    "reset": ({"down": True, "down_mode": "reset"}, True),
    "hang": ({"down": True, "down_mode": "hang"}, True),
    "503": ({"down": True, "down_mode": "503"}, False),
}
# Three tries and one lookup at the primary, one call at the secondary: each call at most
# one timeout; the backoff between the tries is asked for, not waited (base 1 s, factor 2,
# jitter 20 %).
CALL_BUDGET_S = 5 * GATEWAY_TIMEOUT_MS / 1000 + 2
BACKOFF_BUDGET_S = 1.2 + 2.4


def outcomes(payment: Payment) -> list[tuple[str, int, str]]:
    return [(a.gateway, a.number, a.outcome) for a in payment.attempts.order_by("id")]


@pytest.mark.parametrize("outage", OUTAGES, ids=OUTAGES)
def test_pix_falls_back_through_an_outage_at_the_primary(
    pix_payment: Any, sim: Any, outage: str
) -> None:
    faults, may_hold_charge = OUTAGES[outage]
    sim.faults("mercadopago", **faults)

    started = time.monotonic()
    result = drive(pix_payment())
    elapsed = time.monotonic() - started

    payment = result.payment
    assert payment.status == S.AWAITING_PAYMENT
    assert payment.gateway == "gerencianet"
    assert [(g, n) for g, n, _ in outcomes(payment)] == [
        ("mercadopago", 1), ("mercadopago", 2), ("mercadopago", 3), ("gerencianet", 1),
    ]  # fmt: skip
    expected = AttemptOutcome.AMBIGUOUS if may_hold_charge else AttemptOutcome.RETRYABLE
    assert {o for g, _, o in outcomes(payment) if g == "mercadopago"} == {expected}
    assert sum(result.countdowns) <= BACKOFF_BUDGET_S
    assert elapsed <= CALL_BUDGET_S
    assert not payment.needs_reconciliation
    orphans = list(OrphanCharge.objects.filter(payment=payment).values_list("gateway", "status"))
    assert orphans == ([("mercadopago", "open")] if may_hold_charge else [])
    assert len(sim.charges(payment.id, gateway="gerencianet")) == 1


@pytest.mark.parametrize("outage", OUTAGES, ids=OUTAGES)
def test_after_the_circuit_opens_new_pix_payments_skip_the_primary(
    pix_payment: Any, sim: Any, settings: LazySettings, outage: str
) -> None:
    settings.PAYWAVE_CIRCUIT_THRESHOLD = 3
    sim.faults("mercadopago", **OUTAGES[outage][0])
    first = drive(pix_payment()).payment
    assert first.status == S.AWAITING_PAYMENT  # three failures: the circuit opened

    later = drive(pix_payment()).payment

    assert later.status == S.AWAITING_PAYMENT
    assert outcomes(later) == [("gerencianet", 1, AttemptOutcome.SUCCEEDED)]
    assert OrphanCharge.objects.filter(payment=later).count() == 0


def test_a_card_answer_lost_then_edited_succeeds_with_one_charge(
    card_payment: Any, second_stripe: Any, sim: Any
) -> None:
    payment = card_payment(description="order 7")

    def lose_then_edit(number: int) -> None:
        if number == 0:
            sim.faults("stripe", timeout_rate=1)  # charged, the answer lost
        elif number == 1:
            payment_update_details(
                client_id=payment.client_id,
                payment_id=payment.pk,
                changes={"description": "order 7, gift wrapped"},
            )
            sim.reset_faults()  # the gateway is back

    result = drive(payment, before_step=lose_then_edit)

    assert result.payment.status == S.SUCCEEDED
    assert result.payment.description == "order 7, gift wrapped"
    [charge] = sim.charges(payment.id)
    assert charge["gateway"] == "stripe"
    assert outcomes(result.payment) == [
        ("stripe", 1, AttemptOutcome.AMBIGUOUS), ("stripe", 2, AttemptOutcome.SUCCEEDED),
    ]  # fmt: skip


def test_a_card_answer_lost_edited_and_the_gateway_still_down_is_parked_then_reconciled(
    card_payment: Any, second_stripe: Any, sim: Any
) -> None:
    payment = card_payment(description="order 8")

    def lose_edit_and_stay_down(number: int) -> None:
        if number == 0:
            sim.faults("stripe", timeout_rate=1)
        elif number == 1:
            payment_update_details(
                client_id=payment.client_id,
                payment_id=payment.pk,
                changes={"description": "order 8, edited"},
            )
            sim.faults("stripe", down=True, down_mode="reset")

    parked = drive(payment, before_step=lose_edit_and_stay_down).payment
    assert (parked.status, parked.parked_reason) == (S.PROCESSING, "charge_unconfirmed")
    assert sim.charges(payment.id, gateway="stripe-backup") == []

    assert payments_reconcile() == {"parked": 1}  # still down
    sim.reset_faults()
    assert payments_reconcile() == {"settled": 1}

    payment.refresh_from_db()
    assert (payment.status, payment.parked_reason) == (S.SUCCEEDED, "")
    assert [c["gateway"] for c in sim.charges(payment.id)] == ["stripe"]


def test_a_timeout_then_rate_limits_is_looked_up_before_any_fallback(
    card_payment: Any, second_stripe: Any, sim: Any
) -> None:
    """Any try may have charged, not only the last: a lost answer, then two 429s."""
    payment = card_payment()

    def lose_then_limit(number: int) -> None:
        if number == 0:
            sim.faults("stripe", timeout_rate=1)
        elif number == 1:
            sim.faults("stripe", error_rate=1, error_status=429)
        elif number == 3:
            sim.reset_faults()  # the lookup gets an answer

    result = drive(payment, before_step=lose_then_limit)

    assert result.payment.status == S.SUCCEEDED
    assert result.payment.gateway == "stripe"
    assert [c["gateway"] for c in sim.charges(payment.id)] == ["stripe"]


def test_a_lookup_that_finds_another_amount_never_settles(
    card_payment: Any, second_stripe: Any, sim: Any, caplog: pytest.LogCaptureFixture
) -> None:
    payment = card_payment(amount=1000)

    def lose_then_differ(number: int) -> None:
        if number == 0:
            sim.faults("stripe", timeout_rate=1)  # charged 1000, the answer lost
        elif number == 1:
            sim.faults("stripe", down=True, down_mode="503")
            # The payment now says 1500: what the gateway reports cannot be it.
            Payment.objects.filter(pk=payment.pk).update(amount=1500)
        elif number == 3:
            sim.reset_faults()

    parked = drive(payment, before_step=lose_then_differ).payment

    assert parked.status == S.PROCESSING
    assert parked.parked_reason == "amount_mismatch"
    assert "1000" in parked.reconciliation_reason
    alerts = [r for r in caplog.records if getattr(r, "alert", "") == "gateway_amount_mismatch"]
    assert len(alerts) == 1
    assert payments_reconcile() == {}  # left for a person: never settled from that charge
    parked.refresh_from_db()
    assert parked.status == S.PROCESSING


def test_a_callback_for_another_currency_never_settles(
    card_payment: Any, capture: Any, caplog: pytest.LogCaptureFixture
) -> None:
    payment = drive(card_payment("pm_card_authenticationRequired")).payment
    assert payment.status == S.REQUIRES_ACTION
    Payment.objects.filter(pk=payment.pk).update(currency="USD")  # the charge is in BRL

    done = capture.http.post(f"/card/{payment.gateway_reference}/authenticate", json={})
    callback = receive_and_process("stripe", done.json()["callback"])

    payment.refresh_from_db()
    assert payment.status == S.REQUIRES_ACTION
    assert (payment.needs_reconciliation, payment.parked_reason) == (True, "amount_mismatch")
    assert callback.status == "conflict"
    assert any(getattr(r, "alert", "") == "gateway_amount_mismatch" for r in caplog.records)


def test_a_pix_callback_for_another_amount_never_settles(pix_payment: Any, capture: Any) -> None:
    payment = drive(pix_payment(amount=1000)).payment
    Payment.objects.filter(pk=payment.pk).update(amount=990)

    receive_and_process(payment.gateway, pay_pix(capture, payment))

    payment.refresh_from_db()
    assert payment.status == S.AWAITING_PAYMENT
    assert payment.parked_reason == "amount_mismatch"
    assert payments_reconcile() == {}  # flagged: left for a person, not expired or settled
    flagged = PaymentEvent.objects.get(payment=payment, reason__startswith="parked:")
    assert (flagged.from_status, flagged.to_status) == (S.AWAITING_PAYMENT, S.AWAITING_PAYMENT)
    assert flagged.reason.startswith(f"parked: amount_mismatch: {payment.gateway}: ")


def test_parking_is_an_event_in_the_payments_story(
    card_payment: Any, second_stripe: Any, sim: Any
) -> None:
    """Parked keeps the status `processing`, so it is an event of its own (from == to)."""
    sim.faults("stripe", down=True, down_mode="reset")  # every try and the lookup unanswered

    parked = drive(card_payment()).payment

    assert (parked.status, parked.parked_reason) == (S.PROCESSING, "charge_unconfirmed")
    park = PaymentEvent.objects.get(payment=parked, reason__startswith="parked:")
    assert (park.from_status, park.to_status, park.actor) == (
        S.PROCESSING, S.PROCESSING, "processing",
    )  # fmt: skip
    assert park.reason == f"parked: charge_unconfirmed: {parked.reconciliation_reason}"
    assert payments_reconcile() == {"parked": 1}  # still down: still one event
    sim.reset_faults()
    assert payments_reconcile() == {"settled": 1}

    story = [(e.to_status, e.reason.split(":")[0]) for e in parked.events.order_by("id")]
    assert story[-2:] == [(S.PROCESSING, "parked"), (S.SUCCEEDED, "reconciled")]
    assert PaymentEvent.objects.filter(payment=parked, reason__startswith="parked:").count() == 1


def test_resuming_a_parked_payment_is_an_event_in_its_story(pix_payment: Any, sim: Any) -> None:
    sim.faults("mercadopago", down=True, down_mode="503")
    payment = pix_payment()
    payment_process_step(payment.pk, str(payment.dispatch_token))  # retryable, then parked
    payment_park(payment, "test: the gateway could not say")
    sim.reset_faults()

    assert payments_reconcile() == {"resumed": 1}

    resume = PaymentEvent.objects.get(payment=payment, reason__startswith="resumed:")
    assert (resume.from_status, resume.to_status, resume.actor) == (
        S.PROCESSING, S.PROCESSING, "reconciliation",
    )  # fmt: skip
    assert resume.reason == "resumed: its job was lost (was parked: charge_unconfirmed)"
    payment.refresh_from_db()
    assert drive(payment).payment.status == S.AWAITING_PAYMENT
