"""The Celery application: workers start as `celery -A config.celery_app worker`."""

import os

from celery import Celery
from kombu.transport import TRANSPORT_ALIASES

import paywave.observability.celery_signals  # noqa: F401  (log context around tasks, request ids, worker metrics)

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
# `filesystem://` (make run's broker): kombu's transport, writing each message whole.
TRANSPORT_ALIASES["filesystem"] = "paywave.broker:Transport"

app = Celery("paywave")
# The app of every thread: the kernel and the apps publish through celery's default app, as
# they import nothing of config (a Celery() made later becomes the current app of its
# own thread only, so `current_app` is not it).
app.set_default()
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
