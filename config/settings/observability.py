"""Observability: logs and metrics (paywave/observability/)."""

import ipaddress
from pathlib import Path
from typing import Any

from django.core.exceptions import ImproperlyConfigured

from .environment import env

# Every record goes through the context filter (request_id, client, task_id,
# payment_id, gateway, attempt) and the masking filter (secrets, card numbers, tax
# ids) before any handler writes it.
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO").upper()
# json: one Logstash-v1-shaped object per line (for log shippers); plain: for a terminal.
LOG_FORMAT = env.str("LOG_FORMAT", default="json")
# Set LOGSTASH_HOST to ship the same records with python-logstash (udp or tcp).
LOGSTASH_HOST = env.str("LOGSTASH_HOST", default="")
LOGSTASH_PORT = env.int("LOGSTASH_PORT", default=5959)
LOGSTASH_TRANSPORT = env.str("LOGSTASH_TRANSPORT", default="udp")
_LOG_FILTERS = ["context", "mask"]
# Libraries whose INFO lines a line of ours already says: their warnings stay, and
# LOG_LEVEL=DEBUG brings back everything.
_SAID_BY_OUR_LINES = "DEBUG" if LOG_LEVEL == "DEBUG" else "WARNING"
LOGGING: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "context": {"()": "paywave.observability.log_context.ContextFilter"},
        "mask": {"()": "paywave.observability.log_masking.MaskingFilter"},
        # Django's lines about a request in the request line's names
        # (paywave/observability/log_fields.py).
        "http_fields": {"()": "paywave.observability.log_fields.HttpFieldsFilter"},
    },
    "formatters": {
        "json": {"()": "paywave.observability.log_format.JsonFormatter"},
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stdout",
            "formatter": "plain" if LOG_FORMAT == "plain" else "json",
            "filters": _LOG_FILTERS,
        },
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # Django's own handlers (console with DEBUG, mail to admins) would write records
        # past the masking filter: everything goes to ours instead.
        "django": {"handlers": [], "propagate": True},
        "django.request": {"handlers": [], "propagate": True, "filters": ["http_fields"]},
        "django.server": {"handlers": [], "propagate": True, "filters": ["http_fields"]},
        # Celery's "Task ... received" line knows neither the request nor the payment:
        # paywave.observability.celery_signals writes it instead, with both.
        "celery.worker.strategy": {"level": "WARNING"},
        # The Stripe SDK writes two INFO lines per request (sent; answered with a status):
        # the attempt's own line says both, with the outcome and latency.
        "stripe": {"level": _SAID_BY_OUR_LINES},
        # Celery's "Task <name>[<id>] succeeded in <s>s: <result>" line, one per task: the
        # task's own lines say what it did (a payment's transitions and attempts, a sweep's
        # count), Flower shows its runtime. A fifth of a payments worker's lines, each
        # formatted, masked and shipped. Failures (ERROR) stay.
        "celery.app.trace": {"level": _SAID_BY_OUR_LINES},
        # httpx's "HTTP Request: POST <url> ..." line, one per webhook try: the try's own
        # line says it (status_code, latency_ms, error), with the delivery and payment ids.
        "httpx": {"level": _SAID_BY_OUR_LINES},
    },
}
if LOGSTASH_HOST:
    LOGGING["handlers"]["logstash"] = {
        "()": "paywave.observability.log_format.logstash_handler",
        "host": LOGSTASH_HOST,
        "port": LOGSTASH_PORT,
        "transport": LOGSTASH_TRANSPORT,
        "filters": _LOG_FILTERS,
    }
    LOGGING["root"]["handlers"].append("logstash")

# /metrics answers only these peers (and forwarded-for addresses): loopback and the
# private ranges a Prometheus in the same cluster or compose network scrapes from.
PAYWAVE_METRICS_ALLOW = env.list(
    "PAYWAVE_METRICS_ALLOW",
    default=["127.0.0.0/8", "::1/128", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"],
)
for _cidr in PAYWAVE_METRICS_ALLOW:  # a typo here must stop the start, not fail every scrape
    try:
        ipaddress.ip_network(_cidr.strip(), strict=False)
    except ValueError as exc:
        raise ImproperlyConfigured(f"PAYWAVE_METRICS_ALLOW: {_cidr!r} is not a CIDR") from exc
PAYWAVE_METRICS_BROKER_TIMEOUT = env.float("PAYWAVE_METRICS_BROKER_TIMEOUT", default=2.0)
# What /metrics reads from the database (parked payments, the backlog's age, heartbeats)
# is read at most once per this many seconds by each api process, however many scrapes.
PAYWAVE_METRICS_DB_READ_SECONDS = env.float("PAYWAVE_METRICS_DB_READ_SECONDS", default=10.0)
# Celery workers serve their own metrics here when set (0 or empty: off).
PAYWAVE_WORKER_METRICS_PORT = int(env.str("PAYWAVE_WORKER_METRICS_PORT", default="") or 0)
# prometheus_client's multiprocess mode (set before the process starts): every process of
# one kind counts in this directory, and a scrape adds them up. It must exist.
PROMETHEUS_MULTIPROC_DIR = env.str("PROMETHEUS_MULTIPROC_DIR", default="")
if PROMETHEUS_MULTIPROC_DIR:
    Path(PROMETHEUS_MULTIPROC_DIR).mkdir(parents=True, exist_ok=True)
PAYWAVE_WORKER_METRICS_ADDR = env.str("PAYWAVE_WORKER_METRICS_ADDR", default="0.0.0.0")  # noqa: S104
PROMETHEUS_EXPORT_MIGRATIONS = False
