from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    """Domain events to signed webhooks for wallet apps, and operator alerts."""

    name = "notifications"
