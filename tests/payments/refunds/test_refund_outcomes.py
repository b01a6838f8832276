"""Refunds whose outcome is unknown: never failed blind, parked, then reconciled at the gateway.

The simulators' faults make the story: a `timeout_rate` try is processed and
recorded by the gateway but never answered; an `error_rate` try answers 500
without doing anything; `down_mode="reset"` reads the request and resets the
connection without doing anything (to PayWave, as ambiguous as a timeout).
"""

import logging
import uuid
from datetime import timedelta
from typing import Any

import pytest
from django.conf import LazySettings
from django.utils import timezone

from gateways.models import Gateway
from gateways.registry import adapter_for
from notifications.models import Event
from payments.models import Payment, Refund
from payments.models import PaymentStatus as S
from payments.reconciliation import refunds_reconcile
from payments.refunds import (
    KEY_FORGOTTEN,
    REFUND_LOOKUP_WINDOW,
    refund_create,
    refund_process,
    refund_retry_delay,
)
from payments.sweeps import refunds_sweep
from paywave.observability.log_context import ContextFilter
from tests.factories import WalletFactory
from tests.gateway_fixtures import drive
from tests.payments.callbacks.helpers import pay_pix, receive_and_process, run_refund_jobs
from wallets.models import Wallet

pytestmark = [pytest.mark.services, pytest.mark.django_db]

AMOUNT = 1000
REFUNDED = 400


@pytest.fixture
def credited(wallet_app: Any, card_payment: Any, pix_payment: Any, capture: Any) -> Any:
    """A succeeded payment at `gateway` that credited a wallet with AMOUNT."""

    def make(gateway: str) -> tuple[Payment, Wallet]:
        wallet = WalletFactory(client=wallet_app)
        fields = {"client": wallet_app, "amount": AMOUNT, "wallet_id": wallet.pk}
        if gateway == "stripe":
            payment = drive(card_payment(**fields)).payment
        else:
            payment = drive(pix_payment(**fields)).payment
            assert payment.gateway == gateway
            receive_and_process(gateway, pay_pix(capture, payment))
            payment.refresh_from_db()
        assert payment.status == S.SUCCEEDED
        assert Wallet.objects.get(pk=wallet.pk).balance == AMOUNT
        return payment, wallet

    return make


def gateway_refunds(sim: Any, payment: Payment) -> list[dict[str, Any]]:
    answer = sim.http.get(
        "/refunds", params={"gateway": payment.gateway, "charge_id": payment.gateway_reference}
    )
    answer.raise_for_status()
    return answer.json()


def new_refund(payment: Payment) -> Refund:
    """A wallet app's refund of REFUNDED out of `payment`, its job not run yet."""
    return refund_create(
        client_id=payment.client_id, payment_id=payment.pk, amount=REFUNDED, actor="test"
    )


def park(payment: Payment, sim: Any, *, first_try: dict[str, Any]) -> Refund:
    """A refund whose first try meets `first_try`'s fault, and every later one a 500."""
    refund = new_refund(payment)
    sim.faults(payment.gateway, **first_try)
    assert refund_process(refund.pk) is not None  # no answer: try again later
    sim.faults(payment.gateway, error_rate=1, error_status=500)
    run_refund_jobs(refund.pk)
    refund.refresh_from_db()
    return refund


@pytest.mark.parametrize("gateway", ["stripe", "mercadopago"])
def test_a_refund_made_before_a_timeout_is_parked_not_failed_by_later_errors(
    credited: Any, sim: Any, settings: LazySettings, caplog: pytest.LogCaptureFixture, gateway: str
) -> None:
    payment, wallet = credited(gateway)

    refund = park(payment, sim, first_try={"timeout_rate": 1})

    assert [r["amount"] for r in gateway_refunds(sim, payment)] == [REFUNDED]  # made at once
    assert refund.status == "pending"
    assert refund.needs_reconciliation
    assert refund.tries == settings.PAYWAVE_REFUND_TRIES
    assert refund.last_error.startswith(
        f"parked after {refund.tries} tries, the gateway may hold the refund; last: Ambiguous: "
    )  # ends with the last try's error: a 500
    assert Wallet.objects.get(pk=wallet.pk).balance == AMOUNT - REFUNDED  # debit not put back
    payment.refresh_from_db()
    assert (payment.status, payment.amount_refunded) == (S.SUCCEEDED, 0)
    assert not Event.objects.filter(subject_id=payment.id, type="refund.failed").exists()
    parked = [r for r in caplog.records if getattr(r, "alert", "") == "refund_parked"]
    assert [r.refund_id for r in parked] == [str(refund.pk)]
    assert refund_process(refund.pk) is None  # parked: the worker leaves it to reconciliation


