"""Staff see wallets and the ledger in the admin; they can freeze and unfreeze, nothing else."""

import logging
from typing import Any

import pytest
from django.contrib.admin.models import LogEntry
from django.test import Client

from tests.factories import WalletFactory
from tests.wallets.helpers import balance
from wallets.admin import RecentEntriesFormSet
from wallets.models import Entry, Journal, Wallet, WalletStatus
from wallets.services import transfer_create, wallet_set_status


def _act(admin_client: Client, action: str, *wallets: Any) -> Any:
    return admin_client.post(
        "/admin/wallets/wallet/",
        {"action": action, "_selected_action": [str(w.pk) for w in wallets]},
        follow=True,
    )


@pytest.mark.django_db
def test_wallets_list_filter_and_search_by_id(admin_client: Client) -> None:
    wallet, other = WalletFactory(funds=1234), WalletFactory(status=WalletStatus.FROZEN)

    listing = admin_client.get("/admin/wallets/wallet/")
    found = admin_client.get(f"/admin/wallets/wallet/?q={wallet.pk}")
    frozen = admin_client.get("/admin/wallets/wallet/?status__exact=frozen")

    assert listing.status_code == 200
    assert {str(wallet.pk), str(other.pk)} <= {str(w.pk) for w in listing.context["cl"].result_list}
    assert [w.pk for w in found.context["cl"].result_list] == [wallet.pk]
    assert [w.pk for w in frozen.context["cl"].result_list] == [other.pk]


@pytest.mark.django_db
def test_a_wallet_page_shows_its_entries_read_only(admin_client: Client) -> None:
    wallet = WalletFactory(funds=1234)

    page = admin_client.get(f"/admin/wallets/wallet/{wallet.pk}/change/")

    assert page.status_code == 200
    (inline,) = page.context["inline_admin_formsets"]
    assert inline.formset.model is Entry
    assert not inline.has_add_permission
    assert not inline.has_change_permission
    assert not inline.has_delete_permission
    assert "12.34 BRL" in page.content.decode()  # the balance, in its currency
    assert not page.context["has_change_permission"]


@pytest.mark.django_db
def test_freeze_and_unfreeze_write_an_audit_line(
    admin_client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    first, second = WalletFactory(), WalletFactory()

    with caplog.at_level(logging.INFO, logger="wallets.audit"):
        _act(admin_client, "freeze", first, second)
        assert set(Wallet.objects.values_list("status", flat=True)) == {"frozen"}
        _act(admin_client, "unfreeze", first)

    assert Wallet.objects.get(pk=first.pk).status == "active"
    assert Wallet.objects.get(pk=second.pk).status == "frozen"
    audit = [r for r in caplog.records if r.name == "wallets.audit"]
    assert sorted((r.wallet_id, r.from_status, r.to_status) for r in audit) == sorted(
        [
            (str(first.pk), "active", "frozen"),
            (str(second.pk), "active", "frozen"),
            (str(first.pk), "frozen", "active"),
        ]
    )
    assert all(r.actor == "staff:admin" for r in audit)
    assert LogEntry.objects.filter(object_id=str(first.pk)).count() == 2


@pytest.mark.django_db
def test_a_status_that_is_none_of_a_wallet_s_is_refused() -> None:
    wallet = WalletFactory()

    with pytest.raises(ValueError, match=r"^not a wallet status: closed$"):
        wallet_set_status(wallet_id=wallet.pk, status="closed", actor="staff:admin")

    assert Wallet.objects.get(pk=wallet.pk).status == WalletStatus.ACTIVE


@pytest.mark.parametrize("model", ["wallet", "account", "journal", "entry", "transfer"])
@pytest.mark.django_db
def test_the_ledger_cannot_be_edited_in_the_admin(admin_client: Client, model: str) -> None:
    wallet = WalletFactory(funds=100)
    objects = {
        "wallet": wallet.pk,
        "account": wallet.pk,
        "journal": Journal.objects.get().pk,
        "entry": Entry.objects.filter(account_id=wallet.pk).get().pk,
    }

    assert admin_client.get(f"/admin/wallets/{model}/").status_code == 200
    assert admin_client.get(f"/admin/wallets/{model}/add/").status_code == 403
    if model in objects:
        url = f"/admin/wallets/{model}/{objects[model]}"
        assert admin_client.get(f"{url}/delete/").status_code == 403
        assert admin_client.post(f"{url}/change/", {"balance": 10**6}).status_code == 403
    assert balance(wallet) == 100


@pytest.mark.django_db
def test_a_wallet_page_shows_only_its_newest_entries(admin_client: Client) -> None:
    wallet = WalletFactory(funds=1000)
    other = WalletFactory(client=wallet.client)
    for _ in range(RecentEntriesFormSet.shown + 5):
        transfer_create(
            client_id=str(wallet.client_id),
            from_wallet_id=wallet.pk,
            to_wallet_id=other.pk,
            amount=1,
            currency="BRL",
        )

    page = admin_client.get(f"/admin/wallets/wallet/{wallet.pk}/change/")

    (inline,) = page.context["inline_admin_formsets"]
    sequences = [form.instance.sequence for form in inline.formset.forms]
    assert sequences == list(range(RecentEntriesFormSet.shown + 6, 6, -1))
