"""Retries, fallback, declines and ambiguous outcomes, step by step against the simulators."""

import uuid
from datetime import timedelta
from typing import Any

import pytest
from django.db.models import F
from django.utils import timezone

from gateways.base import ChargeResult, ChargeStatus
from gateways.circuit import circuit_pass, circuit_record_failure
from gateways.models import Gateway
from gateways.pix.brcode import parse
from notifications.models import Event
from payments.models import AttemptOutcome, OrphanCharge, Payment, PaymentAttempt, PaymentEvent
from payments.models import PaymentStatus as S
from payments.processing import LookupInconclusive, charge_lookup, payment_process_step
from paywave.observability import alerts
from tests.factories import PaymentFactory
from tests.gateway_fixtures import drive

pytestmark = [pytest.mark.services, pytest.mark.django_db]


def outcomes(payment: Payment) -> list[tuple[str, int, str]]:
    return [(a.gateway, a.number, a.outcome) for a in payment.attempts.order_by("id")]


def test_card_succeeds_at_the_primary_in_one_attempt(card_payment: Any, sim: Any) -> None:
    payment = card_payment()

    result = drive(payment)

    payment = result.payment
    assert payment.status == S.SUCCEEDED
    assert payment.gateway == "stripe"
    assert (payment.card_brand, payment.card_last4) == ("visa", "4242")
    assert outcomes(payment) == [("stripe", 1, AttemptOutcome.SUCCEEDED)]
    assert payment.attempts.get().response_summary == {
        "status": "succeeded",
        "raw_status": "succeeded",
    }
    assert result.steps == []
    charges = sim.charges(payment.id)
    assert [(c["gateway"], c["status"], c["amount"]) for c in charges] == [
        ("stripe", "succeeded", payment.amount)
    ]
    assert payment.gateway_reference == charges[0]["id"]
    assert list(payment.events.values_list("to_status", flat=True)) == [
        S.PROCESSING,
        S.SUCCEEDED,
    ]
    assert list(Event.objects.filter(subject_id=payment.id).values_list("type", flat=True)) == [
        "payment.processing",
        "payment.succeeded",
    ]
    assert Event.objects.get(type="payment.succeeded").data["status"] == "succeeded"


def test_pix_awaits_payment_with_a_valid_br_code(pix_payment: Any, sim: Any) -> None:
    payment = drive(pix_payment(amount=1999)).payment

    assert payment.status == S.AWAITING_PAYMENT
    assert payment.gateway == "mercadopago"
    code = parse(payment.pix_qr_code)
    assert code.amount == 1999
    assert payment.pix_txid
    assert payment.pix_expires_at > timezone.now() + timedelta(minutes=50)
    assert len(sim.charges(payment.id)) == 1


@pytest.mark.parametrize("gateway", ["mercadopago", "gerencianet"])
def test_a_pix_code_for_another_amount_is_never_shown_the_payment_is_parked(
    pix_payment: Any, gateways: Any, sim: Any, caplog: pytest.LogCaptureFixture, gateway: str
) -> None:
    """The charge is right, its BR Code is not: a payer must never be asked to pay it."""
    if gateway == "gerencianet":
        Gateway.objects.filter(code="mercadopago").update(enabled=False)  # Efí first
    sim.faults(gateway, br_code="wrong_amount")

    payment = drive(pix_payment(amount=1050)).payment

    assert (payment.status, payment.gateway) == (S.PROCESSING, "")
    assert (payment.needs_reconciliation, payment.parked_reason) == (
        True, "invalid_gateway_answer",
    )  # fmt: skip
    problem = "BR Code amount 1051 is not 1050"
    assert payment.reconciliation_reason == f"unusable PIX charge from {gateway}: {problem}"
    assert (payment.pix_qr_code, payment.pix_txid) == ("", "")
    assert [c["gateway"] for c in sim.charges(payment.id)] == [gateway]  # no second charge
    assert not Event.objects.filter(subject_id=payment.id, type="payment.awaiting_payment")
    alerts = [r for r in caplog.records if getattr(r, "alert", "") == "invalid_gateway_answer"]
    assert [(r.payment_id, r.gateway, r.getMessage()) for r in alerts] == [
        (str(payment.id), gateway, f"gateway {gateway} returned an unusable PIX charge: {problem}")
    ]


