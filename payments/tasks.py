"""Workers' entry points for payments: thin wrappers over payments.processing and friends."""

from typing import Any

from celery import shared_task

from gateways.callbacks import callback_dispatch

from .callbacks import CallbackLookupFailed, callback_give_up, callback_process
from .dispatch import gateway_cancel_dispatch, payment_dispatch
from .orphans import orphans_withdraw
from .processing import payment_process_step
from .reconciliation import payment_withdraw_charge, payments_reconcile, refunds_reconcile
from .refunds import refund_dispatch, refund_process
from .sweeps import callbacks_sweep, payments_sweep_outbox, refunds_sweep

CALLBACK_TRIES = 5


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


@shared_task(
    name="payments.process_refund", acks_late=True, reject_on_worker_lost=True, ignore_result=True
)
def process_refund(refund_id: str, token: str | None = None) -> None:
    step = refund_process(refund_id, token)
    if step is not None:
        refund_dispatch(refund_id, step.token, step.countdown)


@shared_task(
    name="webhooks.process_callback", acks_late=True, reject_on_worker_lost=True, ignore_result=True
)
def process_callback(callback_id: int, tries: int = 0) -> None:
    try:
        callback_process(callback_id)
    except CallbackLookupFailed as exc:
        if tries + 1 >= CALLBACK_TRIES:
            callback_give_up(callback_id, str(exc))
        else:
            process_callback.apply_async(args=(callback_id, tries + 1), countdown=2 ** (tries + 1))


@shared_task(name="payments.cancel_at_gateway", acks_late=True, ignore_result=True)
def cancel_at_gateway(payment_id: str, tries: int = 0) -> None:
    if not payment_withdraw_charge(payment_id) and tries + 1 < CALLBACK_TRIES:
        gateway_cancel_dispatch(payment_id, tries + 1, countdown=2 ** (tries + 1))


@shared_task(name="payments.sweep_outbox", ignore_result=True)
def sweep_outbox() -> dict[str, int]:
    return {
        "payments": payments_sweep_outbox(),
        "refunds": refunds_sweep(),
        "callbacks": callbacks_sweep(dispatch=callback_dispatch),
    }


@shared_task(name="payments.reconcile", ignore_result=True)
def reconcile() -> dict[str, Any]:
    return payments_reconcile()


@shared_task(name="payments.reconcile_refunds", ignore_result=True)
def reconcile_refunds() -> dict[str, int]:
    return refunds_reconcile()


@shared_task(name="payments.withdraw_orphans", ignore_result=True)
def withdraw_orphans() -> dict[str, int]:
    return orphans_withdraw()
