"""Small shared state kept as JSON: Redis through a plain client, or the local cache.

Django's Redis cache unpickles what it reads, so anyone able to write a key could run
code in every process that reads it. State that workers share (circuit breakers,
gateway health) is written here instead: JSON over a plain `redis` client (so
`rediss://` and AUTH in REDIS_URL work as redis-py reads them). Without REDIS_URL
(the one-machine quickstart) the process-local Django cache stands in, with the same
JSON values.
"""

import json
import logging
from typing import Any, Protocol

import redis
from django.core.cache import cache as django_cache

from paywave.cache.redis_client import redis_client

logger = logging.getLogger(__name__)


def _parsed(key: str, raw: Any) -> Any:
    """JSON, or None for anything else (never unpickled, never trusted)."""
    try:
        return json.loads(raw)
    except (TypeError, ValueError):
        logger.warning("shared state %s is not JSON: ignored", key)
        return None


class JsonState(Protocol):
    def get_many(self, keys: list[str]) -> dict[str, Any]: ...

    def set(self, key: str, value: Any, timeout: int) -> None: ...

    def add(self, key: str, value: Any, timeout: int) -> bool: ...

    def incr(self, key: str, timeout: int) -> int: ...

    def delete_many(self, keys: list[str]) -> None: ...


class RedisJsonState:
    def __init__(self, client: redis.Redis) -> None:
        self._client = client

    def get_many(self, keys: list[str]) -> dict[str, Any]:
        values = self._client.mget(keys)
        parsed = {k: _parsed(k, v) for k, v in zip(keys, values, strict=True) if v is not None}
        return {k: v for k, v in parsed.items() if v is not None}

    def set(self, key: str, value: Any, timeout: int) -> None:
        self._client.set(key, json.dumps(value), ex=timeout)

    def add(self, key: str, value: Any, timeout: int) -> bool:
        return bool(self._client.set(key, json.dumps(value), ex=timeout, nx=True))

    def incr(self, key: str, timeout: int) -> int:
        pipe = self._client.pipeline()
        pipe.incr(key)
        pipe.expire(key, timeout)
        count, _ = pipe.execute()
        return int(count)

    def delete_many(self, keys: list[str]) -> None:
        self._client.delete(*keys)


class CacheJsonState:
    """The quickstart's stand-in: JSON text in the Django cache (local to the machine)."""

    def get_many(self, keys: list[str]) -> dict[str, Any]:
        parsed = {k: _parsed(k, v) for k, v in django_cache.get_many(keys).items()}
        return {k: v for k, v in parsed.items() if v is not None}

    def set(self, key: str, value: Any, timeout: int) -> None:
        django_cache.set(key, json.dumps(value), timeout=timeout)

    def add(self, key: str, value: Any, timeout: int) -> bool:
        return bool(django_cache.add(key, json.dumps(value), timeout=timeout))

    def incr(self, key: str, timeout: int) -> int:
        django_cache.add(key, "0", timeout=timeout)
        try:
            count = int(json.loads(django_cache.get(key) or "0")) + 1
        except (TypeError, ValueError):
            count = 1
        django_cache.set(key, json.dumps(count), timeout=timeout)
        return count

    def delete_many(self, keys: list[str]) -> None:
        django_cache.delete_many(keys)


def json_state() -> JsonState:
    client = redis_client()
    return RedisJsonState(client) if client is not None else CacheJsonState()
