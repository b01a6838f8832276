"""The payments app's durable jobs (paywave.jobs): their bodies are in payments/tasks.py.

Publishing them is payments/dispatch.py's; this module imports none of the app, so
the services publish without importing the tasks module, which imports them.
"""

from paywave.jobs import CALLBACKS_QUEUE, PAYMENTS_QUEUE, Job

PROCESS_PAYMENT = Job(
    "payments.process_payment",
    queue=PAYMENTS_QUEUE,
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
)
PROCESS_REFUND = Job(
    "payments.process_refund",
    queue=PAYMENTS_QUEUE,
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
)
PROCESS_CALLBACK = Job(
    "callbacks.process",
    queue=CALLBACKS_QUEUE,
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
)
CANCEL_AT_GATEWAY = Job(
    "payments.cancel_at_gateway", queue=PAYMENTS_QUEUE, acks_late=True, ignore_result=True
)
# Reconciliation's work of one kind for one part of the payments (payments/reconciliation.py).
# Dropped unrun when its run's period is over (`expires`): the next run's takes its work.
RECONCILE_PART = Job("payments.reconcile_part", queue=PAYMENTS_QUEUE, ignore_result=True)
# The payer came back from PayPal's page (payments/approvals.py).
PAYER_RETURNED = Job(
    "payments.payer_returned", queue=CALLBACKS_QUEUE, acks_late=True, ignore_result=True
)