@pytest.mark.parametrize(
    ("first_try", "made_by"),
    [({"timeout_rate": 1}, "the lost try"), ({"down": True, "down_mode": "reset"}, "the lookup")],
)
def test_reconciliation_settles_a_parked_refund_once_the_gateway_answers(
    credited: Any, sim: Any, first_try: dict[str, Any], made_by: str
) -> None:
    payment, wallet = credited("stripe")
    refund = park(payment, sim, first_try=first_try)
    assert len(gateway_refunds(sim, payment)) == (1 if made_by == "the lost try" else 0)

    assert refunds_reconcile() == {"parked": 1}  # still answering 500: stays parked
    refund.refresh_from_db()
    assert refund.last_error.startswith("reconciliation: Ambiguous")  # a 500 at Stripe
    sim.reset_faults()
    assert refunds_reconcile() == {"succeeded": 1}
    assert refunds_reconcile() == {}

    made = gateway_refunds(sim, payment)
    assert [r["amount"] for r in made] == [REFUNDED]  # one refund, under the refund's key
    assert made[0]["idempotency_key"] == refund.idempotency_key
    refund.refresh_from_db()
    assert (refund.status, refund.gateway_reference) == ("succeeded", made[0]["id"])
    assert not refund.needs_reconciliation
    payment.refresh_from_db()
    assert (payment.status, payment.amount_refunded) == (S.PARTIALLY_REFUNDED, REFUNDED)
    assert Wallet.objects.get(pk=wallet.pk).balance == AMOUNT - REFUNDED
    assert Event.objects.filter(subject_id=payment.id, type="refund.succeeded").count() == 1


def test_reconciliation_fails_a_parked_refund_the_gateway_refuses(credited: Any, sim: Any) -> None:
    payment, wallet = credited("stripe")
    refund = park(payment, sim, first_try={"down": True, "down_mode": "reset"})
    sim.reset_faults()
    # Meanwhile the whole charge was refunded at the gateway under another key.
    adapter = adapter_for(Gateway.objects.get(code="stripe"))
    adapter.refund(reference=payment.gateway_reference, amount=AMOUNT, idempotency_key="other")

    assert refunds_reconcile() == {"failed": 1}

    refund.refresh_from_db()
    assert refund.status == "failed"
    assert "charge_already_refunded" in refund.failure_message
    assert [r["idempotency_key"] for r in gateway_refunds(sim, payment)] == ["other"]
    assert Wallet.objects.get(pk=wallet.pk).balance == AMOUNT  # nothing made: debit put back
    assert Event.objects.filter(subject_id=payment.id, type="refund.failed").count() == 1


def test_a_refund_whose_job_was_lost_after_a_timeout_is_reconciled(
    credited: Any, sim: Any, settings: LazySettings
) -> None:
    payment, _ = credited("stripe")
    refund = new_refund(payment)
    sim.faults("stripe", timeout_rate=1)
    assert refund_process(refund.pk) is not None  # its next job is then lost
    sim.reset_faults()

    assert refunds_reconcile() == {}  # its worker may still be on it
    settings.PAYWAVE_RECONCILE_AFTER_SECONDS = 0
    assert refunds_reconcile() == {"succeeded": 1}

    assert [r["amount"] for r in gateway_refunds(sim, payment)] == [REFUNDED]


def test_a_refund_outlasts_a_short_outage_in_short_countdowns(
    credited: Any, sim: Any, settings: LazySettings
) -> None:
    payment, _ = credited("stripe")
    refund = new_refund(payment)
    sim.faults("stripe", down=True, down_mode="503")
    steps = [refund_process(refund.pk) for _ in range(settings.PAYWAVE_REFUND_TRIES - 2)]
    sim.reset_faults()

    assert run_refund_jobs(refund.pk) == []
    refund.refresh_from_db()
    assert refund.status == "succeeded"
    assert [r["amount"] for r in gateway_refunds(sim, payment)] == [REFUNDED]
    assert all(step is not None for step in steps)  # every refused try asked for another
    countdowns = [step.countdown for step in steps if step is not None]
    longest = settings.PAYWAVE_REFUND_RETRY_MAX_SECONDS * (1 + settings.PAYWAVE_RETRY_JITTER)
    assert all(0 < c <= longest for c in countdowns)  # short countdowns
    assert sum(countdowns) >= 3 * 60  # yet minutes of outage, not seconds
    whole_window = sum(refund_retry_delay(n) for n in range(1, settings.PAYWAVE_REFUND_TRIES))
    assert whole_window >= 4 * 60


