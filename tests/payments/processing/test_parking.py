"""Parking and flagging: what the engine does with a charge it must not settle on.

A payment the engine cannot settle is parked (kept `processing`) or, once it waits for
its payer, flagged (its status kept): for a person, with one alert, never twice, and
never another payment. A live charge that answers after the payment moved on is left
as an orphan to withdraw, unless it is the payment's own. These are the engine's own
functions called with a gateway's answer, as a lookup or a callback hands it over.
"""

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.utils import timezone

from gateways.base import ChargeResult, ChargeStatus, Declined, PixCharge
from gateways.models import Gateway
from gateways.pix.brcode import BRCode
from payments.charges import idempotency_key_for
from payments.models import AttemptOutcome, OrphanCharge, Payment, PaymentAttempt, PaymentEvent
from payments.models import PaymentStatus as S
from payments.processing import (
    _claim_attempt,
    _fail_declined,
    _fail_exhausted,
    _flag,
    _on_error,
    _on_result,
    _schedule,
    attempt_mark_lost,
    charge_request_for,
    charge_result_apply,
    payment_park,
    payment_settle_paid,
)
from tests.factories import PaymentFactory

pytestmark = pytest.mark.django_db


def alerts(caplog: pytest.LogCaptureFixture, kind: str) -> list[Any]:
    return [r for r in caplog.records if getattr(r, "alert", "") == kind]


def paid(payment: Payment, *, status: str = ChargeStatus.SUCCEEDED, **fields: Any) -> ChargeResult:
    """What a gateway reports of the payment's charge."""
    return ChargeResult(
        status=ChargeStatus(status),
        reference=fields.pop("reference", "ch_1"),
        raw_status=fields.pop("raw_status", str(status)),
        amount=fields.pop("amount", payment.amount),
        currency=fields.pop("currency", payment.currency),
        **fields,
    )


@pytest.fixture
def efi(gateways: dict[str, Gateway]) -> Gateway:
    return gateways["gerencianet"]


def test_parking_flags_that_payment_once_with_one_alert_and_stops_its_jobs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    payment = PaymentFactory(status=S.PROCESSING)
    bystander = PaymentFactory(status=S.PROCESSING)
    settled = PaymentFactory(status=S.SUCCEEDED)
    token, version = payment.dispatch_token, payment.version

    payment_park(payment, "stripe: the charge is unknown", "charge_unconfirmed")
    payment_park(payment, "a second reason", "amount_mismatch")  # already parked: nothing
    payment_park(settled, "late", "charge_unconfirmed")  # not processing: nothing

    payment.refresh_from_db()
    assert (payment.status, payment.needs_reconciliation) == (S.PROCESSING, True)
    assert (payment.parked_reason, payment.reconciliation_reason) == (
        "charge_unconfirmed", "stripe: the charge is unknown",
    )  # fmt: skip
    assert payment.dispatch_token != token  # a job already queued for it does nothing now
    assert payment.version == version + 1  # the document shows it
    [event] = PaymentEvent.objects.filter(payment=payment)  # and its story, once
    assert (event.from_status, event.to_status) == (S.PROCESSING, S.PROCESSING)
    assert event.reason == "parked: charge_unconfirmed: stripe: the charge is unknown"
    assert not PaymentEvent.objects.filter(payment__in=[bystander, settled]).exists()
    for other in (bystander, settled):
        unchanged = Payment.objects.get(pk=other.pk)
        assert (unchanged.needs_reconciliation, unchanged.parked_reason) == (False, "")
        assert unchanged.dispatch_token == other.dispatch_token
    [alert] = alerts(caplog, "payment_parked")
    assert (alert.payment_id, alert.parked_reason) == (str(payment.id), "charge_unconfirmed")
    assert str(payment.id) in alert.getMessage()
    assert "stripe: the charge is unknown" in alert.getMessage()


def test_a_reason_longer_than_the_column_is_cut_to_fit() -> None:
    payment = PaymentFactory(status=S.PROCESSING)

    payment_park(payment, "x" * 300)

    payment.refresh_from_db()
    assert payment.reconciliation_reason == "x" * 255


def test_a_gateway_s_decline_message_longer_than_the_column_is_cut_to_fit(efi: Gateway) -> None:
    payment = PaymentFactory(status=S.PROCESSING, method="pix")

    _fail_declined(payment, efi, Declined("y" * 300))

    payment.refresh_from_db()
    assert (payment.status, payment.failure_message) == (S.FAILED, "y" * 255)


