from django.urls import path

from . import apis

urlpatterns = [
    path("wallets", apis.WalletCollectionApi.as_view(), name="wallet-collection"),
    path("wallets/<uuid:wallet_id>", apis.WalletDetailApi.as_view(), name="wallet-detail"),
    path(
        "wallets/<uuid:wallet_id>/entries",
        apis.WalletEntryListApi.as_view(),
        name="wallet-entries",
    ),
    path("transfers", apis.TransferCollectionApi.as_view(), name="transfer-collection"),
    path("transfers/<uuid:transfer_id>", apis.TransferDetailApi.as_view(), name="transfer-detail"),
]
