"""The Celery app reads Django's CELERY_ settings once, and answers as if it read them each time."""

from typing import Any

import pytest
from celery import Celery
from celery.app.defaults import DEFAULTS
from celery.utils.collections import DictAttribute
from django.conf import settings
from django.test import override_settings

from config.celery_app import app, read_django_settings_once


def _read_each_time() -> Celery:
    """An app configured as ours is, but looking Django's settings up on every use."""
    other = Celery("paywave-each-time", set_as_current=False)
    other.config_from_object("django.conf:settings", namespace="CELERY")
    return other


def _loaded(celery_app: Celery) -> Celery:
    assert celery_app.conf.task_serializer  # Celery loads its configuration on first use
    return celery_app


def test_every_setting_is_what_reading_django_each_time_gives() -> None:
    other = _loaded(_read_each_time())
    assert any(isinstance(mapping, DictAttribute) for mapping in other.conf.maps or [])

    for name in DEFAULTS:
        if name not in (app.conf.changes or {}):  # set on the app since (its tasks' modules)
            assert app.conf[name] == other.conf[name], name
    assert app.conf.task_serializer == settings.CELERY_TASK_SERIALIZER
    assert app.conf.task_acks_late is settings.CELERY_TASK_ACKS_LATE
    assert app.conf.task_routes == settings.CELERY_TASK_ROUTES
    # Read by Celery's Django fixup, not one of Celery's own settings.
    assert app.conf.get("CELERY_DB_REUSE_MAX") == settings.CELERY_DB_REUSE_MAX


def test_celerys_old_names_in_djangos_settings_still_count() -> None:
    with override_settings(CELERYD_CONCURRENCY=7):
        assert app.conf.worker_concurrency == 7
        assert _loaded(_read_each_time()).conf.worker_concurrency == 7
    assert app.conf.worker_concurrency is None


def test_a_changed_django_setting_reaches_celery() -> None:
    _loaded(app)
    with override_settings(CELERY_TASK_DEFAULT_QUEUE="elsewhere"):
        assert app.conf.task_default_queue == "elsewhere"
    assert app.conf.task_default_queue == settings.CELERY_TASK_DEFAULT_QUEUE


def test_a_lookup_never_reads_djangos_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_: Any) -> Any:
        raise AssertionError("Django's settings were read")

    _loaded(app)
    # Neither among the maps looked up, nor among the defaults a copy of the view is made of.
    assert not any(isinstance(mapping, DictAttribute) for mapping in app.conf.maps or [])
    assert (app.conf.maps or [])[1:] == app.conf.defaults
    monkeypatch.setattr(DictAttribute, "__getitem__", refuse)

    for name in DEFAULTS:
        app.conf[name]  # a default (most) or one of ours
        app.conf.copy()[name]
    assert app.conf.task_default_queue == settings.CELERY_TASK_DEFAULT_QUEUE


def test_what_is_set_on_the_app_later_still_wins() -> None:
    other = _read_each_time()
    other.on_after_configure.connect(read_django_settings_once)
    assert other.conf.task_acks_late is True  # ours, read once
    assert other.conf.worker_concurrency is None  # Celery's default

    other.conf.update(task_acks_late=False, worker_concurrency=3)  # as the command line does

    assert other.conf.task_acks_late is False
    assert other.conf.worker_concurrency == 3
    assert not any(isinstance(mapping, DictAttribute) for mapping in other.conf.maps or [])
