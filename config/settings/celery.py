"""Celery: the broker (RabbitMQ in every real deployment), queues and routes, and beat's
schedule, whose periods the payments and notifications settings give."""

from datetime import timedelta
from typing import Any

from kombu import Exchange, Queue

from paywave import jobs  # the queues' names (a module: `import *` passes no setting on)

from .environment import VAR_DIR, env
from .notifications import PAYWAVE_WEBHOOK_SWEEP_SECONDS
from .payments import (
    PAYWAVE_DISPUTE_POLL_SECONDS,
    PAYWAVE_HEALTH_PROBE_SECONDS,
    PAYWAVE_ORPHAN_SWEEP_SECONDS,
    PAYWAVE_OUTBOX_SWEEP_SECONDS,
    PAYWAVE_RECONCILE_SWEEP_SECONDS,
)

CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    _broker_dir = VAR_DIR / "broker"
    for _sub in ("queue", "processed", "control"):
        (_broker_dir / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
    }
CELERY_BROKER_CONNECTION_TIMEOUT = env.float("CELERY_BROKER_CONNECTION_TIMEOUT", default=2.0)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Publishing happens inside an API request: fail fast and let the outbox sweep
# re-dispatch, rather than hold the wallet app's request while the broker is down.
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": 2,
    "interval_start": 0,
    "interval_step": 0.2,
    "interval_max": 0.5,
}
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=120)
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=100)
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# Celery's Django fixup closes every database connection before and after each task
# unless this is set: a new PostgreSQL session (a backend process) per task. With it
# the fixup closes them only every 2 x this many tasks, and paywave.observability.celery_signals
# treats tasks as Django treats requests: connections past CONN_MAX_AGE, or broken
# ones, are closed at a task's start and end; the others are health-checked and kept.
CELERY_DB_REUSE_MAX = env.int("CELERY_DB_REUSE_MAX", default=1_000_000)
CELERY_TASK_DEFAULT_QUEUE = jobs.DEFAULT_QUEUE
CELERY_TASK_QUEUES = [
    Queue(name, Exchange(name, type="direct"), routing_key=name) for name in jobs.QUEUES
]
CELERY_TASK_ROUTES = {
    "payments.*": {"queue": jobs.PAYMENTS_QUEUE, "routing_key": jobs.PAYMENTS_QUEUE},
    "callbacks.*": {"queue": jobs.CALLBACKS_QUEUE, "routing_key": jobs.CALLBACKS_QUEUE},
    "notifications.*": {"queue": jobs.NOTIFICATIONS_QUEUE, "routing_key": jobs.NOTIFICATIONS_QUEUE},
}


def _every(task: str, period: timedelta, *, expires: bool = False) -> dict[str, Any]:
    """A beat entry; `expires`: a run not started within one period is dropped (the next
    one does the same work), so a stopped worker does not find a backlog of sweeps."""
    entry: dict[str, Any] = {"task": task, "schedule": period}
    if expires:
        entry["options"] = {"expires": period.total_seconds()}
    return entry


def _sweep(task: str, seconds: float) -> dict[str, Any]:
    return _every(task, timedelta(seconds=seconds), expires=True)


_HOURLY = timedelta(hours=1)
CELERY_BEAT_SCHEDULE = {
    "purge-expired-idempotency-keys": _every("paywave.purge_expired_idempotency_keys", _HOURLY),
    "purge-expired-refresh-tokens": _every("paywave.purge_expired_refresh_tokens", _HOURLY),
    "probe-gateway-health": _sweep("gateways.probe_health", PAYWAVE_HEALTH_PROBE_SECONDS),
    "sweep-payment-outbox": _sweep("payments.sweep_outbox", PAYWAVE_OUTBOX_SWEEP_SECONDS),
    "reconcile-payments": _sweep("payments.reconcile", PAYWAVE_RECONCILE_SWEEP_SECONDS),
    "reconcile-refunds": _sweep("payments.reconcile_refunds", PAYWAVE_RECONCILE_SWEEP_SECONDS),
    "withdraw-orphan-charges": _sweep("payments.withdraw_orphans", PAYWAVE_ORPHAN_SWEEP_SECONDS),
    "poll-disputes": _sweep("payments.poll_disputes", PAYWAVE_DISPUTE_POLL_SECONDS),
    "check-ledger": _every("wallets.check_ledger", timedelta(days=1)),
    "purge-rejected-gateway-callbacks": _every("gateways.purge_rejected_callbacks", _HOURLY),
    "sweep-webhook-events": _sweep("notifications.sweep_events", PAYWAVE_WEBHOOK_SWEEP_SECONDS),
    "sweep-webhook-deliveries": _sweep(
        "notifications.sweep_deliveries", PAYWAVE_WEBHOOK_SWEEP_SECONDS
    ),
    "purge-expired-events": _every("notifications.purge_expired_events", _HOURLY),
}