def test_an_exhausted_payment_s_message_longer_than_the_column_is_cut_to_fit() -> None:
    payment = PaymentFactory(status=S.PROCESSING)
    attempts = [PaymentAttempt(payment=payment, gateway=f"{n}" * 40, number=1) for n in range(8)]

    _fail_exhausted(payment, attempts)

    payment.refresh_from_db()
    assert payment.status == S.FAILED
    assert (
        payment.failure_message
        == (f"Every gateway failed (8 attempts at {', '.join(f'{n}' * 40 for n in range(8))}).")[
            :255
        ]
    )


def test_an_attempt_is_marked_lost_only_while_it_is_in_flight() -> None:
    payment = PaymentFactory(status=S.PROCESSING)
    in_flight, answered = (
        PaymentAttempt.objects.create(
            payment=payment, gateway="stripe", number=number, idempotency_key="k", outcome=outcome
        )
        for number, outcome in ((1, AttemptOutcome.IN_FLIGHT), (2, AttemptOutcome.SUCCEEDED))
    )

    attempt_mark_lost(in_flight)
    attempt_mark_lost(answered)  # its answer came in meanwhile: it stays answered

    in_flight.refresh_from_db()
    answered.refresh_from_db()
    assert (in_flight.outcome, in_flight.error_class) == (AttemptOutcome.AMBIGUOUS, "WorkerLost")
    assert (answered.outcome, answered.error_class) == (AttemptOutcome.SUCCEEDED, "")


@pytest.mark.parametrize(
    ("status", "raw_status"),
    [
        (ChargeStatus.REFUNDED, "refunded"),
        (ChargeStatus.CHARGED_BACK, "charged_back"),
        (ChargeStatus.IN_DISPUTE, "in_dispute"),
    ],
)
def test_a_payer_s_charge_reversed_at_the_gateway_is_flagged_not_settled(
    efi: Gateway, caplog: pytest.LogCaptureFixture, status: str, raw_status: str
) -> None:
    payment = PaymentFactory(status=S.AWAITING_PAYMENT)
    bystander = PaymentFactory(status=S.AWAITING_PAYMENT)

    reversed_charge = paid(payment, status=status, raw_status=raw_status)

    outcome = payment_settle_paid(payment, efi, reversed_charge, reason="callback")
    again = payment_settle_paid(payment, efi, reversed_charge, reason="callback")

    assert (outcome, again) == ("parked", "parked")
    payment.refresh_from_db()
    assert (payment.status, payment.needs_reconciliation) == (S.AWAITING_PAYMENT, True)
    assert payment.parked_reason == "charge_reversed"
    assert payment.reconciliation_reason == f"gerencianet: the charge was paid, then {raw_status}"
    # Its story shows it flagged once, without a move.
    [event] = PaymentEvent.objects.filter(payment=payment)
    assert (event.from_status, event.to_status) == (S.AWAITING_PAYMENT, S.AWAITING_PAYMENT)
    assert (
        event.reason
        == f"parked: charge_reversed: gerencianet: the charge was paid, then {raw_status}"
    )
    assert Payment.objects.get(pk=bystander.pk).needs_reconciliation is False
    [alert] = alerts(caplog, "charge_reversed")  # once, however often it is reported
    assert (alert.payment_id, alert.gateway) == (str(payment.id), "gerencianet")
    assert raw_status in alert.getMessage()
    assert str(payment.id) in alert.getMessage()


def test_a_paid_charge_for_another_amount_flags_the_waiting_payment(
    efi: Gateway, caplog: pytest.LogCaptureFixture
) -> None:
    payment = PaymentFactory(status=S.AWAITING_PAYMENT, amount=1000)

    outcome = payment_settle_paid(payment, efi, paid(payment, amount=990), reason="callback")

    assert outcome == "parked"
    payment.refresh_from_db()
    assert (payment.status, payment.parked_reason) == (S.AWAITING_PAYMENT, "amount_mismatch")
    assert payment.reconciliation_reason == "gerencianet: the charge is for 990, not 1000"
    [alert] = alerts(caplog, "gateway_amount_mismatch")
    assert (alert.payment_id, alert.gateway) == (str(payment.id), "gerencianet")


