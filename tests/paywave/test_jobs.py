"""Durable jobs: declared once, on one of the queues named in paywave.jobs."""

import uuid
from typing import Any

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
    assert len(declared) == 8
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


@pytest.mark.django_db
def test_the_overdue_sweep_claims_publishes_and_puts_back_what_the_broker_refused() -> None:
    from datetime import timedelta

    from django.utils import timezone

    from notifications.models import Delivery
    from paywave.jobs import overdue_republish

    long_ago = timezone.now() - timedelta(hours=1)
    with_job = _delivery(job_token=uuid.uuid4(), next_attempt_at=long_ago)
    without_job = _delivery(job_token=None, next_attempt_at=long_ago + timedelta(seconds=1))
    overdue = Delivery.objects.filter(next_attempt_at__lte=long_ago + timedelta(minutes=1))
    refused: list[tuple[int, uuid.UUID]] = []

    def broker_down(pk: int, token: uuid.UUID) -> bool:
        refused.append((pk, token))
        return False

    assert overdue_republish(overdue, claim_by="job_token", publish=broker_down) == 0
    assert refused == [(with_job.pk, with_job.job_token)]  # oldest first, then it stopped
    with_job.refresh_from_db()
    assert with_job.next_attempt_at == long_ago  # put back as it was: still overdue
    only_without = overdue.filter(pk=without_job.pk)
    assert overdue_republish(only_without, claim_by="job_token", publish=broker_down) == 0
    without_job.refresh_from_db()
    assert without_job.job_token is None  # the token it was given is taken back
    assert without_job.next_attempt_at == long_ago + timedelta(seconds=1)

    published: list[tuple[int, uuid.UUID]] = []

    def broker_up(pk: int, token: uuid.UUID) -> bool:
        published.append((pk, token))
        return True

    assert overdue_republish(overdue, claim_by="job_token", publish=broker_up) == 2
    without_job.refresh_from_db()
    assert published == [(with_job.pk, with_job.job_token), (without_job.pk, without_job.job_token)]
    assert without_job.job_token is not None  # a row without a token is given one
    assert overdue.count() == 0  # each claimed row is due now: not swept again until late
    assert overdue_republish(overdue, claim_by="job_token", publish=broker_up) == 0


@pytest.mark.django_db
def test_the_overdue_sweep_skips_a_row_that_moved_on_after_it_was_read() -> None:
    from datetime import timedelta

    from django.utils import timezone

    from notifications.models import Delivery
    from paywave.jobs import overdue_republish

    first, second = (
        _delivery(job_token=None, next_attempt_at=timezone.now() - timedelta(hours=1))
        for _ in range(2)
    )
    published: list[int] = []

    def publish(pk: int, token: uuid.UUID) -> bool:
        if pk == first.pk:  # meanwhile a job takes the second one
            Delivery.objects.filter(pk=second.pk).update(job_token=uuid.uuid4())
        published.append(pk)
        return True

    overdue = Delivery.objects.filter(job_token__isnull=True)
    assert overdue_republish(overdue, claim_by="job_token", publish=publish, order_by="pk") == 1
    assert published == [first.pk]


def _delivery(**fields: Any) -> Any:
    """A pending delivery of a fresh event to a fresh endpoint."""
    from django.utils import timezone

    from notifications.models import Delivery, Event
    from tests.factories import WebhookEndpointFactory

    endpoint = WebhookEndpointFactory()
    subject_id = uuid.uuid4()
    event = Event.objects.create(
        type="payment.succeeded", client=endpoint.client, subject_id=subject_id, data={}
    )
    return Delivery.objects.create(
        event=event,
        endpoint=endpoint,
        subject_id=subject_id,
        window_started_at=timezone.now(),
        **fields,
    )


@pytest.mark.parametrize(
    ("args", "written_by_celery"),
    [
        (("3f0e5c1a-7b7a-4f59-9a53-2f1c1f4c9a10", "token"), False),
        ((uuid.UUID("3f0e5c1a-7b7a-4f59-9a53-2f1c1f4c9a10"), None), False),
        ((42, 'a "quoted" \u2603'), False),
        (("it's",), True),  # saferepr quotes it its own way
        (("a\nb", "tab\t"), True),
        (("back\\slash",), True),
        (("\x00",), True),
        ((), False),
        (("x" * 2000,), True),  # past Celery's limit: it cuts the text
        (("kind", "message", {"gateway": "stripe", "failures": [1, 2]}), True),
        ((True, 1.5), True),
    ],
    ids=[
        "ids",
        "uuid-none",
        "int-quotes",
        "apostrophe",
        "controls",
        "backslash",
        "nul",
        "none",
        "long",
        "dict",
        "bool-float",
    ],
)
def test_a_jobs_argument_text_is_celerys_own(
    args: tuple[Any, ...], written_by_celery: bool
) -> None:
    """What Flower shows of a job's arguments is what Celery's safe repr would write."""
    from celery.utils.saferepr import saferepr

    from paywave.jobs import _arguments_repr

    ours = _arguments_repr(args)

    assert (ours is None) is written_by_celery
    assert ours is None or ours == saferepr(args, 1024)


def test_a_job_of_ids_is_published_without_celerys_safe_repr(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from celery.app import amqp
    from kombu.messaging import Producer

    from payments.jobs import PROCESS_PAYMENT

    def refused(*args: Any, **kwargs: Any) -> str:
        raise AssertionError("saferepr walked a job's arguments")

    sent: list[dict[str, Any]] = []
    monkeypatch.setattr(amqp, "saferepr", refused)
    monkeypatch.setattr(Producer, "publish", lambda self, body, **kw: sent.append(kw["headers"]))

    PROCESS_PAYMENT.publish("3f0e5c1a-7b7a-4f59-9a53-2f1c1f4c9a10", "token")

    assert sent[0]["argsrepr"] == "('3f0e5c1a-7b7a-4f59-9a53-2f1c1f4c9a10', 'token')"
    assert sent[0]["kwargsrepr"] == "{}"
