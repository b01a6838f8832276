"""paywave.cache.backend: Django's Redis cache, its client built once per pool."""

import threading
from typing import Any

import pytest
import redis
from django.conf import LazySettings
from django.core.cache import caches

from config.settings.base import redis_caches
from paywave.cache.backend import RedisCache

pytestmark = pytest.mark.services


def _backend(settings: LazySettings) -> RedisCache:
    """A cache of its own, configured as every process's (timeouts, JSON)."""
    configured = redis_caches(settings.REDIS_URL)["default"]
    return RedisCache(configured["LOCATION"], configured)


def test_the_cache_of_every_process_is_this_backend() -> None:
    assert isinstance(caches["default"], RedisCache)


def test_one_client_serves_every_call_and_no_new_one_is_built(
    settings: LazySettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = _backend(settings)
    cache.set("paywave:test:kept", {"a": 1}, timeout=60)
    first = cache._cache.get_client(write=True)
    built: list[Any] = []
    monkeypatch.setattr(redis.Redis, "__init__", lambda *a, **k: built.append(a))

    assert cache.get("paywave:test:kept") == {"a": 1}
    cache.set("paywave:test:kept", {"a": 2}, timeout=60)
    cache.add("paywave:test:count", 0, timeout=60)
    assert cache.incr("paywave:test:count") >= 1
    assert cache.get_many(["paywave:test:kept"]) == {"paywave:test:kept": {"a": 2}}
    cache.delete("paywave:test:kept")

    assert built == []
    assert cache._cache.get_client(write=False) is first
    assert cache.get("paywave:test:kept") is None


def test_threads_share_the_client_safely(settings: LazySettings) -> None:
    cache = _backend(settings)
    cache.delete("paywave:test:shared")
    cache.add("paywave:test:shared", 0, timeout=60)
    errors: list[BaseException] = []

    def bump() -> None:
        try:
            for _ in range(50):
                cache.incr("paywave:test:shared")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=bump) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert cache.get("paywave:test:shared") == 400
    cache.delete("paywave:test:shared")