def test_a_paid_charge_settles_the_waiting_payment_once(efi: Gateway) -> None:
    payment = PaymentFactory(status=S.AWAITING_PAYMENT)

    first = payment_settle_paid(payment, efi, paid(payment), reason="paid by the payer")
    second = payment_settle_paid(payment, efi, paid(payment), reason="paid by the payer")

    assert (first, second) == ("succeeded", "moved")
    event = PaymentEvent.objects.get(payment=payment)
    assert (event.from_status, event.to_status, event.reason) == (
        S.AWAITING_PAYMENT, S.SUCCEEDED, "paid by the payer",
    )  # fmt: skip


def test_a_reversed_charge_read_back_parks_the_processing_payment(
    efi: Gateway, caplog: pytest.LogCaptureFixture
) -> None:
    payment = PaymentFactory(status=S.PROCESSING)
    result = paid(payment, status=ChargeStatus.CHARGED_BACK, raw_status="chargeback")

    assert charge_result_apply(payment, efi, result, reason="lookup") == "parked"

    payment.refresh_from_db()
    assert (payment.status, payment.parked_reason) == (S.PROCESSING, "charge_reversed")
    assert payment.reconciliation_reason == "gerencianet: the charge was paid, then chargeback"
    [alert] = alerts(caplog, "charge_reversed")
    assert (alert.payment_id, alert.gateway) == (str(payment.id), "gerencianet")
    assert "chargeback" in alert.getMessage()


def test_a_live_charge_answered_after_the_payment_moved_on_is_left_as_an_orphan(
    efi: Gateway,
) -> None:
    payment = PaymentFactory(
        status=S.SUCCEEDED, gateway="mercadopago", gateway_reference="mp-1", pix_expires_in=600
    )
    late = paid(payment, status=ChargeStatus.SUCCEEDED, reference="efi-txid-1")
    PaymentAttempt.objects.create(
        payment=payment,
        gateway="gerencianet",
        number=1,
        idempotency_key=idempotency_key_for(payment, "gerencianet"),
        outcome=AttemptOutcome.AMBIGUOUS,
        charge_params='{"sent": "first"}',
    )

    assert charge_result_apply(payment, efi, late, reason="a late answer") == "moved"

    [orphan] = OrphanCharge.objects.filter(payment=payment)
    assert (orphan.gateway, orphan.reference, orphan.status) == (
        "gerencianet",
        "efi-txid-1",
        "open",
    )
    assert orphan.idempotency_key == idempotency_key_for(payment, "gerencianet")
    assert orphan.reason == "a charge answered after the payment had moved on"
    assert orphan.charge_params == '{"sent": "first"}'  # withdrawn with what was sent
    payment.refresh_from_db()
    assert (payment.status, payment.gateway) == (S.SUCCEEDED, "mercadopago")  # untouched


def test_the_payment_s_own_charge_answered_twice_is_no_orphan(efi: Gateway) -> None:
    payment = PaymentFactory(status=S.SUCCEEDED, gateway="gerencianet", gateway_reference="tx-1")
    again = paid(payment, status=ChargeStatus.SUCCEEDED, reference="tx-1")

    assert charge_result_apply(payment, efi, again, reason="the callback, after the answer") == (
        "moved"
    )

    assert not OrphanCharge.objects.exists()


def test_a_dead_charge_answered_after_the_payment_moved_on_is_no_orphan(efi: Gateway) -> None:
    payment = PaymentFactory(status=S.SUCCEEDED, gateway="mercadopago", gateway_reference="mp-1")
    declined = paid(payment, status=ChargeStatus.FAILED, reference="efi-2")

    charge_result_apply(payment, efi, declined, reason="a late decline")

    assert not OrphanCharge.objects.exists()


def pix_answer(payment: Payment, *, amount: int, expires_at: datetime | None) -> ChargeResult:
    code = BRCode(
        url="pix.example.com/qr/v2/tx1",
        merchant_name="PAYWAVE",
        merchant_city="SAO PAULO",
        amount=amount,
        txid="tx1",
    ).encode()
    return paid(
        payment,
        status=ChargeStatus.AWAITING_PAYMENT,
        reference="tx1",
        pix=PixCharge(txid="tx1", br_code=code, expires_at=expires_at),
    )


