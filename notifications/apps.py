from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    """Domain events to signed webhooks for wallet apps, and operator alerts."""

    name = "notifications"

    def ready(self) -> None:
        from payments.events import PaymentChanged, RefundChanged
        from paywave.domain_events import Phase, subscribe

        from .subscribers import payment_event_record, refund_event_record

        # In the change's transaction: the event row and its deliveries commit with it.
        subscribe(PaymentChanged, payment_event_record, phase=Phase.IN_TRANSACTION)
        subscribe(RefundChanged, refund_event_record, phase=Phase.IN_TRANSACTION)
