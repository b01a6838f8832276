"""Retention: a rejected gateway callback (forged, stale, malformed) is kept
PAYWAVE_REJECTED_CALLBACK_RETENTION_DAYS for staff to look at, then deleted (beat, hourly)."""

from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from .models import CallbackStatus, GatewayCallback


def rejected_callbacks_purge(*, batch_size: int = 1000) -> int:
    """Delete rejected callbacks received before the retention; how many."""
    cutoff = timezone.now() - timedelta(days=settings.PAYWAVE_REJECTED_CALLBACK_RETENTION_DAYS)
    deleted = 0
    while True:
        ids = list(
            GatewayCallback.objects.filter(
                status=CallbackStatus.REJECTED, received_at__lt=cutoff
            ).values_list("pk", flat=True)[:batch_size]
        )
        if not ids:
            return deleted
        count, _ = GatewayCallback.objects.filter(pk__in=ids).delete()
        deleted += count
