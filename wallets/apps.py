from django.apps import AppConfig


class WalletsConfig(AppConfig):
    """Wallets and the double-entry ledger."""

    name = "wallets"

    def ready(self) -> None:
        from payments.events import DisputeChanged, PaymentChanged, RefundChanged
        from paywave.domain_events import Phase, subscribe
        from paywave.observability.metrics import scrape_time_register

        from .metrics import ledger_check_collector
        from .subscribers import (
            dispute_wallet_movement,
            payment_wallet_check,
            payment_wallet_credit,
            refund_wallet_debit,
        )

        scrape_time_register(ledger_check_collector)
        # In the change's transaction: the ledger moves with the payment or not at all.
        subscribe(PaymentChanged, payment_wallet_check, phase=Phase.IN_TRANSACTION)
        subscribe(PaymentChanged, payment_wallet_credit, phase=Phase.IN_TRANSACTION)
        subscribe(RefundChanged, refund_wallet_debit, phase=Phase.IN_TRANSACTION)
        subscribe(DisputeChanged, dispute_wallet_movement, phase=Phase.IN_TRANSACTION)
