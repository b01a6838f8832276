"""Secret API keys for wallet apps: made, rolled and revoked here; checked per request.

A key looks like `pw_test_<43 random characters>` in the sandbox and `pw_live_...`
otherwise. Only its SHA-256 digest is stored. A request's key is looked up by digest
in the cache (PAYWAVE_ACCOUNT_CACHE_SECONDS, the same bound as a deactivated account)
before the database, so a warm request costs one cache read for the key and one for
the account; rolling or revoking a key drops its cache entry at once. `last_used_at`
is written at most once a minute per key.
"""

import hashlib
import secrets
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from paywave.models import ApiClient, ApiKey

LIVE_PREFIX = "pw_live_"
TEST_PREFIX = "pw_test_"
_USED_EVERY = timedelta(minutes=1)


@dataclass(frozen=True)
class KeyState:
    key_id: int
    client_id: str
    user_id: int
    expires_at: float | None  # unix time
    revoked: bool

    def usable(self, now: datetime) -> bool:
        return not self.revoked and (self.expires_at is None or now.timestamp() < self.expires_at)


def key_prefix() -> str:
    return TEST_PREFIX if settings.PAYWAVE_SANDBOX else LIVE_PREFIX


def looks_like_api_key(raw: str) -> bool:
    return raw.startswith((TEST_PREFIX, LIVE_PREFIX))


def digest_of(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def api_key_create(*, client: ApiClient, name: str = "") -> tuple[ApiKey, str]:
    """A new key for the wallet app; returns it with the key itself (shown once)."""
    raw = key_prefix() + secrets.token_urlsafe(32)
    key = ApiKey.objects.create(
        client=client, name=name[:100], digest=digest_of(raw), hint=f"{raw[:12]}...{raw[-4:]}"
    )
    return key, raw


def api_key_ensure(*, client: ApiClient, raw: str, name: str) -> ApiKey:
    """A key with this exact value for the wallet app (the sandbox demo's well-known key)."""
    key, _ = ApiKey.objects.get_or_create(
        digest=digest_of(raw),
        defaults={"client": client, "name": name, "hint": f"{raw[:12]}...{raw[-4:]}"},
    )
    return key


def api_key_roll(*, key: ApiKey, grace: timedelta | None = None) -> tuple[ApiKey, str]:
    """A successor for `key`; the old key keeps working for `grace`, then expires."""
    if grace is None:
        grace = timedelta(hours=settings.PAYWAVE_API_KEY_ROLL_GRACE_HOURS)
    with transaction.atomic():
        successor, raw = api_key_create(client=key.client, name=key.name)
        expires_at = timezone.now() + grace
        ApiKey.objects.filter(pk=key.pk, revoked_at__isnull=True).filter(
            expires_at__isnull=True
        ).update(expires_at=expires_at)
        _forget_now_and_on_commit(key.digest)
    return successor, raw


def api_key_revoke(*, key: ApiKey) -> bool:
    """Stop the key now; True if it was still usable."""
    with transaction.atomic():
        revoked = ApiKey.objects.filter(pk=key.pk, revoked_at__isnull=True).update(
            revoked_at=timezone.now()
        )
        _forget_now_and_on_commit(key.digest)
    return bool(revoked)


def api_key_state(raw: str) -> KeyState | None:
    """The key's state (from the cache, else the database), or None if there is no such key."""
    digest = digest_of(raw)
    cached = cache.get(_cache_key(digest))
    if cached is not None:
        return KeyState(**cached) if cached else None
    key = ApiKey.objects.select_related("client").filter(digest=digest).first()
    state = None
    if key is not None:
        state = KeyState(
            key_id=key.pk,
            client_id=str(key.client_id),
            user_id=key.client.user_id,
            expires_at=key.expires_at.timestamp() if key.expires_at else None,
            revoked=key.revoked_at is not None,
        )
    cache.set(
        _cache_key(digest),
        asdict(state) if state else {},
        timeout=settings.PAYWAVE_ACCOUNT_CACHE_SECONDS,
    )
    return state


def api_key_touch(state: KeyState, now: datetime) -> None:
    """Record the key's use, at most once a minute."""
    if cache.add(f"api-key-used:{state.key_id}", 1, timeout=int(_USED_EVERY.total_seconds())):
        ApiKey.objects.filter(pk=state.key_id).update(last_used_at=now)


def _cache_key(digest: str) -> str:
    return f"api-key:{digest}"


def _forget_now_and_on_commit(digest: str) -> None:
    """Drop the cached state at once, and again after the commit: a request that read the
    old row in between must not leave it cached."""
    cache.delete(_cache_key(digest))
    transaction.on_commit(lambda: cache.delete(_cache_key(digest)))
