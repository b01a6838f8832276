"""The outbox sweep (lost jobs) and reconciliation (unknown outcomes, expired PIX)."""

from datetime import timedelta
from typing import Any

import pytest
from celery import Celery, signals
from django.conf import LazySettings
from django.utils import timezone
from kombu import Exchange, Queue
from prometheus_client import REGISTRY

from config.celery_app import app as celery_app
from gateways.models import Gateway
from gateways.registry import adapter_for
from payments.models import AttemptOutcome, Payment
from payments.models import PaymentStatus as S
from payments.processing import payment_process_step
from payments.reconciliation import (
    payment_check_waiting_pix,
    payment_withdraw_charge,
    payments_reconcile,
)
from payments.sweeps import payments_sweep_outbox
from tests.gateway_fixtures import drive
from tests.helpers import pix_body, post_payment, queued_messages

pytestmark = [pytest.mark.services]

PAYMENTS_QUEUE = Queue("payments", Exchange("payments", type="direct"), routing_key="payments")


def drain_jobs(bound: Any) -> list[list[str]]:
    """Every job in the payments queue (its args), acknowledged."""
    return [message.decode()[0] for message in queued_messages(bound)]


def make_overdue(*payments: Payment) -> None:
    Payment.objects.filter(pk__in=[p.pk for p in payments]).update(
        next_attempt_at=timezone.now() - timedelta(hours=1)
    )


def make_stuck(payment: Payment) -> None:
    Payment.objects.filter(pk=payment.pk).update(updated_at=timezone.now() - timedelta(hours=1))


