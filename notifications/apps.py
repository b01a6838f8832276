from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    """Domain events to signed webhooks for wallet apps, and operator alerts."""

    name = "notifications"

    def ready(self) -> None:
        from payments.events import PaymentChanged, RefundChanged
        from paywave.alerts import alert_sender_register
        from paywave.domain_events import Phase, subscribe

        from . import tasks  # noqa: F401  (the jobs' bodies, for every process that publishes)
        from .dispatch import alert_publish
        from .subscribers import payment_event_record, refund_event_record

        alert_sender_register(alert_publish)

        # In the change's transaction: the event row and its deliveries commit with it.
        subscribe(PaymentChanged, payment_event_record, phase=Phase.IN_TRANSACTION)
        subscribe(RefundChanged, refund_event_record, phase=Phase.IN_TRANSACTION)
