"""The Celery application: workers start as `celery -A config.celery_app worker`."""

import os
from functools import partial
from typing import Any

from celery import Celery
from celery.utils.collections import ConfigurationView, DictAttribute
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


@app.on_after_configure.connect
def read_django_settings_once(sender: Celery, source: ConfigurationView, **_: Any) -> None:
    """Celery looks a setting up on every use (a publish reads six), and through Django's
    lazy settings raises and catches AttributeError twice for each left at its default:
    a fifth of a publish's CPU. Django's settings (every upper-case name: besides the
    CELERY_ ones Celery also reads its old names, CELERYD_ and the like) are read into a
    dict here, when Celery loads its configuration, and again whenever one is changed
    (`override_settings`); what is set on app.conf later (the command line's options)
    still comes first.
    """
    from django.conf import settings
    from django.core.signals import setting_changed

    maps, defaults = source.maps or [], source.defaults or []
    for index, mapping in enumerate(maps):
        if isinstance(mapping, DictAttribute) and mapping.obj is settings:
            read = _django_settings()
            maps[index] = read
            defaults[index - 1] = read  # maps[0] is the changes, not a default
            setting_changed.connect(partial(_read_again, read), weak=False)


def _django_settings() -> dict[str, Any]:
    from django.conf import settings

    return {name: getattr(settings, name) for name in dir(settings) if name.isupper()}


def _read_again(read: dict[str, Any], **_: Any) -> None:
    read.clear()
    read.update(_django_settings())


app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