@pytest.mark.django_db(transaction=True)
def test_payments_accepted_while_the_broker_is_down_are_dispatched_once_by_the_sweep(
    api: Any, gateways: Any, sim: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CELERY_BROKER_URL", "amqp://guest:guest@127.0.0.1:1//")
    dead = Celery("dead-broker")
    dead.conf.broker_connection_timeout = 0.5
    dead.conf.task_publish_retry_policy = {"max_retries": 0}
    monkeypatch.setattr(celery_app, "send_task", dead.send_task)  # jobs publish through it
    ids = [post_payment(api, pix_body(), key=f"outage-{n}").json()["id"] for n in range(3)]
    assert set(Payment.objects.filter(pk__in=ids).values_list("status", flat=True)) == {S.PENDING}
    monkeypatch.undo()  # the broker is back

    with celery_app.connection_for_write() as connection:
        bound = PAYMENTS_QUEUE(connection.default_channel)
        bound.declare()
        bound.purge()
        assert payments_sweep_outbox() == 0  # not overdue yet: their jobs may only be late
        make_overdue(*Payment.objects.filter(pk__in=ids))
        assert payments_sweep_outbox() == 3
        assert payments_sweep_outbox() == 0  # swept ones wait another grace period
        jobs = drain_jobs(bound)

    assert sorted(job[0] for job in jobs) == sorted(ids)
    for payment_id, token in jobs:
        payment = Payment.objects.get(pk=payment_id)
        assert token == str(payment.dispatch_token)
        assert drive(payment).payment.status == S.AWAITING_PAYMENT
    for payment_id in ids:
        assert len(sim.charges(payment_id)) == 1


@pytest.mark.django_db
def test_a_late_original_job_and_a_swept_one_charge_once(pix_payment: Any, sim: Any) -> None:
    payment = pix_payment()
    token = str(payment.dispatch_token)  # both jobs carry the same token

    assert drive(payment).payment.status == S.AWAITING_PAYMENT
    assert payment_process_step(payment.pk, token) is None
    assert len(sim.charges(payment.id)) == 1


@pytest.mark.django_db
def test_stuck_after_a_timeout_is_settled_from_the_gateway(pix_payment: Any, sim: Any) -> None:
    sim.faults("mercadopago", timeout_rate=1)
    payment = pix_payment()
    payment_process_step(payment.pk, str(payment.dispatch_token))  # times out; job then lost
    sim.reset_faults()
    make_stuck(payment)

    assert payments_reconcile() == {"settled": 1}

    payment.refresh_from_db()
    assert payment.status == S.AWAITING_PAYMENT
    assert payment.attempts.get().outcome == AttemptOutcome.AMBIGUOUS
    assert payment.events.last().reason.startswith("reconciled: mercadopago reports pending")
    assert len(sim.charges(payment.id)) == 1


@pytest.mark.django_db
def test_a_parked_payment_is_settled_once_the_gateway_answers(
    card_payment: Any, second_stripe: Any, sim: Any
) -> None:
    sim.faults("stripe", timeout_rate=1)
    payment = card_payment()

    def gateway_gone(number: int) -> None:
        if number == 3:
            sim.faults("stripe", down=True, down_mode="503")

    payment = drive(payment, before_step=gateway_gone).payment
    assert payment.needs_reconciliation

    assert payments_reconcile() == {"parked": 1}  # still unreachable: stays parked
    sim.reset_faults()
    assert payments_reconcile() == {"settled": 1}

    payment.refresh_from_db()
    assert payment.status == S.SUCCEEDED
    assert not payment.needs_reconciliation
    assert payment.parked_reason == ""
    assert [c["gateway"] for c in sim.charges(payment.id)] == ["stripe"]


@pytest.mark.django_db
def test_a_stuck_payment_without_a_charge_resumes_processing(pix_payment: Any, sim: Any) -> None:
    sim.faults("mercadopago", down=True, down_mode="503")
    payment = pix_payment()
    payment_process_step(payment.pk, str(payment.dispatch_token))  # retryable; job lost
    make_stuck(payment)
    sim.reset_faults()

    assert payments_reconcile() == {"resumed": 1}

    payment.refresh_from_db()
    assert payment.status == S.PROCESSING
    assert drive(payment).payment.status == S.AWAITING_PAYMENT
    assert len(sim.charges(payment.id)) == 1


@pytest.mark.django_db
def test_recent_processing_payments_are_left_alone(pix_payment: Any, sim: Any) -> None:
    sim.faults("mercadopago", down=True, down_mode="503")
    payment = pix_payment()
    payment_process_step(payment.pk, str(payment.dispatch_token))

    assert payments_reconcile() == {}


@pytest.mark.django_db
def test_an_expired_unpaid_pix_charge_is_cancelled_and_expired(pix_payment: Any, sim: Any) -> None:
    payment = drive(pix_payment()).payment
    Payment.objects.filter(pk=payment.pk).update(
        pix_expires_at=timezone.now() - timedelta(seconds=1)
    )

    assert payments_reconcile() == {"expired": 1}

    payment.refresh_from_db()
    assert payment.status == S.EXPIRED
    assert payment.failure_code == "expired"
    assert sim.charges(payment.id)[0]["status"] == "cancelled"


@pytest.mark.django_db
def test_an_expired_pix_charge_that_was_paid_succeeds(
    pix_payment: Any, sim: Any, processing_settings: LazySettings
) -> None:
    payment = drive(pix_payment()).payment
    paid = sim.http.post(f"/pix/{payment.gateway_reference}/pay", params={"gateway": "mercadopago"})
    assert paid.status_code == 200, paid.text
    Payment.objects.filter(pk=payment.pk).update(
        pix_expires_at=timezone.now() - timedelta(seconds=1)
    )

    assert payments_reconcile() == {"succeeded": 1}

    payment.refresh_from_db()
    assert payment.status == S.SUCCEEDED
    assert "callback missed" in payment.events.last().reason


def _waiting_pix(gateway: str, gateways: dict[str, Any], pix_payment: Any) -> Payment:
    """A PIX payment shown to its payer at `gateway`, through the real SDK."""
    if gateway != "mercadopago":  # the first PIX gateway steps aside
        gateways["mercadopago"].enabled = False
        gateways["mercadopago"].save()
    payment = drive(pix_payment()).payment
    assert (payment.status, payment.gateway) == (S.AWAITING_PAYMENT, gateway)
    return payment


def _check_due(payment: Payment, *, waited: timedelta = timedelta(minutes=5)) -> None:
    """Its code shown `waited` ago (a code of a day), its look due."""
    now = timezone.now()
    Payment.objects.filter(pk=payment.pk).update(
        next_attempt_at=now - timedelta(seconds=1),
        pix_expires_in=86400,
        pix_expires_at=now - waited + timedelta(days=1),
    )


def _checks_counted(gateway: str, outcome: str) -> float:
    labels = {"gateway": gateway, "outcome": outcome}
    return REGISTRY.get_sample_value("paywave_pix_checks_total", labels) or 0.0


def _seconds_until_next_check(payment: Payment) -> float:
    payment.refresh_from_db()
    return (payment.next_attempt_at - timezone.now()).total_seconds()


class _StartedConsumer:
    """What a worker's worker_ready signal is sent by, as far as its receivers read it."""

    app = celery_app


@pytest.mark.django_db
def test_a_worker_starts_each_pix_gateways_missed_callbacks_at_zero(
    gateways: dict[str, Any], settings: LazySettings
) -> None:
    """PayWavePixCallbacksMissed counts increase(): a series that first appears at 1 is
    an increase nobody sees."""
    Gateway.objects.create(
        code="pix-newly-added", adapter="mercadopago", display_name="A new PIX account",
        priority=90, methods=["pix"], currencies=["BRL"], countries=["BR"],
    )  # fmt: skip
    settings.PAYWAVE_WEBHOOK_POLLER = False  # the signal's other receiver starts nothing
    started = signals.worker_ready.send(sender=_StartedConsumer())  # as a worker starts

    assert not [error for _, error in started if isinstance(error, Exception)]

    def missed(gateway: str) -> float | None:
        labels = {"gateway": gateway, "outcome": "succeeded"}
        return REGISTRY.get_sample_value("paywave_pix_checks_total", labels)

    assert missed("pix-newly-added") == 0.0
    assert missed("stripe") is None  # cards are never looked up this way


@pytest.mark.django_db
@pytest.mark.parametrize("gateway", ["mercadopago", "gerencianet"])
def test_a_paid_pix_whose_callback_was_lost_succeeds_at_its_first_check_not_at_expiry(
    gateway: str, gateways: dict[str, Any], pix_payment: Any, sim: Any
) -> None:
    payment = _waiting_pix(gateway, gateways, pix_payment)
    assert 295 < _seconds_until_next_check(payment) <= 300  # PAYWAVE_PIX_CHECK_FIRST_SECONDS
    paid = sim.http.post(f"/pix/{payment.gateway_reference}/pay", params={"gateway": gateway})
    assert paid.status_code == 200, paid.text  # its callback goes nowhere: lost
    assert payments_reconcile() == {}  # not looked up before its first check is due

    _check_due(payment)
    counted = _checks_counted(gateway, "succeeded")
    assert payments_reconcile() == {"succeeded": 1}

    assert _checks_counted(gateway, "succeeded") == counted + 1  # PayWavePixCallbacksMissed
    payment.refresh_from_db()
    assert payment.status == S.SUCCEEDED
    assert payment.pix_expires_at > timezone.now() + timedelta(minutes=30)
    assert payment.events.last().reason == f"reconciled: paid at {gateway}, callback missed"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("waited", "next_check_seconds"),
    [(timedelta(minutes=5), 300), (timedelta(minutes=12), 720), (timedelta(hours=3), 1800)],
)
def test_an_unpaid_pix_is_looked_at_again_after_as_long_as_it_has_waited_and_kept_waiting(
    waited: timedelta,
    next_check_seconds: int,
    gateways: dict[str, Any],
    pix_payment: Any,
    sim: Any,
) -> None:
    payment = _waiting_pix("mercadopago", gateways, pix_payment)
    _check_due(payment, waited=waited)
    counted = _checks_counted("mercadopago", "waiting")

    assert payments_reconcile() == {"waiting": 1}

    assert _checks_counted("mercadopago", "waiting") == counted + 1

    assert _seconds_until_next_check(payment) == pytest.approx(next_check_seconds, abs=5)
    assert payment.status == S.AWAITING_PAYMENT
    assert sim.charges(payment.id)[0]["status"] == "pending"  # nothing cancelled before expiry
    assert payments_reconcile() == {}


