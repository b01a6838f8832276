"""Workers' entry points for payments: thin wrappers over payments.processing and friends."""

from typing import Any

from celery import shared_task

from .dispatch import payment_dispatch
from .processing import payment_process_step
from .reconciliation import payments_reconcile
from .sweeps import payments_sweep_outbox


@shared_task(
    name="payments.process_payment",
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
)
def process_payment(payment_id: str, token: str | None = None) -> None:
    step = payment_process_step(payment_id, token)
    if step is not None:
        payment_dispatch(payment_id, step.token, step.countdown)


@shared_task(name="payments.sweep_outbox", ignore_result=True)
def sweep_outbox() -> int:
    return payments_sweep_outbox()


@shared_task(name="payments.reconcile", ignore_result=True)
def reconcile() -> dict[str, Any]:
    return payments_reconcile()
