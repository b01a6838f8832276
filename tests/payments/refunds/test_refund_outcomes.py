"""Refunds whose outcome is unknown: never failed blind, parked, then reconciled at the gateway.

The simulators' faults make the story: a `timeout_rate` try is processed and
recorded by the gateway but never answered; an `error_rate` try answers 500
without doing anything; `down_mode="reset"` reads the request and resets the
connection without doing anything (to PayWave, as ambiguous as a timeout).
"""

import logging
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.conf import LazySettings
from django.utils import timezone

from gateways.adapters.gerencianet import txid_for
from gateways.base import RefundResult, Retryable
from gateways.models import Gateway
from gateways.registry import adapter_for
from notifications.models import Event
from payments.events import RefundChanged
from payments.models import Payment, Refund
from payments.models import PaymentStatus as S
from payments.reconciliation import refunds_reconcile
from payments.refunds import (
    KEY_FORGOTTEN,
    REFUND_LOOKUP_WINDOW,
    TRY_LEASE,
    _claim_try,
    _retry_later,
    refund_create,
    refund_park,
    refund_process,
    refund_retry_delay,
)
from payments.sweeps import refunds_sweep
from paywave.domain_events import Phase, subscribe, unsubscribe
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
            Gateway.objects.filter(code=gateway).update(priority=1)  # PIX's first choice
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
    assert (nothing_left.json()["error"]["code"], nothing_left.json()["error"]["message"]) == (
        "payment_fully_refunded",
        "The payment is refunded in full (or will be, once pending refunds finish).",
    )
    assert sorted(Refund.objects.filter(payment=payment).values_list("amount", flat=True)) == [
        1,
        999,
    ]


# Refunds the gateway answers still processing, or failed (the simulators' `refund_status`).

FAILED_WORDS = {"stripe": "failed", "mercadopago": "rejected", "gerencianet": "NAO_REALIZADO"}


@pytest.fixture
def changes() -> Iterator[list[tuple[str, str]]]:
    """Each refund change as published: (from_status, to_status)."""
    seen: list[tuple[str, str]] = []

    def record(change: RefundChanged) -> None:
        seen.append((change.from_status, change.to_status))

    subscribe(RefundChanged, record, phase=Phase.IN_TRANSACTION)
    yield seen
    unsubscribe(RefundChanged, record)


PENDING_AND_SETTLED = {
    "stripe": ("pending", "succeeded"),
    "mercadopago": ("in_process", "approved"),
    "gerencianet": ("EM_PROCESSAMENTO", "DEVOLVIDO"),
}


@pytest.mark.parametrize("gateway", PENDING_AND_SETTLED)
def test_a_refund_answered_pending_is_asked_again_with_its_key_until_it_settles(
    credited: Any, sim: Any, changes: list[tuple[str, str]], gateway: str
) -> None:
    pending, settled_status = PENDING_AND_SETTLED[gateway]
    payment, wallet = credited(gateway)
    refund = new_refund(payment)
    sim.faults(gateway, refund_status="pending")
    before = timezone.now()

    step = refund_process(refund.pk)

    assert step is not None  # asked again later, with the same key
    refund.refresh_from_db()
    assert step.token == str(refund.job_token)
    [made] = gateway_refunds(sim, payment)
    assert (made["amount"], made["status"]) == (REFUNDED, pending)
    if gateway == "gerencianet":
        assert made["idempotency_key"] == txid_for(refund.idempotency_key)
    assert (refund.status, refund.tries, refund.last_error) == ("pending", 1, "pending")
    assert refund.needs_reconciliation  # the gateway holds it: never failed blind
    assert refund.gateway_reference == made["id"]
    due = before + timedelta(seconds=step.countdown)
    assert due <= refund.next_attempt_at <= due + timedelta(seconds=5)
    assert Wallet.objects.get(pk=wallet.pk).balance == AMOUNT - REFUNDED  # debit kept
    payment.refresh_from_db()
    assert (payment.status, payment.amount_refunded) == (S.SUCCEEDED, 0)

    sim.reset_faults()  # the payer's bank returned it meanwhile
    assert refund_process(refund.pk, step.token) is None

    refund.refresh_from_db()
    assert (refund.status, refund.tries, refund.needs_reconciliation) == ("succeeded", 2, False)
    [settled] = gateway_refunds(sim, payment)  # the same refund, asked for again
    assert (settled["id"], settled["status"]) == (made["id"], settled_status)
    assert refund.gateway_reference == made["id"]
    payment.refresh_from_db()
    assert (payment.status, payment.amount_refunded) == (S.PARTIALLY_REFUNDED, REFUNDED)
    assert Wallet.objects.get(pk=wallet.pk).balance == AMOUNT - REFUNDED
    assert Event.objects.filter(subject_id=payment.id, type="refund.succeeded").count() == 1
    assert changes == [("", "pending"), ("pending", "succeeded")]


