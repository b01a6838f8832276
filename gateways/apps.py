from django.apps import AppConfig


class GatewaysConfig(AppConfig):
    """Gateway adapters, routing, health and simulators."""

    name = "gateways"
