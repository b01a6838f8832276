from django.apps import AppConfig


class GatewaysConfig(AppConfig):
    """Gateway adapters, routing, health and simulators."""

    name = "gateways"

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save

        from paywave.observability.metrics import scrape_time_register

        from .metrics import circuit_collector
        from .models import Gateway
        from .table_generation import gateway_table_changed

        scrape_time_register(circuit_collector)
        for signal in (post_save, post_delete):
            signal.connect(
                lambda **_: gateway_table_changed(), sender=Gateway, weak=False,
                dispatch_uid=f"gateway-table-{signal is post_save}",
            )  # fmt: skip