def test_a_refund_still_pending_after_every_try_is_parked_then_reconciled(
    credited: Any, sim: Any, settings: LazySettings, caplog: pytest.LogCaptureFixture
) -> None:
    payment, wallet = credited("gerencianet")
    refund = new_refund(payment)
    sim.faults("gerencianet", refund_status="pending")

    run_refund_jobs(refund.pk)

    refund.refresh_from_db()
    assert (refund.status, refund.tries) == ("pending", settings.PAYWAVE_REFUND_TRIES)
    assert refund.parked_at is not None
    assert refund.last_error == (
        f"parked after {refund.tries} tries, the gateway may hold the refund; last: pending"
    )
    assert Wallet.objects.get(pk=wallet.pk).balance == AMOUNT - REFUNDED  # debit kept
    parked = [r for r in caplog.records if getattr(r, "alert", "") == "refund_parked"]
    assert [r.refund_id for r in parked] == [str(refund.pk)]
    assert len(gateway_refunds(sim, payment)) == 1  # every try asked for the same one

    assert refunds_reconcile() == {"pending": 1}  # still processing: stays parked
    sim.reset_faults()
    assert refunds_reconcile() == {"succeeded": 1}

    refund.refresh_from_db()
    assert refund.status == "succeeded"
    payment.refresh_from_db()
    assert (payment.status, payment.amount_refunded) == (S.PARTIALLY_REFUNDED, REFUNDED)


@pytest.mark.parametrize("gateway", list(FAILED_WORDS))
def test_a_refund_the_gateway_answers_failed_fails_with_its_word_and_the_debit_back(
    credited: Any, sim: Any, changes: list[tuple[str, str]], gateway: str
) -> None:
    payment, wallet = credited(gateway)
    refund = new_refund(payment)
    sim.faults(gateway, refund_status="failed")

    assert refund_process(refund.pk) is None  # nothing more to do

    refund.refresh_from_db()
    message = f"The gateway refused the refund ({FAILED_WORDS[gateway]})."
    assert (refund.status, refund.failure_message, refund.last_error) == (
        "failed",
        message,
        message,
    )
    assert (refund.tries, refund.needs_reconciliation, refund.parked_at) == (1, False, None)
    assert [r["status"] for r in gateway_refunds(sim, payment)] == [FAILED_WORDS[gateway]]
    assert Wallet.objects.get(pk=wallet.pk).balance == AMOUNT  # the debit given back
    payment.refresh_from_db()
    assert (payment.status, payment.amount_refunded) == (S.SUCCEEDED, 0)
    [failed] = Event.objects.filter(subject_id=payment.id, type="refund.failed")
    assert (failed.data["status"], failed.data["failure_message"]) == ("failed", message)
    assert not Event.objects.filter(subject_id=payment.id, type="refund.succeeded").exists()
    assert changes == [("", "pending"), ("pending", "failed")]
    assert refund_process(refund.pk) is None  # failed: no job tries it again
    assert len(gateway_refunds(sim, payment)) == 1


def test_a_failed_refund_leaves_its_amount_to_refund_again(credited: Any, sim: Any) -> None:
    payment, wallet = credited("gerencianet")
    refund = new_refund(payment)
    sim.faults("gerencianet", refund_status="failed")
    refund_process(refund.pk)
    sim.reset_faults()

    again = refund_create(
        client_id=payment.client_id, payment_id=payment.pk, amount=AMOUNT, actor="test"
    )
    assert refund_process(again.pk) is None

    again.refresh_from_db()
    assert again.status == "succeeded"
    payment.refresh_from_db()
    assert (payment.status, payment.amount_refunded) == (S.REFUNDED, AMOUNT)
    assert Wallet.objects.get(pk=wallet.pk).balance == 0


# A try and the other workers around it: the lease, and answers that come too late.


