"""A cache of versioned payloads that never goes back to an older version.

A writer stores what it just committed with the row's version; a reader
that missed stores what it read. Both use set-if-newer, so a slow reader holding
an old version can never overwrite a newer one, and after the last writer's
put the cache holds the latest committed version.

With Redis (REDIS_URL) the compare-and-set is one Lua script, atomic. Without it
(the one-machine quickstart) the Django cache is used with a plain
read-compare-write.

Payloads are opaque text: the caller encodes (and encrypts) them.
"""

import logging
from functools import lru_cache
from typing import Protocol

import redis
from django.core.cache import cache as django_cache

from paywave.cache.redis_client import redis_client

logger = logging.getLogger(__name__)

_SET_IF_NEWER = """
local current = redis.call('HGET', KEYS[1], 'v')
if current and tonumber(current) >= tonumber(ARGV[1]) then
  return 0
end
redis.call('HSET', KEYS[1], 'v', ARGV[1], 'd', ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[3])
return 1
"""


class VersionedCache(Protocol):
    def get(self, key: str) -> str | None: ...

    def put(self, key: str, version: int, payload: str, ttl: int) -> None: ...

    def delete(self, key: str) -> None: ...


class RedisVersionedCache:
    def __init__(self, client: redis.Redis) -> None:
        self._client = client
        self._set_if_newer = self._client.register_script(_SET_IF_NEWER)

    def get(self, key: str) -> str | None:
        try:
            raw = self._client.hget(key, "d")
        except redis.RedisError:
            logger.warning("cache read failed for %s", key, exc_info=True)
            return None
        if not raw:
            return None
        assert isinstance(raw, bytes)  # redis_client() leaves answers undecoded
        return raw.decode()

    def put(self, key: str, version: int, payload: str, ttl: int) -> None:
        try:
            self._set_if_newer(keys=[key], args=[version, payload, ttl])
        except redis.RedisError:
            logger.warning("cache write failed for %s", key, exc_info=True)
            try:
                self._client.delete(key)
            except redis.RedisError:
                logger.error("cache entry %s may be stale until it expires", key)

    def delete(self, key: str) -> None:
        try:
            self._client.delete(key)
        except redis.RedisError:
            logger.warning("cache delete failed for %s", key, exc_info=True)


class DjangoVersionedCache:
    def get(self, key: str) -> str | None:
        entry = django_cache.get(key)
        return entry["d"] if entry else None

    def put(self, key: str, version: int, payload: str, ttl: int) -> None:
        entry = django_cache.get(key)
        if entry and entry["v"] >= version:
            return
        django_cache.set(key, {"v": version, "d": payload}, timeout=ttl)

    def delete(self, key: str) -> None:
        django_cache.delete(key)


@lru_cache(maxsize=2)
def _cache_for(client: redis.Redis | None) -> VersionedCache:
    return RedisVersionedCache(client) if client is not None else DjangoVersionedCache()


def versioned_cache() -> VersionedCache:
    return _cache_for(redis_client())
