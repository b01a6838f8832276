"""The ledger's guarantees in the database, and check_ledger finding what breaks them."""

import logging
import os
import subprocess
import sys
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import IntegrityError, connection, transaction
from django.db.models import F

from tests.factories import PaymentFactory, WalletFactory
from wallets import tasks
from wallets.integrity import ledger_problems
from wallets.ledger import accounts_lock, journal_post
from wallets.models import Account, AccountKind, Entry, Journal, JournalKind
from wallets.services import transfer_create

ROOT = Path(__file__).resolve().parents[2]

needs_postgresql = pytest.mark.skipif(
    not os.environ.get("DATABASE_URL", "").startswith("postgres"),
    reason="the append-only trigger is PostgreSQL's",
)


def _moved_wallets() -> tuple[Any, Any]:
    source = WalletFactory(funds=1000)
    target = WalletFactory(client=source.client)
    transfer_create(
        client_id=str(source.client_id),
        from_wallet_id=source.pk,
        to_wallet_id=target.pk,
        amount=400,
        currency="BRL",
    )
    return source, target


def _journal() -> Journal:
    """A journal to hang hand-written (tampering) entries on."""
    return Journal.objects.create(kind=JournalKind.PAYMENT_CREDIT, payment=PaymentFactory())


@needs_postgresql
@pytest.mark.services
@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE wallets_entry SET amount = amount + 1",
        "UPDATE wallets_journal SET created_at = created_at",
        # The ORM would refuse these first (PROTECT); the database refuses them anyway.
        "DELETE FROM wallets_entry",
        "DELETE FROM wallets_journal",
    ],
)
@pytest.mark.django_db
def test_entries_and_journals_are_append_only_in_the_database(sql: str) -> None:
    _moved_wallets()

    with (
        pytest.raises(IntegrityError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(sql)

    assert Entry.objects.count() == 4
    assert ledger_problems() == []


@pytest.mark.django_db
def test_a_wallet_balance_cannot_go_negative_in_the_database() -> None:
    wallet = WalletFactory(funds=10)

    with pytest.raises(IntegrityError), transaction.atomic():
        Account.objects.filter(pk=wallet.pk).update(balance=-1)


@pytest.mark.django_db
def test_a_wallet_cannot_be_allowed_to_go_negative() -> None:
    wallet = WalletFactory()

    with pytest.raises(IntegrityError), transaction.atomic():
        Account.objects.filter(pk=wallet.pk).update(allow_negative=True)


@pytest.mark.django_db
def test_a_journal_must_balance() -> None:
    wallet = WalletFactory(funds=100)
    other = WalletFactory(client=wallet.client)

    with transaction.atomic():
        accounts = accounts_lock([wallet.pk, other.pk])
        with pytest.raises(ValueError, match="unbalanced"):
            journal_post(
                kind=JournalKind.TRANSFER,
                moves=[(accounts[wallet.pk], -10), (accounts[other.pk], 9)],
            )


@pytest.mark.django_db
def test_check_ledger_passes_a_sound_ledger() -> None:
    _moved_wallets()
    out = StringIO()

    call_command("check_ledger", stdout=out)

    assert out.getvalue().strip() == "ledger ok"


@pytest.mark.django_db
def test_check_ledger_finds_a_tampered_balance() -> None:
    source, _ = _moved_wallets()
    Account.objects.filter(pk=source.pk).update(balance=F("balance") + 1)
    err = StringIO()

    with pytest.raises(CommandError, match="ledger inconsistent"):
        call_command("check_ledger", stderr=err)

    report = err.getvalue()
    assert str(source.pk) in report
    assert "balance 601, entries sum to 600" in report
    assert "BRL: account balances sum to 1, not 0" in report


@pytest.mark.django_db
def test_check_ledger_finds_an_unbalanced_journal() -> None:
    source, _ = _moved_wallets()
    journal = _journal()
    Entry.objects.create(
        journal=journal, account_id=source.pk, amount=5, balance_after=605, sequence=3
    )

    problems = ledger_problems()

    assert any(f"journal {journal.pk}: BRL entries sum to 5" in line for line in problems)
    assert any(f"journal {journal.pk}: 1 entries" in line for line in problems)
    assert any(str(source.pk) in line for line in problems)


@pytest.mark.django_db
def test_check_ledger_finds_a_wrong_balance_after() -> None:
    wallet = WalletFactory()
    clearing = Account.objects.create(
        kind=AccountKind.CLEARING, code="x", currency="BRL", allow_negative=True
    )
    journal = _journal()
    # Balances and sums agree, but the first line claims a balance it never had.
    Entry.objects.bulk_create(
        [
            Entry(journal=journal, account_id=wallet.pk, amount=10, balance_after=99, sequence=1),
            Entry(journal=journal, account_id=wallet.pk, amount=-5, balance_after=5, sequence=2),
            Entry(journal=journal, account_id=clearing.pk, amount=-5, balance_after=-5, sequence=1),
        ]
    )
    Account.objects.filter(pk=wallet.pk).update(balance=5, sequence=2)
    Account.objects.filter(pk=clearing.pk).update(balance=-5, sequence=1)

    problems = ledger_problems()

    assert any("balance_after 99, but the entries up to it sum to 10" in p for p in problems)


@pytest.mark.django_db
def test_the_daily_task_alerts_operators_only_when_something_is_wrong(
    caplog: pytest.LogCaptureFixture,
) -> None:
    source, _ = _moved_wallets()
    with caplog.at_level(logging.ERROR, logger="paywave.alerts"):
        assert tasks.check_ledger() == 0
        assert not caplog.records
        Account.objects.filter(pk=source.pk).update(balance=F("balance") - 1)
        assert tasks.check_ledger() > 0

    (alert,) = caplog.records
    assert alert.alert == "ledger_inconsistent"
    assert any(str(source.pk) in line for line in alert.problems)


def test_beat_runs_the_ledger_check_daily_by_its_registered_name() -> None:
    from datetime import timedelta

    from django.conf import settings

    from config.celery_app import app

    (entry,) = [
        e for e in settings.CELERY_BEAT_SCHEDULE.values() if e["task"] == tasks.check_ledger.name
    ]
    assert entry["schedule"] == timedelta(days=1)
    assert entry["task"] in app.tasks  # a worker knows the name beat sends


@needs_postgresql
@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_manage_py_check_ledger_exits_non_zero_on_a_tampered_ledger() -> None:
    source, _ = _moved_wallets()
    db = connection.settings_dict
    url = (
        f"postgres://{db['USER']}:{db['PASSWORD'] or ''}@{db['HOST']}:{db['PORT'] or 5432}"
        f"/{db['NAME']}"
    )
    env = {**os.environ, "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "config.settings.test"}

    def check() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "manage.py", "check_ledger"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    sound = check()
    Account.objects.filter(pk=source.pk).update(balance=F("balance") + 100)
    tampered = check()

    assert (sound.returncode, sound.stdout.strip()) == (0, "ledger ok")
    assert tampered.returncode != 0
    assert str(source.pk) in tampered.stderr
