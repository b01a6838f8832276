from typing import Any

from django.apps import AppConfig
from django.db.models.signals import post_delete, post_save


class NotificationsConfig(AppConfig):
    """Domain events to signed webhooks for wallet apps, and operator alerts."""

    name = "notifications"

    def ready(self) -> None:
        from payments.events import DisputeChanged, PaymentChanged, RefundChanged
        from paywave.domain_events import Phase, subscribe
        from paywave.observability.alerts import alert_sender_register
        from paywave.observability.metrics import scrape_time_register

        from . import tasks  # noqa: F401  (the jobs' bodies, for every process that publishes)
        from .dispatch import alert_publish
        from .metrics import failing_endpoints_collector
        from .models import WebhookEndpoint
        from .subscribers import dispute_event_record, payment_event_record, refund_event_record

        alert_sender_register(alert_publish)
        scrape_time_register(failing_endpoints_collector)

        # Saved or deleted as a model (a factory, a fixture, a shell): the subscriptions
        # cache hears of it as it does of the services' changes.
        post_save.connect(_endpoints_changed, sender=WebhookEndpoint)
        post_delete.connect(_endpoints_changed, sender=WebhookEndpoint)

        # In the change's transaction: the event row and its deliveries commit with it.
        subscribe(PaymentChanged, payment_event_record, phase=Phase.IN_TRANSACTION)
        subscribe(RefundChanged, refund_event_record, phase=Phase.IN_TRANSACTION)
        subscribe(DisputeChanged, dispute_event_record, phase=Phase.IN_TRANSACTION)


def _endpoints_changed(**_: Any) -> None:
    from .subscriptions import endpoints_changed

    endpoints_changed()
