"""One Redis client per process for what Django's cache API cannot do in one round trip."""

from functools import lru_cache

import redis
from django.conf import settings


@lru_cache(maxsize=2)
def _client_for(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)


def redis_client() -> redis.Redis | None:
    """The shared client, or None when no REDIS_URL is set (the one-machine quickstart)."""
    return _client_for(settings.REDIS_URL) if settings.REDIS_URL else None