@pytest.mark.django_db
def test_the_wait_counts_from_when_the_code_was_shown_not_from_the_payment_s_creation(
    gateways: dict[str, Any], pix_payment: Any, sim: Any
) -> None:
    payment = _waiting_pix("mercadopago", gateways, pix_payment)
    Payment.objects.filter(pk=payment.pk).update(created_at=timezone.now() - timedelta(hours=2))
    _check_due(payment, waited=timedelta(minutes=5))  # charged after a long outage

    assert payments_reconcile() == {"waiting": 1}

    assert _seconds_until_next_check(payment) == pytest.approx(300, abs=5)


@pytest.mark.django_db
def test_a_flagged_or_expired_pix_is_not_looked_up_as_waiting(
    gateways: dict[str, Any], pix_payment: Any, sim: Any
) -> None:
    flagged = _waiting_pix("mercadopago", gateways, pix_payment)
    _check_due(flagged)
    Payment.objects.filter(pk=flagged.pk).update(
        needs_reconciliation=True, parked_reason="amount_mismatch"
    )
    expired = drive(pix_payment()).payment
    Payment.objects.filter(pk=expired.pk).update(
        next_attempt_at=timezone.now() - timedelta(seconds=1),
        pix_expires_at=timezone.now() - timedelta(seconds=1),
    )

    assert payments_reconcile() == {"expired": 1}  # for a person, and for its expiry

    flagged.refresh_from_db()
    assert flagged.status == S.AWAITING_PAYMENT


