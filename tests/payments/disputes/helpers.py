"""Disputes as a gateway reports them, and a succeeded payment that credited a wallet."""

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.db import connection

from gateways.base import DisputeKind, DisputeResult, DisputeStatus
from payments.models import Payment, PaymentStatus
from tests.factories import PaymentFactory
from wallets.models import Account, AccountKind
from wallets.services import wallet_credit_for_payment


def credited_payment(wallet: Any, amount: int = 10_000, **fields: Any) -> Payment:
    """A payment that succeeded at Stripe and credited `wallet` its amount."""
    payment = PaymentFactory(
        client=wallet.client,
        wallet_id=wallet.pk,
        currency=wallet.currency,
        amount=amount,
        status=PaymentStatus.SUCCEEDED,
        gateway="stripe",
        gateway_reference=f"pi_{amount}_{wallet.pk.hex[:8]}",
        **fields,
    )
    wallet_credit_for_payment(payment)
    return payment


def reported(
    payment: Payment,
    status: DisputeStatus = DisputeStatus.NEEDS_RESPONSE,
    *,
    amount: int | None = None,
    reference: str = "dp_1",
    reason: str = "fraudulent",
    kind: DisputeKind = DisputeKind.CHARGEBACK,
) -> DisputeResult:
    return DisputeResult(
        reference=reference,
        charge_reference=payment.gateway_reference,
        kind=kind,
        status=status,
        raw_status=str(status),
        amount=payment.amount if amount is None else amount,
        currency=payment.currency,
        reason=reason,
        evidence_due_at=datetime.now(UTC) + timedelta(days=7),
        evidence_submittable=status == DisputeStatus.NEEDS_RESPONSE,
    )


def system_balance(kind: str, wallet: Any) -> int:
    """The wallet's held (`disputes`) or owed (`receivable`) balance; 0 if never used."""
    account = Account.objects.filter(kind=kind, code=str(wallet.pk)).first()
    return account.balance if account else 0


def held(wallet: Any) -> int:
    return system_balance(AccountKind.DISPUTES, wallet)


def owed(wallet: Any) -> int:
    return -system_balance(AccountKind.RECEIVABLE, wallet)


def wallet_balance(wallet: Any) -> int:
    return Account.objects.get(pk=wallet.pk).balance


def alerts(caplog: pytest.LogCaptureFixture, kind: str) -> list[Any]:
    return [r for r in caplog.records if getattr(r, "alert", "") == kind]


AMOUNT = 10_000
PIX_GATEWAYS = ("mercadopago", "gerencianet")


class WalletOf:
    """A payment's wallet, for the helpers above (which take anything with a pk)."""

    def __init__(self, payment: Payment) -> None:
        self.pk = payment.wallet_id


def open_dispute(sim: Any, payment: Payment, amount: int | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"reference": str(payment.pk), "reason": "fraudulent"}
    if amount is not None:
        body["amount"] = amount
    answer = sim.http.post("/disputes", json=body)
    assert answer.status_code == 201, answer.text
    return answer.json()


def close_dispute(sim: Any, dispute_id: str, outcome: str) -> dict[str, Any]:
    answer = sim.http.post(f"/disputes/{dispute_id}/close", json={"outcome": outcome})
    assert answer.status_code == 200, answer.text
    return answer.json()


def at_once(*actions: Callable[[], Any]) -> list[Any]:
    """Run the actions in threads released together; what each returned or raised."""
    barrier = threading.Barrier(len(actions))
    outcomes: list[Any] = [None] * len(actions)

    def run(index: int) -> None:
        try:
            barrier.wait()
            outcomes[index] = actions[index]()
        except BaseException as exc:  # kept, not lost in the thread
            outcomes[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(index,)) for index in range(len(actions))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return outcomes