@pytest.mark.parametrize(("expires_in", "seconds"), [(600, 600), (None, 3600)])
def test_a_pix_charge_with_no_expiry_expires_after_the_payment_s_own(
    efi: Gateway, expires_in: int | None, seconds: int
) -> None:
    payment = PaymentFactory(status=S.PROCESSING, method="pix", pix_expires_in=expires_in)
    before = timezone.now()

    result = pix_answer(payment, amount=payment.amount, expires_at=None)
    assert charge_result_apply(payment, efi, result, reason="charged") == "settled"

    payment.refresh_from_db()
    assert payment.status == S.AWAITING_PAYMENT
    expected = before + timedelta(seconds=seconds)
    assert expected <= payment.pix_expires_at <= timezone.now() + timedelta(seconds=seconds)


def test_a_pix_charge_s_own_expiry_is_kept(efi: Gateway) -> None:
    payment = PaymentFactory(status=S.PROCESSING, method="pix", pix_expires_in=600)
    expires_at = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)

    result = pix_answer(payment, amount=payment.amount, expires_at=expires_at)
    charge_result_apply(payment, efi, result, reason="charged")

    payment.refresh_from_db()
    assert payment.pix_expires_at == expires_at


@pytest.mark.parametrize("problem", ["BR Code amount 1001 is not 1000", "no PIX data"])
def test_an_unusable_pix_charge_is_reported_parked(
    efi: Gateway, problem: str, caplog: pytest.LogCaptureFixture
) -> None:
    payment = PaymentFactory(status=S.PROCESSING, method="pix", amount=1000)
    wrong = pix_answer(payment, amount=1001, expires_at=None)
    if problem == "no PIX data":
        wrong = dataclasses.replace(wrong, pix=None)

    assert charge_result_apply(payment, efi, wrong, reason="charged") == "parked"

    payment.refresh_from_db()
    assert (payment.status, payment.parked_reason) == (S.PROCESSING, "invalid_gateway_answer")
    assert payment.reconciliation_reason == f"unusable PIX charge from gerencianet: {problem}"
    # Read back outside any attempt (a lookup, reconciliation): the alert names both itself.
    [alert] = alerts(caplog, "invalid_gateway_answer")
    assert (alert.payment_id, alert.gateway) == (str(payment.id), "gerencianet")


def test_the_next_step_carries_the_payment_s_fresh_token() -> None:
    payment = PaymentFactory(status=S.PROCESSING)
    old_token = payment.dispatch_token

    step = _schedule(payment, 2.5)

    payment.refresh_from_db()
    assert step is not None
    assert (step.token, step.countdown) == (str(payment.dispatch_token), 2.5)
    assert payment.dispatch_token != old_token


def test_a_payment_that_moved_on_gets_no_next_step() -> None:
    payment = PaymentFactory(status=S.PROCESSING)
    Payment.objects.filter(pk=payment.pk).update(status=S.SUCCEEDED)  # a callback, meanwhile
    token = payment.dispatch_token

    assert _schedule(payment, 0.0) is None

    payment.refresh_from_db()
    assert payment.dispatch_token == token


def in_flight(payment: Payment, gateway: str = "gerencianet") -> PaymentAttempt:
    return PaymentAttempt.objects.create(
        payment=payment, gateway=gateway, number=1, idempotency_key="k",
        outcome=AttemptOutcome.IN_FLIGHT,
    )  # fmt: skip


def test_a_charge_answered_failed_without_a_message_says_what_the_gateway_answered(
    efi: Gateway,
) -> None:
    payment = PaymentFactory(status=S.PROCESSING, method="pix")
    attempt = in_flight(payment)
    failed = paid(payment, status=ChargeStatus.FAILED, raw_status="NAO_REALIZADO")

    assert _on_result(payment, efi, attempt, failed, 5) is None

    payment.refresh_from_db()
    attempt.refresh_from_db()
    message = "the gateway answered NAO_REALIZADO"
    assert (payment.status, payment.failure_message) == (S.FAILED, message)
    assert (attempt.outcome, attempt.error_class, attempt.error_message) == (
        AttemptOutcome.DECLINED, "Declined", message,
    )  # fmt: skip


def test_a_failed_charge_for_another_amount_still_fails_never_parks(efi: Gateway) -> None:
    payment = PaymentFactory(status=S.PROCESSING, method="pix", amount=1000)
    failed = paid(payment, status=ChargeStatus.FAILED, raw_status="NAO_REALIZADO", amount=1)

    charge_result_apply(payment, efi, failed, reason="charged")

    payment.refresh_from_db()
    assert (payment.status, payment.needs_reconciliation) == (S.FAILED, False)


