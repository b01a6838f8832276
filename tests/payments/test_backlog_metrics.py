"""What /metrics says of the payments: parked payments and refunds, and the backlog's age."""

from datetime import timedelta
from typing import Any

import pytest
from django.conf import settings
from django.utils import timezone

from payments.metrics import PaymentsBacklogCollector, backlog_read
from payments.models import ParkedReason, Payment, PaymentStatus, Refund, RefundStatus
from payments.processing import payment_park
from tests.factories import PaymentFactory

pytestmark = pytest.mark.django_db

RECONCILIATION_KINDS = ("processing_stuck", "pix_expired", "pix_check", "action_abandoned",
                        "approval")  # fmt: skip


def ago(seconds: float) -> Any:
    return timezone.now() - timedelta(seconds=seconds)


def test_nothing_parked_or_due_reads_as_zeros_for_every_reason() -> None:
    PaymentFactory(status=PaymentStatus.SUCCEEDED, next_attempt_at=ago(3600))

    backlog = backlog_read()

    assert backlog.parked == dict.fromkeys(ParkedReason.values, 0)
    assert backlog.refunds_parked == 0
    assert backlog.overdue_seconds == 0
    assert backlog.reconciliation_overdue == dict.fromkeys(RECONCILIATION_KINDS, 0.0)


def test_parked_payments_are_counted_by_reason_until_they_leave() -> None:
    unconfirmed = [PaymentFactory(status=PaymentStatus.PROCESSING) for _ in range(2)]
    mismatch = PaymentFactory(status=PaymentStatus.PROCESSING, card=True)
    for payment in unconfirmed:
        payment_park(payment, "the gateway cannot say whether it charged")
    payment_park(mismatch, "charged 10.51", ParkedReason.AMOUNT_MISMATCH)

    parked = backlog_read().parked

    assert parked[ParkedReason.CHARGE_UNCONFIRMED] == 2
    assert parked[ParkedReason.AMOUNT_MISMATCH] == 1
    assert parked[ParkedReason.INVALID_GATEWAY_ANSWER] == 0
    type(unconfirmed[0]).objects.filter(pk=unconfirmed[0].pk).update(
        needs_reconciliation=False, parked_reason=""
    )
    assert backlog_read().parked[ParkedReason.CHARGE_UNCONFIRMED] == 1


def test_parked_refunds_are_the_pending_ones_out_of_tries() -> None:
    payment = PaymentFactory(status=PaymentStatus.SUCCEEDED)
    common = {"payment": payment, "amount": 100, "gateway": "mercadopago", "actor": "test"}
    Refund.objects.create(**common, status=RefundStatus.PENDING, parked_at=timezone.now())
    Refund.objects.create(**common, status=RefundStatus.PENDING)  # still trying
    Refund.objects.create(**common, status=RefundStatus.SUCCEEDED, parked_at=ago(60))

    assert backlog_read().refunds_parked == 1


def test_the_backlog_age_is_the_oldest_due_payment_not_parked() -> None:
    PaymentFactory(status=PaymentStatus.PENDING, next_attempt_at=ago(40))
    PaymentFactory(status=PaymentStatus.PROCESSING, next_attempt_at=ago(300))
    PaymentFactory(status=PaymentStatus.PENDING, next_attempt_at=ago(-600))  # a backoff wait
    PaymentFactory(status=PaymentStatus.AWAITING_PAYMENT, next_attempt_at=ago(9000))  # payer's turn
    parked = PaymentFactory(status=PaymentStatus.PROCESSING, next_attempt_at=ago(7200))
    payment_park(parked, "reconciliation owns it")

    overdue = backlog_read().overdue_seconds

    assert 300 <= overdue < 330


def changed_at(payment: Payment, seconds_ago: float) -> None:
    Payment.objects.filter(pk=payment.pk).update(updated_at=ago(seconds_ago))


def test_each_kind_of_reconciliation_work_says_how_late_its_oldest_payment_is() -> None:
    stuck_after = settings.PAYWAVE_RECONCILE_AFTER_SECONDS
    changed_at(PaymentFactory(status=PaymentStatus.PROCESSING), stuck_after + 120)
    changed_at(PaymentFactory(status=PaymentStatus.PROCESSING), stuck_after - 60)  # not yet
    PaymentFactory(status=PaymentStatus.AWAITING_PAYMENT, pix_expires_at=ago(200))
    PaymentFactory(
        status=PaymentStatus.AWAITING_PAYMENT, next_attempt_at=ago(50), pix_expires_at=ago(-600)
    )
    abandoned = PaymentFactory(card=True, status=PaymentStatus.REQUIRES_ACTION)
    changed_at(abandoned, settings.PAYWAVE_ACTION_TIMEOUT_SECONDS + 70)
    PaymentFactory(paypal=True, status=PaymentStatus.REQUIRES_ACTION, next_attempt_at=ago(30))

    overdue = backlog_read().reconciliation_overdue

    expected = {"processing_stuck": 120, "pix_expired": 200, "pix_check": 50,
                "action_abandoned": 70, "approval": 30}  # fmt: skip
    assert overdue.keys() == expected.keys()
    for kind, seconds in expected.items():
        assert seconds <= overdue[kind] < seconds + 30, kind


def test_payments_waiting_for_a_person_are_not_reconciliation_overdue() -> None:
    """Parked or flagged: counted in paywave_payments_parked, not as reconciliation late."""
    parked = PaymentFactory(status=PaymentStatus.PROCESSING)
    payment_park(parked, "the gateway cannot say whether it charged")
    changed_at(parked, 7200)
    PaymentFactory(
        status=PaymentStatus.AWAITING_PAYMENT, pix_expires_at=ago(3600), needs_reconciliation=True
    )

    assert backlog_read().reconciliation_overdue == dict.fromkeys(RECONCILIATION_KINDS, 0.0)


def test_the_scrape_reads_the_database_eight_times_per_ttl(
    django_assert_num_queries: Any,
) -> None:
    """Three reads, and one per kind of reconciliation's work."""
    collector = PaymentsBacklogCollector(ttl=3600)
    with django_assert_num_queries(3 + len(RECONCILIATION_KINDS)):
        list(collector.collect())
        list(collector.collect())


def test_api_metrics_serve_the_backlog(client: Any) -> None:
    payment = PaymentFactory(status=PaymentStatus.PROCESSING, next_attempt_at=ago(100))
    before = client.get("/metrics").content.decode()
    payment_park(payment, "the gateway cannot say whether it charged")

    after = client.get("/metrics").content.decode()

    assert 'paywave_payments_parked{reason="charge_unconfirmed"} 0.0' in before
    assert "paywave_payments_overdue_seconds 1" in before  # 100-odd seconds
    assert 'paywave_payments_parked{reason="charge_unconfirmed"} 1.0' in after
    assert "paywave_payments_overdue_seconds 0.0" in after
    assert "paywave_refunds_parked 0.0" in after
    assert 'paywave_reconciliation_overdue_seconds{kind="pix_expired"} 0.0' in after
