"""Rejected gateway callbacks are deleted PAYWAVE_REJECTED_CALLBACK_RETENTION_DAYS after they
came; every other callback, and younger rejected ones, stay."""

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from gateways.models import CallbackStatus, GatewayCallback
from gateways.retention import rejected_callbacks_purge
from gateways.tasks import purge_rejected_callbacks

pytestmark = pytest.mark.django_db


def callback(status: str, age: timedelta) -> GatewayCallback:
    stored = GatewayCallback.objects.create(gateway="stripe", status=status, body='{"forged": 1}')
    GatewayCallback.objects.filter(pk=stored.pk).update(received_at=timezone.now() - age)
    return stored


def test_only_rejected_callbacks_past_the_retention_are_deleted() -> None:
    day, minute = timedelta(days=1), timedelta(minutes=1)
    gone = [
        callback(CallbackStatus.REJECTED, 7 * day + minute),
        callback(CallbackStatus.REJECTED, 60 * day),
        callback(CallbackStatus.REJECTED, 8 * day),
    ]
    kept = [
        callback(CallbackStatus.REJECTED, 7 * day - minute),
        callback(CallbackStatus.REJECTED, timedelta(0)),
        *(callback(status, 60 * day) for status in CallbackStatus.values if status != "rejected"),
    ]

    assert rejected_callbacks_purge(batch_size=2) == len(gone)

    assert set(GatewayCallback.objects.values_list("pk", flat=True)) == {c.pk for c in kept}


def test_the_retention_is_a_setting(settings: Any) -> None:
    kept = callback(CallbackStatus.REJECTED, timedelta(hours=20))
    callback(CallbackStatus.REJECTED, timedelta(days=2))
    settings.PAYWAVE_REJECTED_CALLBACK_RETENTION_DAYS = 1

    assert purge_rejected_callbacks() == 1

    assert list(GatewayCallback.objects.values_list("pk", flat=True)) == [kept.pk]
