from django.apps import AppConfig


class PaymentsConfig(AppConfig):
    name = "payments"

    def ready(self) -> None:
        from gateways.callbacks import callback_publisher_register

        from . import tasks  # noqa: F401  (the jobs' bodies, for every process that publishes)
        from .dispatch import callback_dispatch

        callback_publisher_register(callback_dispatch)
