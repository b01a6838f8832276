"""200 transfers at once, both ways between a few wallets, on the real PostgreSQL."""

import logging
import random
import threading
from typing import Any

import pytest
from django.db import connection
from django.db.models import Sum

from tests.factories import ApiClientFactory, WalletFactory
from tests.helpers import authenticated
from tests.wallets.helpers import post_transfer, transfer_body
from wallets.integrity import ledger_problems
from wallets.models import Account, AccountKind, Entry, Transfer

WALLETS = 4
FUNDS = 10_000
THREADS = 20
TRANSFERS_PER_THREAD = 10


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_concurrent_transfers_both_ways_neither_deadlock_nor_lose_money(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = ApiClientFactory()
    wallets = [WalletFactory(client=app, funds=FUNDS) for _ in range(WALLETS)]
    # Every ordered pair, so each pair of wallets sees transfers in both directions at once.
    pairs = [(a, b) for a in wallets for b in wallets if a.pk != b.pk]
    rng = random.Random(6)
    plan = [
        [
            (pairs[(thread + step) % len(pairs)], rng.randint(1, 4_000))
            for step in range(TRANSFERS_PER_THREAD)
        ]
        for thread in range(THREADS)
    ]
    barrier = threading.Barrier(THREADS)
    answers: list[Any] = []
    crashes: list[BaseException] = []
    lock = threading.Lock()

    def client(thread: int) -> None:
        api = authenticated(app.user)
        try:
            barrier.wait()
            for step, ((source, target), amount) in enumerate(plan[thread]):
                response = post_transfer(
                    api, transfer_body(source, target, amount), key=f"t{thread}-{step}"
                )
                with lock:
                    answers.append(response)
        except BaseException as exc:  # reported below, not lost in the thread
            crashes.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=client, args=(n,)) for n in range(THREADS)]
    with caplog.at_level(logging.WARNING, logger="wallets.ledger"):
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=240)

    assert connection.vendor == "postgresql"
    assert crashes == []
    assert len(answers) == THREADS * TRANSFERS_PER_THREAD == 200
    outcomes = sorted((r.status_code, r.json().get("error", {}).get("code", "")) for r in answers)
    assert set(outcomes) <= {(201, ""), (409, "insufficient_funds")}, set(outcomes)
    completed = [r for r in answers if r.status_code == 201]
    assert len(completed) > 100
    assert Transfer.objects.count() == len(completed)
    # Locks taken in id order: not one deadlock, not even one retried.
    assert not [r for r in caplog.records if "retried" in r.getMessage()]

    balances = list(
        Account.objects.filter(kind=AccountKind.WALLET).values_list("balance", flat=True)
    )
    assert min(balances) >= 0
    assert sum(balances) == WALLETS * FUNDS
    assert Entry.objects.filter(journal__kind="transfer").aggregate(s=Sum("amount"))["s"] == 0
    assert ledger_problems() == []