def test_a_malformed_pix_code_is_never_shown_the_next_gateway_issues_one(
    pix_payment: Any, sim: Any
) -> None:
    sim.faults("mercadopago", br_code="bad_crc")

    payment = drive(pix_payment(amount=1050)).payment

    assert (payment.status, payment.gateway) == (S.AWAITING_PAYMENT, "gerencianet")
    assert parse(payment.pix_qr_code).amount == 1050
    assert [(g, o) for g, _, o in outcomes(payment)] == [
        ("mercadopago", AttemptOutcome.AMBIGUOUS),
        ("mercadopago", AttemptOutcome.AMBIGUOUS),
        ("mercadopago", AttemptOutcome.AMBIGUOUS),
        ("gerencianet", AttemptOutcome.SUCCEEDED),
    ]
    [orphan] = OrphanCharge.objects.filter(payment=payment)
    assert (orphan.gateway, orphan.status) == ("mercadopago", "open")  # withdrawn later
    first = payment.attempts.order_by("id").first()
    assert (orphan.idempotency_key, orphan.charge_params) == (
        first.idempotency_key,
        first.charge_params,
    )  # withdrawn with what was sent
    assert orphan.reference == ""  # no answer named it: found by its key
    assert orphan.reason == "the tries ended with no usable answer and the lookup could not tell"


def test_3ds_card_requires_action(card_payment: Any, sim: Any) -> None:
    payment = drive(card_payment("pm_card_authenticationRequired")).payment

    assert payment.status == S.REQUIRES_ACTION
    assert (payment.card_brand, payment.card_last4) == ("visa", "3184")  # shown while it waits
    assert payment.next_action["type"] == "redirect_to_url"
    assert "/_sim/card/" in payment.next_action["redirect_to_url"]["url"]


def test_primary_down_three_tries_with_backoff_then_fallback(pix_payment: Any, sim: Any) -> None:
    sim.faults("mercadopago", down=True, down_mode="503")
    payment = pix_payment()
    scheduled: list[timedelta] = []

    def note_schedule(number: int) -> None:
        if number:
            current = Payment.objects.get(pk=payment.pk)
            scheduled.append(current.next_attempt_at - timezone.now())

    result = drive(payment, before_step=note_schedule)

    payment = result.payment
    assert payment.status == S.AWAITING_PAYMENT
    assert payment.gateway == "gerencianet"
    assert outcomes(payment) == [
        ("mercadopago", 1, AttemptOutcome.RETRYABLE),
        ("mercadopago", 2, AttemptOutcome.RETRYABLE),
        ("mercadopago", 3, AttemptOutcome.RETRYABLE),
        ("gerencianet", 1, AttemptOutcome.SUCCEEDED),
    ]
    # base 1 s, factor 2, jitter 20 %; the fallback is immediate.
    first, second, fallback = result.countdowns
    assert 0.8 <= first <= 1.2
    assert 1.6 <= second <= 2.4
    assert fallback == 0
    assert scheduled[0] <= timedelta(seconds=1.2)
    assert scheduled[1] > timedelta(seconds=1.4)  # next_attempt_at follows the countdown
    assert sim.charges(payment.id, gateway="mercadopago") == []
    assert len(sim.charges(payment.id, gateway="gerencianet")) == 1


def test_decline_is_final_and_no_other_gateway_is_called(
    card_payment: Any, second_stripe: Any, sim: Any
) -> None:
    payment = drive(card_payment("pm_card_chargeDeclined")).payment

    assert payment.status == S.FAILED
    assert (payment.gateway, payment.failure_code) == ("stripe", "card_declined")
    assert payment.failure_message == "stripe: the card was declined"
    assert outcomes(payment) == [("stripe", 1, AttemptOutcome.DECLINED)]
    assert story(payment) == [
        (S.PENDING, S.PROCESSING, "picked up for charging"),
        (S.PROCESSING, S.FAILED, "declined at stripe"),
    ]
    assert len(sim.charges(payment.id)) == 1  # the declined intent, at the primary only


def test_a_charge_answered_not_found_counts_as_ambiguous(pix_payment: Any, sim: Any) -> None:
    """A 404 to a create (a proxy in front of the gateway, a wrong route) says nothing of
    whether the charge was made: tried again, then looked up, never taken as a decline."""
    sim.faults("mercadopago", error_rate=1, error_status=404)

    payment = drive(pix_payment()).payment

    here = list(payment.attempts.filter(gateway="mercadopago").order_by("id"))
    assert [(a.outcome, a.error_class) for a in here] == [
        (AttemptOutcome.AMBIGUOUS, "ChargeNotFound")
    ] * 3
    assert here[0].error_message == "mercadopago: no such payment"
    assert (payment.status, payment.gateway) == (S.AWAITING_PAYMENT, "gerencianet")