def test_a_refused_try_is_tried_again_after_its_countdown(credited: Any, sim: Any) -> None:
    payment, _ = credited("stripe")
    refund = new_refund(payment)
    sim.faults("stripe", error_rate=1, error_status=429)  # refused before anything ran
    before = timezone.now()

    step = refund_process(refund.pk)

    assert step is not None
    refund.refresh_from_db()
    assert refund.last_error.startswith("Retryable: stripe: ")
    due = before + timedelta(seconds=step.countdown)  # when the sweep may publish it again
    assert due <= refund.next_attempt_at <= due + timedelta(seconds=5)


def test_the_log_lines_of_a_refund_s_try_name_the_refund_its_payment_gateway_and_try(
    credited: Any, caplog: pytest.LogCaptureFixture
) -> None:
    payment, _ = credited("stripe")
    refund = new_refund(payment)
    caplog.handler.addFilter(ContextFilter())  # as every configured handler has it
    caplog.clear()  # the payment's lines

    with caplog.at_level(logging.INFO, logger="stripe"):
        refund_process(refund.pk)

    lines = [r for r in caplog.records if r.name == "stripe"]  # the SDK's request lines
    assert lines
    assert {(r.refund_id, r.payment_id, r.gateway, r.attempt) for r in lines} == {
        (str(refund.pk), str(payment.pk), "stripe", 1)
    }


def test_a_job_for_a_refund_that_does_not_exist_does_nothing() -> None:
    assert refund_process(uuid.uuid4()) is None


def test_a_refund_whose_gateway_is_no_longer_configured_fails_untried(credited: Any) -> None:
    payment, wallet = credited("stripe")
    refund = new_refund(payment)
    Refund.objects.filter(pk=refund.pk).update(gateway="retired")

    assert refund_process(refund.pk) is None

    refund.refresh_from_db()
    assert (refund.status, refund.failure_message, refund.last_error) == (
        "failed",
        "The gateway could not be reached; nothing was refunded.",
        "gateway retired is no longer configured",
    )
    assert Wallet.objects.get(pk=wallet.pk).balance == AMOUNT  # the debit given back


def test_a_refund_parked_longer_than_gateways_keep_keys_is_left_to_an_operator(
    credited: Any, sim: Any
) -> None:
    payment, wallet = credited("stripe")
    refund = park(payment, sim, first_try={"down": True, "down_mode": "reset"})
    sim.reset_faults()
    Refund.objects.filter(pk=refund.pk).update(
        created_at=timezone.now() - REFUND_LOOKUP_WINDOW - timedelta(minutes=1)
    )

    assert refunds_reconcile() == {}  # a replay now could be a second refund

    refund.refresh_from_db()
    assert (refund.status, refund.needs_reconciliation) == ("pending", True)
    assert gateway_refunds(sim, payment) == []
    assert Wallet.objects.get(pk=wallet.pk).balance == AMOUNT - REFUNDED