@pytest.mark.django_db
def test_a_look_another_run_took_is_not_taken_again(
    gateways: dict[str, Any], pix_payment: Any, sim: Any
) -> None:
    payment = _waiting_pix("mercadopago", gateways, pix_payment)
    _check_due(payment)
    read_by_this_run = Payment.objects.get(pk=payment.pk)
    assert payment_check_waiting_pix(Payment.objects.get(pk=payment.pk)) == "waiting"  # the other

    assert payment_check_waiting_pix(read_by_this_run) == "moved"

    assert _seconds_until_next_check(payment) == pytest.approx(300, abs=5)


@pytest.mark.django_db
def test_a_look_at_a_payment_cancelled_since_it_was_read_asks_nothing_and_settles_nothing(
    api: Any, wallet_app: Any, pix_payment: Any, sim: Any
) -> None:
    payment = drive(pix_payment(client=wallet_app)).payment
    _check_due(payment)
    read_by_the_run = Payment.objects.get(pk=payment.pk)
    sim.http.post(f"/pix/{payment.gateway_reference}/pay", params={"gateway": payment.gateway})
    assert api.post(f"/api/v1/payments/{payment.id}/cancel").status_code == 200
    asked_before = len(sim.http.get("/requests").json())

    assert payment_check_waiting_pix(read_by_the_run) == "moved"

    assert len(sim.http.get("/requests").json()) == asked_before  # the gateway was not asked

    payment.refresh_from_db()
    assert payment.status == S.CANCELED  # the cancel's own withdrawal deals with the payment


@pytest.mark.django_db
def test_a_waiting_pix_paid_for_another_amount_is_flagged_not_settled(
    gateways: dict[str, Any], pix_payment: Any, sim: Any
) -> None:
    payment = _waiting_pix("mercadopago", gateways, pix_payment)
    Payment.objects.filter(pk=payment.pk).update(amount=payment.amount + 100)
    sim.http.post(f"/pix/{payment.gateway_reference}/pay", params={"gateway": "mercadopago"})
    _check_due(payment)

    assert payments_reconcile() == {"parked": 1}

    payment.refresh_from_db()
    assert (payment.status, payment.parked_reason) == (S.AWAITING_PAYMENT, "amount_mismatch")


@pytest.mark.django_db
def test_a_charge_its_gateway_already_ended_is_left_to_the_expiry_and_said_so(
    gateways: dict[str, Any], pix_payment: Any, sim: Any
) -> None:
    payment = _waiting_pix("mercadopago", gateways, pix_payment)
    adapter_for(gateways["mercadopago"]).cancel(payment.gateway_reference)
    _check_due(payment)

    assert payments_reconcile() == {"gateway_canceled": 1}

    payment.refresh_from_db()
    assert payment.status == S.AWAITING_PAYMENT