def test_credentials_refused_alert_operators_with_the_payment_gateway_and_try(
    card_payment: Any,
    sim: Any,
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks: Any,
) -> None:
    settings.PAYWAVE_ALERT_WEBHOOK_URL = "http://alerts.invalid/hook"
    sent: list[tuple[str, str, dict[str, Any]]] = []
    monkeypatch.setattr(alerts, "_senders", [lambda *alert: sent.append(alert)])
    sim.faults("stripe", error_rate=1, error_status=401)
    payment = card_payment()

    with django_capture_on_commit_callbacks(execute=True):
        payment_process_step(payment.pk, str(payment.dispatch_token))

    assert [alert for alert in sent if alert[0] == "gateway_misconfigured"] == [
        (
            "gateway_misconfigured",
            "gateway stripe refused our credentials: stripe: credentials refused",
            {"payment_id": str(payment.id), "gateway": "stripe", "attempt": 1},
        )
    ]


def test_a_decline_counts_as_the_gateway_working_for_its_circuit(
    card_payment: Any, sim: Any, settings: Any
) -> None:
    settings.PAYWAVE_CIRCUIT_THRESHOLD = 2
    circuit_record_failure("stripe")

    drive(card_payment("pm_card_chargeDeclined"))  # the gateway answered: it works
    circuit_record_failure("stripe")

    assert circuit_pass("stripe") is not None  # one failure since the decline, not two in a row


def test_a_refused_pix_charge_fails_as_the_payers_not_the_cards(pix_payment: Any, sim: Any) -> None:
    sim.faults("mercadopago", error_rate=1, error_status=400)

    payment = drive(pix_payment()).payment

    assert (payment.status, payment.gateway) == (S.FAILED, "mercadopago")
    assert payment.failure_code == "invalid_payer"
    assert payment.failure_message == "mercadopago: the payment was refused"
    assert outcomes(payment) == [("mercadopago", 1, AttemptOutcome.DECLINED)]


def story(payment: Payment) -> list[tuple[str, str, str]]:
    return list(payment.events.order_by("id").values_list("from_status", "to_status", "reason"))


def test_everything_down_fails_with_gateways_exhausted_and_an_alert(
    card_payment: Any, second_stripe: Any, sim: Any, caplog: pytest.LogCaptureFixture
) -> None:
    sim.faults("stripe", error_rate=1, error_status=429)  # refused before anything ran

    result = drive(card_payment())

    payment = result.payment
    assert payment.status == S.FAILED
    assert payment.failure_code == "gateways_exhausted"
    assert [(g, n) for g, n, _ in outcomes(payment)] == [
        ("stripe", 1), ("stripe", 2), ("stripe", 3),
        ("stripe-backup", 1), ("stripe-backup", 2), ("stripe-backup", 3),
    ]  # fmt: skip
    message = "Every gateway failed (6 attempts at stripe, stripe-backup)."
    assert payment.failure_message == message
    assert story(payment) == [
        (S.PENDING, S.PROCESSING, "picked up for charging"),
        (S.PROCESSING, S.FAILED, "gateways exhausted"),
    ]
    alerts = [r for r in caplog.records if getattr(r, "alert", "") == "gateways_exhausted"]
    assert len(alerts) == 1
    assert (alerts[0].payment_id, alerts[0].attempts) == (str(payment.id), 6)
    assert alerts[0].getMessage() == f"payment {payment.id} failed: {message}"
    assert sim.charges(payment.id) == []


@pytest.mark.parametrize(
    ("method", "gateway", "charged_status", "final_status"),
    [
        ("pix", "mercadopago", "pending", S.AWAITING_PAYMENT),
        ("card", "stripe", "succeeded", S.SUCCEEDED),
    ],
)
def test_a_timeout_after_the_charge_is_retried_with_the_same_key_one_charge(
    request: pytest.FixtureRequest,
    sim: Any,
    method: str,
    gateway: str,
    charged_status: str,
    final_status: str,
) -> None:
    sim.faults(gateway, timeout_rate=1)  # the charge is made, the answer never comes
    payment = request.getfixturevalue(f"{method}_payment")()

    def heal(number: int) -> None:
        if number == 1:
            sim.reset_faults()

    payment = drive(payment, before_step=heal).payment

    assert payment.status == final_status
    assert outcomes(payment) == [
        (gateway, 1, AttemptOutcome.AMBIGUOUS),
        (gateway, 2, AttemptOutcome.SUCCEEDED),
    ]
    keys = set(payment.attempts.values_list("idempotency_key", flat=True))
    assert len(keys) == 1
    charges = sim.charges(payment.id)
    assert len(charges) == 1  # the retry replayed the first charge's idempotency key
    assert charges[0]["status"] == charged_status
    assert payment.gateway_reference == charges[0]["id"]


