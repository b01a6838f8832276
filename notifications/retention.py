"""Retention: events, their deliveries and their tries go PAYWAVE_EVENT_RETENTION_DAYS after
the event (beat, hourly). An event's data is the subject as it was, personal data included."""

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from .models import Delivery, DeliveryStatus, Event

logger = logging.getLogger(__name__)


def events_purge_expired(*, batch_size: int = 1000) -> int:
    """Delete events older than the retention, with their deliveries and tries; how many.

    Oldest first by id (events are appended in time order), a batch per transaction.
    A delivery still pending that old (its endpoint disabled all along) goes too.
    """
    cutoff = timezone.now() - timedelta(days=settings.PAYWAVE_EVENT_RETENTION_DAYS)
    deleted = 0
    while True:
        ids = list(
            Event.objects.filter(created_at__lt=cutoff)
            .order_by("id")
            .values_list("id", flat=True)[:batch_size]
        )
        if not ids:
            return deleted
        with transaction.atomic():
            deliveries = Delivery.objects.filter(event_id__in=ids)
            pending = deliveries.filter(status=DeliveryStatus.PENDING).count()
            if pending:
                logger.warning(
                    "%d pending deliveries of events past their retention are dropped", pending
                )
            deliveries.delete()  # and their tries (cascade)
            Event.objects.filter(pk__in=ids).delete()
        deleted += len(ids)