def test_a_gateway_s_error_message_longer_than_the_column_is_cut_to_fit(efi: Gateway) -> None:
    payment = PaymentFactory(status=S.PROCESSING, method="pix")
    attempt = in_flight(payment)

    _on_error(payment, efi, attempt, Declined("z" * 600), 5)

    attempt.refresh_from_db()
    assert attempt.error_message == "z" * 500


def test_a_payment_gone_from_pending_is_not_failed_as_exhausted() -> None:
    payment = PaymentFactory(status=S.PENDING)
    Payment.objects.filter(pk=payment.pk).update(status=S.CANCELED)  # by its wallet app

    _fail_exhausted(payment, [])  # its job still held the pending copy

    payment.refresh_from_db()
    assert (payment.status, payment.failure_code) == (S.CANCELED, "")


def test_flagging_leaves_a_payment_that_no_longer_waits_alone(efi: Gateway) -> None:
    payment = PaymentFactory(status=S.CANCELED, method="pix")

    _flag(payment, efi, "charge_reversed", "charge_reversed", "paid, then refunded")

    payment.refresh_from_db()
    assert (payment.needs_reconciliation, payment.parked_reason) == (False, "")


def test_a_flag_s_reason_longer_than_the_column_is_cut_to_fit(efi: Gateway) -> None:
    payment = PaymentFactory(status=S.AWAITING_PAYMENT, method="pix")

    _flag(payment, efi, "amount_mismatch", "amount_mismatch", "p" * 300)

    payment.refresh_from_db()
    assert payment.reconciliation_reason == ("gerencianet: " + "p" * 300)[:255]


def test_an_attempt_s_deadline_is_past_the_longest_its_call_can_take(efi: Gateway) -> None:
    """Efí's charge is three requests (token, cob, its QR), each up to the gateway's
    timeout; two seconds more and the call has certainly returned or timed out."""
    payment = PaymentFactory(status=S.PENDING, method="pix")
    request = charge_request_for(payment, efi.code, [])
    longest_s = efi.timeout_ms / 1000 * 3 + 2

    before = timezone.now()
    attempt = _claim_attempt(payment, efi, 1, request, [])
    after = timezone.now()

    assert attempt is not None
    assert before + timedelta(seconds=longest_s) <= attempt.deadline_at
    assert attempt.deadline_at <= after + timedelta(seconds=longest_s)


def test_a_charge_answered_failed_records_its_reference_and_what_the_gateway_said(
    efi: Gateway,
) -> None:
    payment = PaymentFactory(status=S.PROCESSING, method="pix")
    attempt = in_flight(payment)
    failed = paid(
        payment, status=ChargeStatus.FAILED, raw_status="NAO_REALIZADO",
        reference="efi-tx-9", failure_message="w" * 600,
    )  # fmt: skip

    _on_result(payment, efi, attempt, failed, 5)

    attempt.refresh_from_db()
    assert attempt.gateway_reference == "efi-tx-9"  # a late callback for it finds the payment
    assert attempt.response_summary == {"status": "failed", "raw_status": "NAO_REALIZADO"}
    assert attempt.error_message == "w" * 500  # cut to fit its column
    payment.refresh_from_db()
    assert (payment.status, payment.failure_message) == (S.FAILED, "w" * 255)


def test_a_pending_answer_records_the_charge_and_keeps_the_payment_processing(
    efi: Gateway,
) -> None:
    """Taken but undecided: the payment keeps waiting for the gateway's callback or
    reconciliation, which look the charge up by the reference recorded here."""
    payment = PaymentFactory(status=S.PROCESSING, method="pix")
    bystander = PaymentFactory(status=S.PROCESSING, method="pix")
    attempt = in_flight(payment)
    version = payment.version
    pending = paid(payment, status="pending", reference="p-1")

    assert _on_result(payment, efi, attempt, pending, 5) is None

    attempt.refresh_from_db()
    assert (attempt.outcome, attempt.gateway_reference) == (AttemptOutcome.PENDING, "p-1")
    assert attempt.response_summary == {"status": "pending", "raw_status": "pending"}
    payment.refresh_from_db()
    assert (payment.status, payment.gateway, payment.gateway_reference) == (
        S.PROCESSING, "gerencianet", "p-1",
    )  # fmt: skip
    assert payment.version == version + 1  # the document shows the attempt
    untouched = Payment.objects.get(pk=bystander.pk)
    assert (untouched.gateway, untouched.gateway_reference) == ("", "")


