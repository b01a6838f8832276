"""Reads on wallets and transfers, always scoped to the wallet app that owns them."""

from uuid import UUID

from django.db.models import QuerySet

from paywave.api.errors import ApplicationError, NotFound

from .models import Entry, Transfer, Wallet, WalletStatus

NO_SUCH_WALLET = "No such wallet."


def wallet_not_found(field: str | None = None) -> NotFound:
    # Another wallet app's wallet is as invisible as one that does not exist.
    return NotFound(
        NO_SUCH_WALLET, code="wallet_not_found", fields={field: NO_SUCH_WALLET} if field else None
    )


def wallet_get(*, client_id: str, wallet_id: UUID) -> Wallet:
    wallet = Wallet.objects.filter(pk=wallet_id, client__pk=client_id).first()
    if wallet is None:
        raise wallet_not_found()
    return wallet


def wallet_list(
    *, client_id: str, status: str | None = None, currency: str | None = None
) -> QuerySet[Wallet]:
    wallets = Wallet.objects.filter(client__pk=client_id)
    if status:
        wallets = wallets.filter(status=status)
    if currency:
        wallets = wallets.filter(currency=currency)
    return wallets


def wallet_entries(*, client_id: str, wallet_id: UUID) -> QuerySet[Entry]:
    """The wallet's ledger lines (order them newest first by `-sequence`)."""
    wallet = wallet_get(client_id=client_id, wallet_id=wallet_id)
    return Entry.objects.filter(account_id=wallet.pk).select_related("journal")


def transfer_get(*, client_id: str, transfer_id: UUID) -> Transfer:
    transfer = Transfer.objects.filter(pk=transfer_id, client__pk=client_id).first()
    if transfer is None:
        raise NotFound("No such transfer.", code="transfer_not_found")
    return transfer


def wallet_validate_for_payment(*, client_id: str, wallet_id: UUID, currency: str) -> Wallet:
    """The wallet a new payment will credit: the app's own, active, in the payment's currency.

    Raises a 400 naming `wallet_id` otherwise (another app's wallet reads "No such wallet.").
    """
    wallet = Wallet.objects.filter(pk=wallet_id, client__pk=client_id).first()
    if wallet is None:
        problem = NO_SUCH_WALLET
    elif wallet.status != WalletStatus.ACTIVE:
        problem = "This wallet is frozen; it cannot receive payments."
    elif wallet.currency != currency:
        problem = f"This wallet holds {wallet.currency}; the payment is in {currency}."
    else:
        return wallet
    raise ApplicationError(f"Invalid request: wallet_id: {problem}", fields={"wallet_id": problem})
