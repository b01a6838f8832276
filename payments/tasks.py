"""Workers' entry points for payments: thin wrappers over payments.processing and friends.

The jobs' bodies (payments/jobs.py declares them) and beat's tasks. Nothing in the app
imports this module but PaymentsConfig.ready: it is the top of the app."""

from datetime import datetime
from typing import Any

from celery import shared_task, signals
from django.db import connections

from gateways.callbacks import callback_dispatch

from .approvals import ApprovalUnreadable, payer_return_process
from .callbacks import CallbackLookupFailed, callback_give_up, callback_process
from .dispatch import (
    gateway_cancel_dispatch,
    payer_returned_dispatch,
    payment_dispatch,
    refund_dispatch,
)
from .dispute_poll import disputes_poll
from .jobs import (
    CANCEL_AT_GATEWAY,
    PAYER_RETURNED,
    PROCESS_CALLBACK,
    PROCESS_PAYMENT,
    PROCESS_REFUND,
    RECONCILE_PART,
)
from .orphans import orphans_withdraw
from .processing import payment_process_step
from .reconciliation import (
    Part,
    payment_withdraw_charge,
    payments_reconcile,
    payments_reconcile_publish,
    pix_checks_counted_from_zero,
    refunds_reconcile,
)
from .refunds import refund_process
from .sweeps import callbacks_sweep, payments_sweep_outbox, refunds_sweep

CALLBACK_TRIES = 5


@PROCESS_PAYMENT.task
def process_payment(payment_id: str, token: str | None = None) -> None:
    step = payment_process_step(payment_id, token)
    if step is not None:
        payment_dispatch(payment_id, step.token, step.countdown)


@PROCESS_REFUND.task
def process_refund(refund_id: str, token: str | None = None) -> None:
    step = refund_process(refund_id, token)
    if step is not None:
        refund_dispatch(refund_id, step.token, step.countdown)


@PROCESS_CALLBACK.task
def process_callback(callback_id: int, tries: int = 0) -> None:
    try:
        callback_process(callback_id)
    except CallbackLookupFailed as exc:
        if tries + 1 >= CALLBACK_TRIES:
            callback_give_up(callback_id, str(exc))
        else:
            PROCESS_CALLBACK.publish(callback_id, tries + 1, countdown=2 ** (tries + 1))


@CANCEL_AT_GATEWAY.task
def cancel_at_gateway(payment_id: str, tries: int = 0) -> None:
    if not payment_withdraw_charge(payment_id) and tries + 1 < CALLBACK_TRIES:
        gateway_cancel_dispatch(payment_id, tries + 1, countdown=2 ** (tries + 1))


@PAYER_RETURNED.task
def payer_returned(payment_id: str, outcome: str, tries: int = 0) -> None:
    try:
        payer_return_process(payment_id, outcome)
    except ApprovalUnreadable:
        if tries + 1 < CALLBACK_TRIES:  # then reconciliation reads the order
            payer_returned_dispatch(payment_id, outcome, tries + 1, countdown=2 ** (tries + 1))


@shared_task(name="payments.sweep_outbox", ignore_result=True)
def sweep_outbox() -> dict[str, int]:
    return {
        "payments": payments_sweep_outbox(),
        "refunds": refunds_sweep(),
        "callbacks": callbacks_sweep(dispatch=callback_dispatch),
    }


@shared_task(name="payments.reconcile", ignore_result=True)
def reconcile() -> dict[str, Any]:
    return payments_reconcile_publish()


@RECONCILE_PART.task
def reconcile_part(kind: str, index: int, parts: int, at: str) -> dict[str, int]:
    return payments_reconcile(kind=kind, part=Part(index, parts), at=datetime.fromisoformat(at))


@shared_task(name="payments.reconcile_refunds", ignore_result=True)
def reconcile_refunds() -> dict[str, int]:
    return refunds_reconcile()


@shared_task(name="payments.withdraw_orphans", ignore_result=True)
def withdraw_orphans() -> dict[str, int]:
    return orphans_withdraw()


@shared_task(name="payments.poll_disputes", ignore_result=True)
def poll_disputes() -> dict[str, int]:
    return disputes_poll()


@signals.worker_ready.connect
def pix_checks_from_zero(**_: Any) -> None:
    """Prometheus sees each PIX gateway's count of callbacks missed at 0 before the first
    one (PayWavePixCallbacksMissed counts increases)."""
    try:
        pix_checks_counted_from_zero()
    finally:
        connections.close_all()  # the worker's main thread runs no task: no connection kept
