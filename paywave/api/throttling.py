"""Per-client request limits: a fixed-window counter in Redis (or the cache without Redis).

DRF's SimpleRateThrottle keeps a list of timestamps per client and rewrites it
on every request; a counter per window is one atomic increment.
"""

import logging
import time
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from paywave.api.auth import request_claims
from paywave.cache.redis_client import redis_client

logger = logging.getLogger(__name__)

_PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_rate(rate: str) -> tuple[int, int]:
    """Parse a rate such as "1200/min" into (1200, 60)."""
    count, period = rate.split("/")
    return int(count), _PERIODS[period.strip()[0]]


def _count_hit(key: str, *, ttl: int) -> int:
    """Add one hit to the window's counter and return the count, in one round trip."""
    client = redis_client()
    if client is not None:
        pipe = client.pipeline(transaction=False)
        pipe.incr(key)
        pipe.expire(key, ttl)
        count, _ = pipe.execute()
        return int(count)
    cache.add(key, 0, timeout=ttl)
    try:
        return cache.incr(key)
    except ValueError:  # the window's key expired between add and incr
        cache.set(key, 1, timeout=ttl)
        return 1


class ClientRateThrottle(BaseThrottle):
    scope = "api"
    rate_setting = "PAYWAVE_THROTTLE_RATE"

    def __init__(self) -> None:
        self.retry_after: float | None = None

    def ident(self, request: Request | HttpRequest) -> str:
        # A plain Django view (the gateway callback) hands its HttpRequest: no claims.
        claims = request_claims(request) if isinstance(request, Request) else None
        if claims is not None and claims.get("client_id"):
            return f"client:{claims['client_id']}"
        if claims is not None:
            return f"user:{claims.get('user_id')}"
        return f"ip:{client_address(request)}"

    def allow_request(self, request: Request | HttpRequest, view: Any) -> bool:
        limit, period = parse_rate(getattr(settings, self.rate_setting))
        now = time.time()
        window = int(now // period)
        key = f"throttle:{self.scope}:{self.ident(request)}:{window}"
        try:
            count = _count_hit(key, ttl=period + 1)
        except Exception:  # a cache outage must not take the API down with it
            logger.warning("throttle cache unavailable; request allowed", exc_info=True)
            return True
        if count > limit:
            self.retry_after = (window + 1) * period - now
            return False
        return True

    def wait(self) -> float | None:
        return self.retry_after


class TokenRateThrottle(ClientRateThrottle):
    """Guards the token endpoint against password guessing, per source address."""

    scope = "token"
    rate_setting = "PAYWAVE_TOKEN_THROTTLE_RATE"

    def ident(self, request: Request | HttpRequest) -> str:
        return f"ip:{client_address(request)}"


class CallbackRateThrottle(ClientRateThrottle):
    """Guards the public gateway callback URL (/webhooks/<gateway>), per source address."""

    scope = "callback"
    rate_setting = "PAYWAVE_CALLBACK_THROTTLE_RATE"

    def ident(self, request: Request | HttpRequest) -> str:
        return f"ip:{client_address(request)}"


def client_address(request: Any) -> str:
    """The caller's address as every throttle sees it: REMOTE_ADDR, or X-Forwarded-For
    past PAYWAVE_NUM_PROXIES trusted proxies (never a header a client can forge)."""
    return BaseThrottle().get_ident(request)