class GatewayCall:
    """The first refund call to a gateway, with what happens while it is out (`during`,
    before the request) or after its answer arrived (`answered`); later calls go through."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.during: Any = None
        self.answered: Any = None
        self.calls = 0
        real = adapter_for

        def wrapped(gateway: Gateway) -> Any:
            adapter = real(gateway)
            call = self

            class Watched:
                def refund(self, **kwargs: Any) -> RefundResult:
                    call.calls += 1
                    first = call.calls == 1
                    if first and call.during:
                        call.during()
                    result = adapter.refund(**kwargs)
                    if first and call.answered:
                        call.answered()
                    return result

            return Watched()

        monkeypatch.setattr("payments.refunds.adapter_for", wrapped)


def test_a_try_at_the_gateway_holds_the_refund_from_the_sweep_and_reconciliation(
    credited: Any, sim: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    payment, _ = credited("gerencianet")
    refund = new_refund(payment)
    sim.faults("gerencianet", refund_status="pending")
    step = refund_process(refund.pk)
    assert step is not None
    sim.reset_faults()
    long_ago = timezone.now() - timedelta(minutes=10)  # its next job ran very late
    Refund.objects.filter(pk=refund.pk).update(updated_at=long_ago, next_attempt_at=long_ago)
    published: list[Any] = []

    def publish(*job: Any) -> bool:
        published.append(job)
        return True

    monkeypatch.setattr("payments.sweeps.refund_dispatch", publish)
    seen: dict[str, Any] = {}

    def during() -> None:
        seen["lease"] = Refund.objects.get(pk=refund.pk).next_attempt_at
        seen["swept"] = refunds_sweep()
        seen["reconciled"] = refunds_reconcile()

    call = GatewayCall(monkeypatch)
    call.during = during
    before = timezone.now()
    assert refund_process(refund.pk, step.token) is None

    assert before + TRY_LEASE <= seen["lease"] <= timezone.now() + TRY_LEASE
    assert (seen["swept"], published) == (0, [])  # no second job while this try is out
    assert seen["reconciled"] == {}  # nor a lookup
    assert call.calls == 1
    refund.refresh_from_db()
    assert (refund.status, refund.tries) == ("succeeded", 2)


def test_an_answer_after_reconciliation_settled_the_refund_changes_nothing(
    credited: Any, sim: Any, settings: LazySettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    payment, _ = credited("gerencianet")
    refund = new_refund(payment)
    sim.faults("gerencianet", refund_status="pending")
    step = refund_process(refund.pk)
    assert step is not None
    seen: dict[str, Any] = {}

    def answered() -> None:  # "pending" is on its way back; meanwhile the bank returned it
        seen["lease"] = Refund.objects.get(pk=refund.pk).next_attempt_at
        sim.reset_faults()
        settings.PAYWAVE_RECONCILE_AFTER_SECONDS = 0
        seen["reconciled"] = refunds_reconcile()

    call = GatewayCall(monkeypatch)
    call.answered = answered
    assert refund_process(refund.pk, step.token) is None  # settled: nothing to ask again

    assert seen["reconciled"] == {"succeeded": 1}
    refund.refresh_from_db()
    assert (refund.status, refund.needs_reconciliation) == ("succeeded", False)
    assert refund.next_attempt_at == seen["lease"]  # the late answer scheduled nothing
    assert Event.objects.filter(subject_id=payment.id, type="refund.succeeded").count() == 1


def test_a_try_that_outlasted_its_lease_leaves_the_refund_to_the_job_that_took_over(
    credited: Any, sim: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    payment, _ = credited("stripe")
    refund = new_refund(payment)
    sim.faults("stripe", down=True, down_mode="503")  # every try refused, nothing made
    published: list[tuple[Any, str]] = []

    def publish(pk: Any, token: Any) -> bool:
        published.append((pk, str(token)))
        return True

    monkeypatch.setattr("payments.sweeps.refund_dispatch", publish)
    seen: dict[str, Any] = {}

    def during() -> None:  # the call hangs past its lease: the sweep hands its job on
        Refund.objects.filter(pk=refund.pk).update(
            next_attempt_at=timezone.now() - timedelta(minutes=5)
        )
        assert refunds_sweep() == 1
        [(_, token)] = published
        seen["step"] = refund_process(refund.pk, token)
        seen["row"] = Refund.objects.values("job_token", "next_attempt_at", "tries").get(
            pk=refund.pk
        )

    call = GatewayCall(monkeypatch)
    call.during = during
    assert refund_process(refund.pk) is None  # its late 503 schedules nothing

    takeover = seen["step"]
    assert takeover is not None
    row = Refund.objects.values("job_token", "next_attempt_at", "tries").get(pk=refund.pk)
    assert row == seen["row"]  # as the job that took over left it
    assert (str(row["job_token"]), row["tries"]) == (takeover.token, 2)


def test_a_stale_claim_takes_no_refund_that_moved_on(credited: Any, sim: Any) -> None:
    payment, _ = credited("stripe")
    settled, parked = new_refund(payment), new_refund(payment)
    # Refunds made before jobs carried tokens have none, and neither has a parked one.
    Refund.objects.filter(pk__in=[settled.pk, parked.pk]).update(job_token=None)
    stale = {r.pk: r for r in Refund.objects.filter(pk__in=[settled.pk, parked.pk])}
    Refund.objects.filter(pk=settled.pk).update(status="succeeded")  # by reconciliation
    refund_park(Refund.objects.get(pk=parked.pk), "by another job")

    assert not _claim_try(stale[settled.pk])
    assert not _claim_try(stale[parked.pk])

    for refund in (settled, parked):
        refund.refresh_from_db()
        assert (refund.job_token, refund.tries) == (None, 0)


def test_a_job_without_a_token_claims_its_own_refund_only(credited: Any, sim: Any) -> None:
    payment, _ = credited("stripe")
    mine, other = new_refund(payment), new_refund(payment)
    # Made before jobs carried tokens: neither has one, and their jobs carry none.
    Refund.objects.filter(pk__in=[mine.pk, other.pk]).update(job_token=None)

    assert refund_process(mine.pk) is None

    mine.refresh_from_db()
    other.refresh_from_db()
    assert (mine.status, mine.tries) == ("succeeded", 1)
    assert (other.status, other.tries, other.job_token) == ("pending", 0, None)


def test_a_try_s_long_error_is_cut_to_fit(credited: Any) -> None:
    payment, _ = credited("stripe")
    refund = new_refund(payment)
    assert _claim_try(refund)

    step = _retry_later(refund, Retryable("x" * 600))

    assert step is not None
    refund.refresh_from_db()
    assert refund.last_error == ("Retryable: " + "x" * 600)[:500]


@pytest.mark.parametrize("unexpected", [KeyError("id"), ValueError("not JSON")])
def test_an_unexpected_failure_of_the_call_is_ambiguous_and_named(
    credited: Any, monkeypatch: pytest.MonkeyPatch, unexpected: Exception
) -> None:
    payment, _ = credited("stripe")
    refund = new_refund(payment)

    class Broken:
        def refund(self, **kwargs: Any) -> RefundResult:
            raise unexpected

    monkeypatch.setattr("payments.refunds.adapter_for", lambda gateway: Broken())

    assert refund_process(refund.pk) is not None  # it may have been made: the same key again

    refund.refresh_from_db()
    name = type(unexpected).__name__
    assert (refund.status, refund.last_error) == ("pending", f"Ambiguous: unexpected {name}")
    assert refund.needs_reconciliation


def test_a_refund_of_more_than_is_left_is_refused_saying_how_much_is_left(
    api: Any, wallet_app: Any, card_payment: Any
) -> None:
    payment: Payment = drive(card_payment(client=wallet_app, amount=1000)).payment
    assert post_refund(api, payment.id, {"amount": 600}).status_code == 202

    too_much = post_refund(api, payment.id, {"amount": 401})

    assert too_much.status_code == 400
    error = too_much.json()["error"]
    assert (error["code"], error["message"]) == (
        "refund_exceeds_payment",
        "At most 400 is left to refund.",
    )
    assert error["fields"] == {"amount": "At most 400."}
    assert Refund.objects.filter(payment=payment).count() == 1


def test_a_new_refund_s_job_is_published_with_its_token_once_it_commits(
    credited: Any,
    monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks: Any,
) -> None:
    payment, _ = credited("stripe")
    published: list[tuple[Any, Any]] = []
    monkeypatch.setattr(
        "payments.refunds.refund_dispatch", lambda *job: published.append(job) or True
    )

    with django_capture_on_commit_callbacks(execute=True):
        refund = refund_create(
            client_id=payment.client_id, payment_id=payment.pk, amount=REFUNDED, actor="ops-7"
        )

    refund.refresh_from_db()
    assert refund.job_token is not None
    assert published == [(refund.id, refund.job_token)]
    assert refund.actor == "ops-7"
    assert refund_process(refund.pk, str(refund.job_token)) is None  # the published job runs
    refund.refresh_from_db()
    assert refund.status == "succeeded"
    [refunded] = payment.events.filter(reason__startswith=f"refund {refund.id}")
    assert refunded.actor == "refund:ops-7"