@pytest.mark.django_db
def test_a_waiting_pix_whose_gateway_is_down_is_looked_at_again_later(
    gateways: dict[str, Any], pix_payment: Any, sim: Any
) -> None:
    payment = _waiting_pix("mercadopago", gateways, pix_payment)
    _check_due(payment)
    sim.faults("mercadopago", down=True, down_mode="503")

    assert payments_reconcile() == {"unreachable": 1}

    assert _seconds_until_next_check(payment) == pytest.approx(300, abs=5)
    assert payment.status == S.AWAITING_PAYMENT
    sim.reset_faults()
    sim.http.post(f"/pix/{payment.gateway_reference}/pay", params={"gateway": "mercadopago"})
    _check_due(payment)
    assert payments_reconcile() == {"succeeded": 1}


@pytest.mark.django_db
def test_a_waiting_pix_paid_then_refunded_at_the_gateway_is_flagged_not_settled(
    gateways: dict[str, Any], pix_payment: Any, sim: Any
) -> None:
    payment = _waiting_pix("mercadopago", gateways, pix_payment)
    sim.http.post(f"/pix/{payment.gateway_reference}/pay", params={"gateway": "mercadopago"})
    adapter_for(gateways["mercadopago"]).refund(
        reference=payment.gateway_reference, amount=payment.amount, idempotency_key="back"
    )
    _check_due(payment)

    assert payments_reconcile() == {"parked": 1}

    payment.refresh_from_db()
    assert (payment.status, payment.parked_reason) == (S.AWAITING_PAYMENT, "charge_reversed")
    assert payment.needs_reconciliation


@pytest.mark.django_db
def test_a_waiting_pix_its_gateway_does_not_know_is_left_to_its_expiry(
    gateways: dict[str, Any], pix_payment: Any, sim: Any
) -> None:
    payment = _waiting_pix("mercadopago", gateways, pix_payment)
    Payment.objects.filter(pk=payment.pk).update(gateway_reference="1999999999")
    _check_due(payment)

    assert payments_reconcile() == {"not_found": 1}

    assert _seconds_until_next_check(payment) == pytest.approx(300, abs=5)
    assert payment.status == S.AWAITING_PAYMENT


@pytest.mark.django_db
def test_an_abandoned_3ds_payment_is_cancelled_and_failed(
    card_payment: Any, sim: Any, processing_settings: LazySettings
) -> None:
    processing_settings.PAYWAVE_ACTION_TIMEOUT_SECONDS = 600
    payment = drive(card_payment("pm_card_authenticationRequired")).payment
    assert payment.status == S.REQUIRES_ACTION
    assert payments_reconcile() == {}  # the payer still has time
    make_stuck(payment)

    assert payments_reconcile() == {"failed": 1}

    payment.refresh_from_db()
    assert payment.status == S.FAILED
    assert payment.failure_code == "authentication_abandoned"
    assert payment.next_action is None
    assert sim.charges(payment.id)[0]["status"] == "canceled"


@pytest.mark.django_db
def test_cancelling_an_awaiting_pix_payment_withdraws_the_charge(
    api: Any, wallet_app: Any, pix_payment: Any, sim: Any, django_capture_on_commit_callbacks: Any
) -> None:
    payment = drive(pix_payment(client=wallet_app)).payment

    with django_capture_on_commit_callbacks() as callbacks:
        assert api.post(f"/api/v1/payments/{payment.id}/cancel").status_code == 200
    assert len(callbacks) >= 2  # the cache write and the gateway cancel job

    assert payment_withdraw_charge(payment.id)
    assert sim.charges(payment.id)[0]["status"] == "cancelled"


@pytest.mark.django_db
def test_a_charge_paid_before_the_cancel_reached_the_gateway_alerts(
    api: Any, wallet_app: Any, pix_payment: Any, sim: Any, caplog: pytest.LogCaptureFixture
) -> None:
    payment = drive(pix_payment(client=wallet_app)).payment
    sim.http.post(f"/pix/{payment.gateway_reference}/pay", params={"gateway": "mercadopago"})
    assert api.post(f"/api/v1/payments/{payment.id}/cancel").status_code == 200

    assert payment_withdraw_charge(payment.id)

    assert any(getattr(r, "alert", "") == "paid_after_cancel" for r in caplog.records)
