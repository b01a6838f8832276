"""Reconciliation as jobs: beat's run publishes one per kind of work and part of the
payments, and each looks up only its own."""

import logging
import time
from datetime import timedelta
from typing import Any

import pytest
from django.conf import LazySettings
from django.utils import timezone
from kombu import Exchange, Queue

from config.celery_app import app as celery_app
from payments.models import Payment
from payments.models import PaymentStatus as S
from payments.reconciliation import PARTS_ALLOWED, Part
from payments.tasks import reconcile, reconcile_part
from tests.factories import PaymentFactory
from tests.gateway_fixtures import drive
from tests.helpers import queued_messages

pytestmark = [pytest.mark.services]

PAYMENTS_QUEUE = Queue("payments", Exchange("payments", type="direct"), routing_key="payments")
# The kinds as operators see them (`reconciliation_kind`, the overdue gauge's `kind`).
KINDS = ("processing_stuck", "pix_expired", "pix_check", "action_abandoned", "approval")


@pytest.mark.django_db
def test_every_payment_falls_in_exactly_one_part() -> None:
    every = {PaymentFactory().pk for _ in range(48)}

    for of in PARTS_ALLOWED:
        parts = [
            set(Payment.objects.filter(Part(index, of).payments()).values_list("pk", flat=True))
            for index in range(of)
        ]
        assert sum(len(part) for part in parts) == len(every), of
        assert set().union(*parts) == every, of


@pytest.mark.parametrize(("index", "of"), [(0, 3), (4, 4), (-1, 2), (0, 32)])
def test_a_part_is_one_of_a_count_that_divides_sixteen(index: int, of: int) -> None:
    with pytest.raises(ValueError, match="is one of"):
        Part(index, of)


@pytest.mark.django_db
def test_a_part_looks_up_only_its_kind_and_its_own_payments(
    pix_payment: Any, sim: Any, caplog: pytest.LogCaptureFixture
) -> None:
    payment = drive(pix_payment()).payment
    assert payment.status == S.AWAITING_PAYMENT
    Payment.objects.filter(pk=payment.pk).update(next_attempt_at=timezone.now() - timedelta(1))
    mine = int(str(payment.id)[-1], 16) % 4
    now = timezone.now().isoformat()

    assert reconcile_part("pix_check", (mine + 1) % 4, 4, now) == {}
    assert reconcile_part("pix_expired", mine, 4, now) == {}
    with caplog.at_level(logging.INFO, logger="payments.reconciliation"):
        assert reconcile_part("pix_check", mine, 4, now) == {"waiting": 1}  # not paid yet

    (line,) = [r for r in caplog.records if r.getMessage().startswith("reconciliation:")]
    assert (line.reconciliation_kind, line.reconciliation_part) == ("pix_check", f"{mine}/4")


@pytest.mark.django_db
def test_a_part_takes_what_was_due_at_its_runs_time_so_no_payment_is_of_two_kinds(
    pix_payment: Any, sim: Any
) -> None:
    """A PIX charge that expires between two jobs of one run is a look in both, never
    an expiry in one and a look in the other."""
    payment = drive(pix_payment()).payment
    run_at = timezone.now()
    Payment.objects.filter(pk=payment.pk).update(
        next_attempt_at=run_at - timedelta(seconds=1),
        pix_expires_at=run_at + timedelta(milliseconds=1),  # expired by the time jobs run
    )
    time.sleep(0.01)

    assert reconcile_part("pix_expired", 0, 1, run_at.isoformat()) == {}
    assert reconcile_part("pix_check", 0, 1, run_at.isoformat()) == {"waiting": 1}


@pytest.mark.django_db
def test_beat_publishes_a_job_per_kind_and_part_that_expires_with_the_period(
    settings: LazySettings,
) -> None:
    settings.PAYWAVE_RECONCILE_PARTS = 2
    settings.PAYWAVE_RECONCILE_SWEEP_SECONDS = 60.0
    with celery_app.connection_for_write() as connection:
        bound = PAYMENTS_QUEUE(connection.default_channel)
        bound.declare()
        bound.purge()
        started = timezone.now()
        assert reconcile() == {"published": 2 * len(KINDS)}
        messages = queued_messages(bound)

    jobs = sorted(tuple(message.decode()[0][:3]) for message in messages)
    assert jobs == sorted((kind, index, 2) for kind in KINDS for index in (0, 1))
    assert len({message.decode()[0][3] for message in messages}) == 1  # one time for the run
    for message in messages:
        assert message.headers["task"] == "payments.reconcile_part"
        expires = timezone.datetime.fromisoformat(message.headers["expires"])
        assert timedelta(seconds=55) < expires - started <= timedelta(seconds=61)
