from django.apps import AppConfig


class GatewaysConfig(AppConfig):
    """Gateway adapters, routing, health and simulators."""

    name = "gateways"

    def ready(self) -> None:
        from paywave.observability.metrics import scrape_time_register

        from .metrics import circuit_collector

        scrape_time_register(circuit_collector)
