from django.apps import AppConfig


class WalletsConfig(AppConfig):
    """Wallets and the double-entry ledger."""

    name = "wallets"