def test_only_the_job_holding_the_current_token_tries_and_the_sweep_hands_it_on(
    credited: Any, sim: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    payment, _ = credited("stripe")
    refund = new_refund(payment)
    first_token = str(refund.job_token)
    sim.faults("stripe", down=True, down_mode="503")
    step = refund_process(refund.pk, first_token)
    assert step is not None
    assert step.token != first_token  # the next try is the new token's

    assert refund_process(refund.pk, first_token) is None  # a redelivered first job
    assert Refund.objects.get(pk=refund.pk).tries == 1  # ... made no second call
    published: list[tuple[str, str]] = []

    def publish(refund_id: Any, token: Any) -> bool:
        published.append((refund_id, str(token)))
        return True

    monkeypatch.setattr("payments.sweeps.refund_dispatch", publish)
    assert refunds_sweep() == 0  # in its backoff: the countdown job is not lost yet
    Refund.objects.filter(pk=refund.pk).update(
        next_attempt_at=timezone.now() - timedelta(minutes=5)
    )
    assert refunds_sweep() == 1
    assert published == [(refund.pk, step.token)]  # the lost job's token, handed on

    sim.reset_faults()
    assert refund_process(refund.pk, step.token) is None  # the swept job settles it
    assert refund_process(refund.pk, step.token) is None  # the late countdown job: nothing
    refund.refresh_from_db()
    assert (refund.status, refund.tries) == ("succeeded", 2)
    assert [r["amount"] for r in gateway_refunds(sim, payment)] == [REFUNDED]


def test_a_refund_that_may_exist_is_never_sent_again_past_the_keys_life(
    credited: Any, sim: Any, caplog: pytest.LogCaptureFixture
) -> None:
    payment, wallet = credited("stripe")
    refund = new_refund(payment)
    sim.faults("stripe", down=True, down_mode="reset")  # ambiguous: may exist
    step = refund_process(refund.pk)
    assert step is not None
    sim.reset_faults()
    Refund.objects.filter(pk=refund.pk).update(
        created_at=timezone.now() - REFUND_LOOKUP_WINDOW - timedelta(minutes=1)
    )

    assert refund_process(refund.pk, step.token) is None  # a late job, a day later

    refund.refresh_from_db()
    assert refund.status == "pending"
    assert refund.parked_at is not None
    assert refund.last_error.endswith(f"; last: {KEY_FORGOTTEN}")  # what the operator reads
    assert gateway_refunds(sim, payment) == []  # not replayed: that could be a new refund
    assert Wallet.objects.get(pk=wallet.pk).balance == AMOUNT - REFUNDED
    parked = [r for r in caplog.records if getattr(r, "alert", "") == "refund_parked"]
    assert [r.refund_id for r in parked] == [str(refund.pk)]
    assert refunds_reconcile() == {}  # left to an operator: nothing calls the gateway


def test_reconciliation_parks_with_an_alert_a_flagged_refund_past_the_keys_life(
    credited: Any, sim: Any, caplog: pytest.LogCaptureFixture
) -> None:
    payment, _ = credited("stripe")
    refund = new_refund(payment)
    sim.faults("stripe", timeout_rate=1)
    assert refund_process(refund.pk) is not None  # made, unanswered; then its job is lost
    sim.reset_faults()
    Refund.objects.filter(pk=refund.pk).update(
        created_at=timezone.now() - REFUND_LOOKUP_WINDOW - timedelta(minutes=1)
    )

    assert refunds_reconcile() == {"parked": 1}
    assert refunds_reconcile() == {}  # once

    refund.refresh_from_db()
    assert (refund.status, refund.parked_at is not None) == ("pending", True)
    parked = [r for r in caplog.records if getattr(r, "alert", "") == "refund_parked"]
    assert [r.refund_id for r in parked] == [str(refund.pk)]


def test_a_refund_the_gateway_refuses_fails_with_its_word_and_the_debit_back(
    credited: Any,
) -> None:
    payment, wallet = credited("stripe")
    refund = new_refund(payment)
    # Meanwhile the whole charge was refunded at the gateway under another key.
    adapter = adapter_for(Gateway.objects.get(code="stripe"))
    key = f"other-{uuid.uuid4()}"
    adapter.refund(reference=payment.gateway_reference, amount=AMOUNT, idempotency_key=key)

    assert refund_process(refund.pk) is None

    refund.refresh_from_db()
    assert (refund.status, refund.failure_message, refund.tries) == (
        "failed",
        "The gateway refused the refund (charge_already_refunded).",
        1,
    )
    assert Wallet.objects.get(pk=wallet.pk).balance == AMOUNT  # the debit given back
    assert Event.objects.filter(subject_id=payment.id, type="refund.failed").count() == 1


def refund_url(payment_id: Any) -> str:
    return f"/api/v1/payments/{payment_id}/refunds"


def post_refund(api: Any, payment_id: Any, body: dict[str, Any]) -> Any:
    return api.post(
        refund_url(payment_id), body, format="json", HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4())
    )


def test_a_refund_of_no_such_payment_is_404(api: Any) -> None:
    response = post_refund(api, uuid.uuid4(), {"amount": REFUNDED})

    assert response.status_code == 404
    error = response.json()["error"]
    assert (error["code"], error["message"]) == ("payment_not_found", "No such payment.")


def test_the_last_unit_left_can_be_refunded(api: Any, wallet_app: Any, card_payment: Any) -> None:
    payment: Payment = drive(card_payment(client=wallet_app, amount=1000)).payment
    assert payment.status == S.SUCCEEDED

    assert post_refund(api, payment.id, {"amount": 999}).status_code == 202
    last = post_refund(api, payment.id, {"amount": 1})
    nothing_left = post_refund(api, payment.id, {"amount": 1})

    assert last.status_code == 202
    assert nothing_left.status_code == 409
    assert nothing_left.json()["error"]["code"] == "payment_fully_refunded"
    assert sorted(Refund.objects.filter(payment=payment).values_list("amount", flat=True)) == [
        1,
        999,
    ]
