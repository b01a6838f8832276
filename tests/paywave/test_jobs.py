"""Durable jobs: declared once, on one of the queues named in paywave.jobs."""

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
    assert len(declared) == 7
    assert all(job.queue in QUEUES and job._task is not None for job in declared)
