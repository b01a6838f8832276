"""Durable jobs: declared once, on one of the queues named in paywave.jobs."""

import uuid

import pytest
from django.conf import settings

from paywave.jobs import QUEUES, Job


def test_a_job_is_declared_on_a_named_queue_only() -> None:
    with pytest.raises(ValueError, match="not one of"):
        Job("payments.something", queue="payment")


def test_a_job_without_its_body_is_not_published() -> None:
    with pytest.raises(RuntimeError, match="has no task"):
        Job("payments.never_declared", queue="payments").publish("x")


def test_the_settings_declare_and_route_the_named_queues() -> None:
    assert sorted(queue.name for queue in settings.CELERY_TASK_QUEUES) == sorted(QUEUES)
    assert settings.CELERY_TASK_DEFAULT_QUEUE in QUEUES
    assert {route["queue"] for route in settings.CELERY_TASK_ROUTES.values()} <= set(QUEUES)


def test_every_app_job_is_on_a_named_queue() -> None:
    from notifications import jobs as notification_jobs
    from payments import jobs as payment_jobs

    declared = [
        value
        for module in (payment_jobs, notification_jobs)
        for value in vars(module).values()
        if isinstance(value, Job)
    ]
    assert len(declared) == 6
    assert all(job.queue in QUEUES and job._task is not None for job in declared)


@pytest.mark.django_db
def test_a_token_swap_claims_the_row_once() -> None:
    from payments.models import Payment, PaymentStatus
    from paywave.jobs import token_swap
    from tests.factories import PaymentFactory

    first = uuid.uuid4()
    payment = PaymentFactory(dispatch_token=first)
    pending = Payment.objects.filter(pk=payment.pk, status=PaymentStatus.PENDING)

    token = token_swap(pending, field="dispatch_token", expected=first, needs_reconciliation=True)
    assert token is not None
    assert token != first
    payment.refresh_from_db()
    assert (payment.dispatch_token, payment.needs_reconciliation) == (token, True)
    # The job that read `first` is stale now; so is one that asks of another status.
    assert token_swap(pending, field="dispatch_token", expected=first) is None
    processing = Payment.objects.filter(pk=payment.pk, status=PaymentStatus.PROCESSING)
    assert token_swap(processing, field="dispatch_token", expected=token) is None