def test_a_failure_of_ours_after_the_call_counts_as_ambiguous_one_charge(
    card_payment: Any, sim: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Something unforeseen breaks after the request went out (a parsing bug, say): the
    charge may exist, so the try is ambiguous, never a failure that would let another
    gateway charge the card; the retry replays the same key."""
    from gateways.adapters.stripe import StripeAdapter

    charge = StripeAdapter.charge
    broken = {"calls": 0}

    def charged_then_broke(self: StripeAdapter, request: Any) -> Any:
        result = charge(self, request)
        broken["calls"] += 1
        if broken["calls"] == 1:
            raise KeyError("status")
        return result

    monkeypatch.setattr(StripeAdapter, "charge", charged_then_broke)

    payment = drive(card_payment()).payment

    assert payment.status == S.SUCCEEDED
    assert outcomes(payment) == [
        ("stripe", 1, AttemptOutcome.AMBIGUOUS),
        ("stripe", 2, AttemptOutcome.SUCCEEDED),
    ]
    first = payment.attempts.order_by("id").first()
    assert (first.error_class, first.error_message) == (
        "Ambiguous", "unexpected KeyError during the call"
    )  # fmt: skip
    assert len(sim.charges(payment.id)) == 1


def test_ambiguous_until_the_end_is_looked_up_before_any_fallback(
    pix_payment: Any, sim: Any
) -> None:
    sim.faults("mercadopago", timeout_rate=1)
    payment = pix_payment()

    def heal_for_the_lookup(number: int) -> None:
        if number == 3:  # after three timeouts; the lookup sees the gateway again
            sim.reset_faults()

    payment = drive(payment, before_step=heal_for_the_lookup).payment

    assert payment.status == S.AWAITING_PAYMENT
    assert payment.gateway == "mercadopago"
    assert [o for _, _, o in outcomes(payment)] == [AttemptOutcome.AMBIGUOUS] * 3
    charges = sim.charges(payment.id)
    assert [c["gateway"] for c in charges] == ["mercadopago"]  # never charged at the fallback


def test_a_card_ambiguous_and_unresolvable_is_parked_not_charged_elsewhere(
    card_payment: Any, second_stripe: Any, sim: Any, caplog: pytest.LogCaptureFixture
) -> None:
    sim.faults("stripe", timeout_rate=1)
    payment = card_payment()

    def gateway_gone(number: int) -> None:
        if number == 3:
            sim.faults("stripe", down=True, down_mode="503")

    payment = drive(payment, before_step=gateway_gone).payment

    assert payment.status == S.PROCESSING
    assert payment.needs_reconciliation
    assert payment.parked_reason == "charge_unconfirmed"
    assert payment.reconciliation_reason == (
        "charge at stripe unknown: Ambiguous: stripe: HTTP 503, the outcome is unknown"
    )
    assert sim.charges(payment.id, gateway="stripe-backup") == []
    assert any(getattr(r, "alert", "") == "payment_parked" for r in caplog.records)
    # A parked payment's jobs do nothing, not even a lookup: reconciliation owns it.
    sim.reset_faults()  # a lookup now would find the charge and settle the payment
    assert payment_process_step(payment.pk, str(payment.dispatch_token)) is None
    payment.refresh_from_db()
    assert (payment.status, payment.needs_reconciliation) == (S.PROCESSING, True)


def test_a_card_whose_gateway_was_deleted_after_a_lost_answer_is_parked(
    card_payment: Any, second_stripe: Any, sim: Any
) -> None:
    sim.faults("stripe", timeout_rate=1)

    def gateway_deleted(number: int) -> None:
        if number == 3:  # three answers lost: the next step would look the charge up there
            Gateway.objects.filter(code="stripe").delete()

    payment = drive(card_payment(), before_step=gateway_deleted).payment

    assert (payment.status, payment.parked_reason) == (S.PROCESSING, "charge_unconfirmed")
    assert payment.reconciliation_reason == (
        "charge at stripe unknown: gateway stripe no longer exists"
    )
    assert sim.charges(payment.id, gateway="stripe-backup") == []


def test_a_lookup_that_fails_unexpectedly_is_inconclusive_never_absent() -> None:
    payment = PaymentFactory(status=S.PROCESSING)
    unbuildable = Gateway(code="odd", adapter="no-such-adapter", updated_at=timezone.now())

    with pytest.raises(LookupInconclusive) as raised:
        charge_lookup(unbuildable, payment)

    assert str(raised.value) == "unexpected KeyError"


def test_no_gateway_for_the_payment_fails_clearly(card_payment: Any, gateways: Any) -> None:
    gateways["stripe"].currencies = ["BRL"]
    gateways["stripe"].save()

    payment = drive(card_payment(currency="USD")).payment

    assert payment.status == S.FAILED
    assert payment.failure_code == "gateways_exhausted"
    assert payment.failure_message == (
        "No enabled gateway takes this method, currency and payer country."
    )
    assert payment.attempts.count() == 0
    assert story(payment) == [  # through processing all the same
        (S.PENDING, S.PROCESSING, "picked up for charging"),
        (S.PROCESSING, S.FAILED, "gateways exhausted"),
    ]


def test_a_duplicate_or_stale_job_does_nothing(card_payment: Any, sim: Any) -> None:
    payment = card_payment()
    token = str(payment.dispatch_token)

    assert payment_process_step(payment.pk, token) is None
    assert payment_process_step(payment.pk, token) is None  # the same job delivered twice
    assert payment_process_step(payment.pk, "00000000-0000-4000-8000-000000000000") is None

    assert PaymentAttempt.objects.filter(payment=payment).count() == 1
    assert len(sim.charges(payment.id)) == 1
    assert PaymentEvent.objects.filter(payment=payment, to_status=S.PROCESSING).count() == 1


def test_a_job_with_another_token_does_nothing_to_a_waiting_payment(
    card_payment: Any, sim: Any
) -> None:
    payment = card_payment()

    assert payment_process_step(payment.pk, "00000000-0000-4000-8000-000000000000") is None

    assert not PaymentAttempt.objects.filter(payment=payment).exists()
    assert sim.charges(payment.id) == []


def test_an_attempt_in_flight_waits_for_its_deadline_then_counts_as_ambiguous(
    pix_payment: Any, sim: Any, gateways: Any
) -> None:
    payment = pix_payment(status=S.PROCESSING)
    key = f"paywave-{payment.id}-mercadopago"
    in_flight = PaymentAttempt.objects.create(
        payment=payment, gateway="mercadopago", number=1, idempotency_key=key,
        outcome=AttemptOutcome.IN_FLIGHT, deadline_at=timezone.now() + timedelta(seconds=30),
    )  # fmt: skip

    step = payment_process_step(payment.pk, str(payment.dispatch_token))

    assert step is not None
    assert step.token == str(payment.dispatch_token)
    assert 30 < step.countdown <= 30.5  # just past the deadline, never before it
    assert payment.attempts.count() == 1

    other = pix_payment(status=S.PROCESSING)  # its call, in another worker, is still live
    theirs = PaymentAttempt.objects.create(
        payment=other, gateway="mercadopago", number=1, idempotency_key=f"paywave-{other.id}",
        outcome=AttemptOutcome.IN_FLIGHT, deadline_at=timezone.now() - timedelta(seconds=1),
    )  # fmt: skip
    PaymentAttempt.objects.filter(pk=in_flight.pk).update(deadline_at=timezone.now())
    payment = drive(payment).payment

    assert payment.status == S.AWAITING_PAYMENT
    assert outcomes(payment) == [
        ("mercadopago", 1, AttemptOutcome.AMBIGUOUS),
        ("mercadopago", 2, AttemptOutcome.SUCCEEDED),
    ]
    lost = payment.attempts.first()
    assert (lost.error_class, lost.error_message) == (
        "WorkerLost", "the worker stopped during the call; the charge may exist",
    )  # fmt: skip
    assert PaymentAttempt.objects.get(pk=theirs.pk).outcome == AttemptOutcome.IN_FLIGHT


def test_attempts_show_in_the_payment_document_at_once(
    api: Any, wallet_app: Any, pix_payment: Any, sim: Any, django_capture_on_commit_callbacks: Any
) -> None:
    sim.faults("mercadopago", down=True, down_mode="503")
    payment = pix_payment(client=wallet_app)
    assert api.get(f"/api/v1/payments/{payment.id}").json()["attempts"] == []  # now cached

    with django_capture_on_commit_callbacks(execute=True):
        payment_process_step(payment.pk, str(payment.dispatch_token))

    document = api.get(f"/api/v1/payments/{payment.id}").json()
    assert document["status"] == "processing"
    assert [(a["gateway"], a["outcome"]) for a in document["attempts"]] == [
        ("mercadopago", "retryable")
    ]
    stored = Payment.objects.get(pk=payment.pk)
    assert stored.updated_at > payment.updated_at  # the attempt moved it, the document too
    assert document["updated_at"] == stored.updated_at.isoformat().replace("+00:00", "Z")

    sim.reset_faults()  # the next try succeeds: the cache follows the next version too
    with django_capture_on_commit_callbacks(execute=True):
        drive(stored)
    document = api.get(f"/api/v1/payments/{payment.id}").json()
    assert document["status"] == "awaiting_payment"
    assert [a["outcome"] for a in document["attempts"]] == ["retryable", "succeeded"]
    stored_latencies = list(stored.attempts.order_by("id").values_list("latency_ms", flat=True))
    assert [a["latency_ms"] for a in document["attempts"]] == stored_latencies


@pytest.mark.parametrize("moved", [False, True], ids=["unchanged", "moved since read"])
def test_an_attempt_in_flight_shows_in_the_document_while_its_call_is_out(
    api: Any,
    wallet_app: Any,
    pix_payment: Any,
    gateways: Any,
    sim: Any,
    django_capture_on_commit_callbacks: Any,
    moved: bool,
) -> None:
    """A claimed attempt is written with a new version of the payment, and the cached
    document follows at commit: a wallet app polling while the gateway call is out sees the
    try in flight. The same whether the claim's guarded write found the row as the job read
    it, or the row had moved (an edit) and the claim took the lock."""
    from payments import processing

    payment = pix_payment(client=wallet_app)
    mercadopago = gateways["mercadopago"]

    def claim(number: int, attempts: list[PaymentAttempt]) -> dict[str, Any]:
        read = Payment.objects.get(pk=payment.pk)
        if moved:
            Payment.objects.filter(pk=payment.pk).update(version=F("version") + 1)
        request = processing.charge_request_for(read, mercadopago.code, attempts)
        with django_capture_on_commit_callbacks(execute=True):
            assert processing._claim_attempt(read, mercadopago, number, request, attempts)
        stored = Payment.objects.get(pk=payment.pk)
        document = api.get(f"/api/v1/payments/{payment.id}").json()
        assert document["updated_at"] == stored.updated_at.isoformat().replace("+00:00", "Z")
        return document

    bystander = pix_payment(client=wallet_app)  # another wallet app's payment: untouched
    assert api.get(f"/api/v1/payments/{payment.id}").json()["status"] == "pending"  # cached
    first = claim(1, [])
    assert first["status"] == "processing"
    assert [(a["number"], a["outcome"]) for a in first["attempts"]] == [(1, "in_flight")]
    [event] = PaymentEvent.objects.filter(payment_id=payment.pk)
    assert (event.from_status, event.to_status, event.reason) == (
        S.PENDING, S.PROCESSING, "picked up for charging"
    )  # fmt: skip

    PaymentAttempt.objects.filter(payment_id=payment.pk).update(outcome=AttemptOutcome.RETRYABLE)
    second = claim(2, list(PaymentAttempt.objects.filter(payment_id=payment.pk)))
    assert second["status"] == "processing"
    assert [(a["number"], a["outcome"]) for a in second["attempts"]] == [
        (1, "retryable"), (2, "in_flight")
    ]  # fmt: skip
    assert PaymentEvent.objects.filter(payment_id=payment.pk).count() == 1  # no new status
    assert Payment.objects.get(pk=bystander.pk).version == bystander.version


@pytest.mark.parametrize(
    "taken_away",
    [{"dispatch_token": uuid.uuid4()}, {"needs_reconciliation": True}],
    ids=["another job's token", "parked"],
)
def test_a_claim_checks_the_token_and_the_parking_not_only_the_version(
    card_payment: Any, gateways: Any, sim: Any, taken_away: dict[str, Any]
) -> None:
    """The claim's guarded write compares the job's token and the parking flag itself,
    whatever else moved the row's version: a job whose payment another job was handed,
    or reconciliation took over, makes no attempt and no call."""
    from payments import processing

    payment = card_payment()
    read = Payment.objects.get(pk=payment.pk)
    Payment.objects.filter(pk=payment.pk).update(**taken_away)  # and not the version
    stripe = gateways["stripe"]
    request = processing.charge_request_for(read, stripe.code, [])

    assert processing._claim_attempt(read, stripe, 1, request, []) is None

    assert outcomes(payment) == []
    assert Payment.objects.get(pk=payment.pk).status == S.PENDING


@pytest.mark.parametrize(
    ("status", "settled_as"),
    [(ChargeStatus.SUCCEEDED, S.SUCCEEDED), (ChargeStatus.REQUIRES_ACTION, S.REQUIRES_ACTION)],
)
def test_a_result_for_a_copy_read_before_the_row_moved_still_settles_it(
    card_payment: Any, gateways: Any, sim: Any, status: ChargeStatus, settled_as: str
) -> None:
    """A callback or a lookup hands over a copy it read itself, with no attempts: the
    result is applied to the row as it is now (locked), not compared with that copy's
    version, which the job's own writes may have moved since."""
    from payments import processing

    payment = card_payment()
    stripe = gateways["stripe"]
    request = processing.charge_request_for(payment, stripe.code, [])
    assert processing._claim_attempt(payment, stripe, 1, request, [])
    read = Payment.objects.get(pk=payment.pk)
    Payment.objects.filter(pk=payment.pk).update(version=F("version") + 1)  # the job's touch
    result = ChargeResult(
        status=status, reference="pi_1", raw_status=str(status), amount=payment.amount,
        currency=payment.currency,
    )  # fmt: skip

    assert processing.charge_result_apply(read, stripe, result, reason="callback") == "settled"

    assert Payment.objects.get(pk=payment.pk).status == settled_as


def test_a_job_that_counted_attempts_before_another_claimed_one_makes_no_second(
    card_payment: Any, gateways: Any, sim: Any
) -> None:
    """Two jobs with the same token (a redelivered message): the second read the payment
    before the first claimed attempt 1, and claims attempt 1 after it."""
    from payments import processing

    payment = card_payment()
    stale = Payment.objects.get(pk=payment.pk)  # the second job's read: no attempt yet
    stripe = gateways["stripe"]
    request = processing.charge_request_for(payment, stripe.code, [])
    assert processing._claim_attempt(payment, stripe, 1, request, []) is not None  # the first job

    assert processing._attempt(stale, stripe, 1, []) is None  # the second job

    assert outcomes(payment) == [("stripe", 1, AttemptOutcome.IN_FLIGHT)]
    assert sim.charges(payment.id) == []  # the second job never called the gateway


def test_a_job_whose_payment_was_edited_after_its_read_still_charges_once(
    card_payment: Any, sim: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The payment's version moved (a wallet app edited its description) between the job's
    read and its claim: the attempts are counted again, none was made, the job goes on."""
    from payments import processing

    choose = processing._choose

    def chosen_then_edited(payment: Payment, attempts: list[PaymentAttempt]) -> Any:
        chosen = choose(payment, attempts)
        Payment.objects.filter(pk=payment.pk).update(version=F("version") + 1)
        return chosen

    monkeypatch.setattr(processing, "_choose", chosen_then_edited)
    payment = card_payment()

    assert payment_process_step(payment.pk, str(payment.dispatch_token)) is None

    assert outcomes(payment) == [("stripe", 1, AttemptOutcome.SUCCEEDED)]
    assert len(sim.charges(payment.id)) == 1


def test_every_log_line_of_an_attempt_names_the_payment_the_gateway_and_the_try(
    card_payment: Any, sim: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO")
    caplog.set_level("DEBUG", logger="stripe")  # the SDK's own lines, as LOG_LEVEL=DEBUG has
    payment = drive(card_payment()).payment

    sdk_lines = [r for r in caplog.records if r.name == "stripe"]
    assert sdk_lines
    assert {(r.payment_id, r.gateway, r.attempt) for r in sdk_lines} == {
        (str(payment.id), "stripe", 1)
    }


def test_every_attempt_is_measured_and_logged_as_it_was_stored(
    pix_payment: Any,
    sim: Any,
    caplog: pytest.LogCaptureFixture,
    django_capture_on_commit_callbacks: Any,
) -> None:
    """Operators read each try in the latency histogram and in a `gateway_attempt` log line
    (Kibana): its gateway, outcome, error class, payment, try number and latency, the same
    as the attempt row staff see in the admin."""
    sim.faults("mercadopago", down=True, down_mode="503")
    sim.faults("gerencianet", latency_ms=150)
    before = {key: attempt_histogram(*key) for key in HISTOGRAM_KEYS}
    caplog.set_level("INFO", logger="paywave.events")

    with django_capture_on_commit_callbacks(execute=True):
        payment = drive(pix_payment()).payment

    attempts = list(payment.attempts.order_by("id"))
    assert [(a.gateway, a.outcome) for a in attempts] == [
        *[("mercadopago", AttemptOutcome.RETRYABLE)] * 3,
        ("gerencianet", AttemptOutcome.SUCCEEDED),
    ]
    assert all(a.error_class for a in attempts[:3])
    assert not attempts[3].error_class
    assert 150 <= attempts[3].latency_ms < 5000  # the simulator's 150 ms, in milliseconds
    logged = [
        (r.gateway, r.outcome, getattr(r, "error_class", ""), r.payment_id, r.attempt,
         r.latency_ms)
        for r in caplog.records
        if getattr(r, "event", "") == "gateway_attempt"
    ]  # fmt: skip
    assert logged == [
        (a.gateway, a.outcome, a.error_class, str(payment.id), a.number, float(a.latency_ms))
        for a in attempts
    ]
    after = {key: attempt_histogram(*key) for key in HISTOGRAM_KEYS}
    counted = {key: after[key][0] - before[key][0] for key in HISTOGRAM_KEYS}
    assert counted == {("mercadopago", "retryable"): 3, ("gerencianet", "succeeded"): 1}
    seconds = after[("gerencianet", "succeeded")][1] - before[("gerencianet", "succeeded")][1]
    assert seconds == pytest.approx(attempts[3].latency_ms / 1000)


HISTOGRAM_KEYS = [("mercadopago", "retryable"), ("gerencianet", "succeeded")]


def attempt_histogram(gateway: str, outcome: str) -> tuple[float, float]:
    """The gateway-attempt latency histogram's (count, sum) for these labels."""
    from prometheus_client import REGISTRY

    labels = {"gateway": gateway, "outcome": outcome}
    count = REGISTRY.get_sample_value("paywave_gateway_attempt_seconds_count", labels)
    total = REGISTRY.get_sample_value("paywave_gateway_attempt_seconds_sum", labels)
    return count or 0.0, total or 0.0


def test_the_processing_event_shows_the_attempt_as_it_was_stored(
    card_payment: Any, gateways: Any
) -> None:
    from payments import processing
    from payments.serializers import payment_document

    payment = card_payment()
    stripe = gateways["stripe"]
    request = processing.charge_request_for(payment, stripe.code, [])
    processing._claim_attempt(payment, stripe, 1, request, [])

    stored = Payment.objects.get(pk=payment.pk)
    event = Event.objects.get(subject_id=payment.id, type="payment.processing")
    assert event.data["attempts"] == payment_document(stored)["attempts"]
    assert [a["outcome"] for a in event.data["attempts"]] == [AttemptOutcome.IN_FLIGHT]


def test_a_job_that_counted_attempts_before_another_claimed_one_tries_no_other_gateway(
    card_payment: Any, gateways: Any, second_stripe: Any, sim: Any
) -> None:
    """As above, but the second job chose another gateway (a circuit changed between the
    two reads): it must not charge the card there while the first job's call is out."""
    from payments import processing

    payment = card_payment()
    stale = Payment.objects.get(pk=payment.pk)  # the second job's read: no attempt yet
    stripe = gateways["stripe"]
    request = processing.charge_request_for(payment, stripe.code, [])
    assert processing._claim_attempt(payment, stripe, 1, request, []) is not None

    assert processing._attempt(stale, second_stripe, 1, []) is None

    assert outcomes(payment) == [("stripe", 1, AttemptOutcome.IN_FLIGHT)]
    assert sim.charges(payment.id) == []  # no card charged anywhere by the second job


def test_an_attempt_records_its_key_what_it_asked_for_and_the_charge_it_made(
    card_payment: Any, sim: Any
) -> None:
    payment = drive(card_payment(amount=2590, currency="USD")).payment

    attempt = payment.attempts.get()
    # The key every retry, lookup and withdrawal at this gateway is made with.
    assert attempt.idempotency_key == f"paywave-{payment.id}-stripe"
    assert attempt.request_summary == {"amount": 2590, "currency": "USD", "method": "card"}
    [charge] = sim.charges(payment.id)
    assert attempt.gateway_reference == charge["id"]  # a callback for it finds the payment


def test_a_payment_canceled_after_its_job_read_it_is_never_charged(
    card_payment: Any, sim: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The wallet app cancels the pending payment while its job decides where to charge it:
    the job's claim sees the payment no longer pending and makes no call."""
    from payments import processing
    from payments.services import payment_cancel

    choose = processing._choose

    def chosen_then_canceled(payment: Payment, attempts: list[PaymentAttempt]) -> Any:
        chosen = choose(payment, attempts)
        payment_cancel(client_id=payment.client_id, payment_id=payment.pk, actor="wallet")
        return chosen

    monkeypatch.setattr(processing, "_choose", chosen_then_canceled)
    payment = card_payment()

    assert payment_process_step(payment.pk, str(payment.dispatch_token)) is None

    payment.refresh_from_db()
    assert payment.status == S.CANCELED
    assert outcomes(payment) == []
    assert sim.charges(payment.id) == []


def test_a_job_whose_payment_reconciliation_took_over_after_its_read_makes_no_call(
    card_payment: Any, sim: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reconciliation gives a stuck payment a new token (its version unchanged) while a late
    job decides where to charge it: the job's claim sees the token gone and makes no call."""
    from payments import processing, reconciliation

    sim.faults("stripe", error_rate=1, error_status=429)  # refused before anything ran
    payment = card_payment()
    step = payment_process_step(payment.pk, str(payment.dispatch_token))  # try 1: refused
    assert step is not None
    sim.reset_faults()
    choose = processing._choose

    def chosen_then_taken_over(payment: Payment, attempts: list[PaymentAttempt]) -> Any:
        chosen = choose(payment, attempts)
        reconciliation._take_over(Payment.objects.get(pk=payment.pk))
        return chosen

    monkeypatch.setattr(processing, "_choose", chosen_then_taken_over)

    assert payment_process_step(payment.pk, step.token) is None

    assert outcomes(payment) == [("stripe", 1, AttemptOutcome.RETRYABLE)]
    assert sim.charges(payment.id) == []
