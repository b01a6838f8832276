from django.apps import AppConfig


class PaymentsConfig(AppConfig):
    name = "payments"

    def ready(self) -> None:
        from gateways.callbacks import callback_publisher_register
        from paywave.domain_events import Phase, subscribe
        from paywave.observability.metrics import scrape_time_register

        from . import tasks  # noqa: F401  (the jobs' bodies, for every process that publishes)
        from .dispatch import callback_dispatch
        from .events import PaymentChanged
        from .metrics import payments_backlog_collector
        from .subscribers import payment_cache_write, payment_change_count

        callback_publisher_register(callback_dispatch)
        scrape_time_register(payments_backlog_collector)
        # After the commit: neither may undo a change, nor run for one rolled back.
        subscribe(PaymentChanged, payment_cache_write, phase=Phase.AFTER_COMMIT)
        subscribe(PaymentChanged, payment_change_count, phase=Phase.AFTER_COMMIT)
