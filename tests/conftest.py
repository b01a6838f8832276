"""Fixtures shared by the suite.

Tests marked `services` need the real PostgreSQL, Redis and RabbitMQ (their URLs
in DATABASE_URL, REDIS_URL, CELERY_BROKER_URL). Without them they are skipped
on a developer's machine; with CI=true a missing URL fails the run instead.
"""

import os
from typing import Any

import pytest
from rest_framework.test import APIClient

from tests.factories import ApiClientFactory
from tests.helpers import authenticated

pytest_plugins = ["tests.gateway_fixtures", "tests.openapi_contract"]

SERVICE_URLS = ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL")


def missing_services() -> list[str]:
    return [name for name in SERVICE_URLS if not os.environ.get(name)]


def pytest_configure(config: pytest.Config) -> None:
    if os.environ.get("CI") == "true" and missing_services():
        raise pytest.UsageError(
            "CI=true but " + ", ".join(missing_services()) + " unset: service tests must run on CI"
        )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    missing = missing_services()
    if not missing:
        return
    skip = pytest.mark.skip(reason="needs " + ", ".join(missing) + " (the real services)")
    for item in items:
        if "services" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _clear_cache() -> None:
    """Each test starts with an empty cache (throttle counters included)."""
    from django.core.cache import cache

    cache.clear()


@pytest.fixture
def wallet_app(db: Any) -> Any:
    return ApiClientFactory()


@pytest.fixture
def api(wallet_app: Any) -> APIClient:
    """An API client authenticated as `wallet_app`."""
    return authenticated(wallet_app.user)


@pytest.fixture
def other_api(db: Any) -> APIClient:
    """An API client of a second wallet app."""
    return authenticated(ApiClientFactory().user)