def test_a_pending_answer_is_reported_pending(efi: Gateway) -> None:
    payment = PaymentFactory(status=S.PROCESSING, method="pix")

    assert charge_result_apply(payment, efi, paid(payment, status="pending"), reason="lookup") == (
        "pending"
    )


def test_a_pending_answer_never_rewrites_a_payment_that_moved_on(efi: Gateway) -> None:
    payment = PaymentFactory(status=S.SUCCEEDED, gateway="mercadopago", gateway_reference="mp-1")

    charge_result_apply(payment, efi, paid(payment, status="pending", reference="p-2"), reason="x")

    payment.refresh_from_db()
    assert (payment.status, payment.gateway, payment.gateway_reference) == (
        S.SUCCEEDED, "mercadopago", "mp-1",
    )  # fmt: skip


def test_a_charge_for_another_amount_read_back_parks_the_processing_payment(
    efi: Gateway,
) -> None:
    payment = PaymentFactory(status=S.PROCESSING, method="pix", amount=1000)

    assert charge_result_apply(payment, efi, paid(payment, amount=999), reason="lookup") == (
        "parked"
    )

    payment.refresh_from_db()
    assert (payment.status, payment.parked_reason) == (S.PROCESSING, "amount_mismatch")


def test_a_parked_payment_settled_by_a_later_answer_is_no_longer_flagged(efi: Gateway) -> None:
    payment = PaymentFactory(status=S.PROCESSING, method="pix")
    payment_park(payment, "gerencianet: the charge is unknown")

    charge_result_apply(payment, efi, paid(payment, reference="tx-5"), reason="reconciled")

    payment.refresh_from_db()
    assert (payment.status, payment.gateway_reference) == (S.SUCCEEDED, "tx-5")
    assert (payment.needs_reconciliation, payment.parked_reason) == (False, "")
    assert payment.reconciliation_reason == ""


def test_a_pix_code_shown_from_a_callback_names_the_callback_in_the_story(efi: Gateway) -> None:
    payment = PaymentFactory(status=S.PROCESSING, method="pix")
    result = pix_answer(payment, amount=payment.amount, expires_at=None)

    charge_result_apply(payment, efi, result, reason="callback", actor="gateway-callback")

    event = PaymentEvent.objects.get(payment=payment, to_status=S.AWAITING_PAYMENT)
    assert event.actor == "gateway-callback"


def test_a_pending_charge_answered_after_the_payment_moved_on_is_left_as_an_orphan(
    efi: Gateway,
) -> None:
    """The gateway took the charge but has no outcome yet: live all the same, it may still
    take the payer's money, so it is withdrawn like any other late live charge."""
    payment = PaymentFactory(status=S.SUCCEEDED, gateway="mercadopago", gateway_reference="mp-1")
    version = payment.version
    late = paid(payment, status="pending", reference="efi-p-1")

    assert charge_result_apply(payment, efi, late, reason="a late answer") == "moved"

    [orphan] = OrphanCharge.objects.filter(payment=payment)
    assert (orphan.gateway, orphan.reference, orphan.status) == ("gerencianet", "efi-p-1", "open")
    payment.refresh_from_db()
    assert (payment.status, payment.gateway, payment.version) == (
        S.SUCCEEDED, "mercadopago", version,
    )  # fmt: skip


def test_a_paypal_attempt_s_deadline_covers_its_token_and_its_order(gateways: Any) -> None:
    """PayPal's charge is two requests when its kept OAuth token has expired."""
    paypal = gateways["paypal"]
    payment = PaymentFactory(status=S.PENDING, paypal=True)
    request = charge_request_for(payment, paypal.code, [])
    longest_s = paypal.timeout_ms / 1000 * 2 + 2

    before = timezone.now()
    attempt = _claim_attempt(payment, paypal, 1, request, [])
    after = timezone.now()

    assert attempt is not None
    assert (
        before + timedelta(seconds=longest_s)
        <= attempt.deadline_at
        <= after + timedelta(seconds=longest_s)
    )
