"""What an account may do now: the source of a token's claims, and the check of them.

A JWT is read without the database, so its claims (`client_id`, `staff`) are a copy
of the account as it was when the token was made. They are rebuilt from the database
on every refresh, and each request compares them with the account's current state,
kept in the cache for PAYWAVE_ACCOUNT_CACHE_SECONDS: one cache read per request, and
a deactivated wallet app or a demoted staff user loses access within that time (at
once when the change goes through `account_state_forget`).
"""

import logging
from dataclasses import asdict, dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.cache import cache

logger = logging.getLogger(__name__)

_KEY = "account-state:{}"


@dataclass(frozen=True)
class AccountState:
    active: bool
    staff: bool
    client_id: str | None


def account_state_of(user: Any) -> AccountState:
    """The state of a user read from the database (its wallet app loaded with it)."""
    client = getattr(user, "api_client", None)
    return AccountState(
        active=bool(user.is_active) and (client is None or bool(client.is_active)),
        staff=bool(user.is_staff),
        client_id=str(client.id) if client is not None else None,
    )


def account_may_sign_in(user: Any) -> bool:
    """simplejwt's USER_AUTHENTICATION_RULE: an active user, of an active wallet app if any."""
    return user is not None and account_state_of(user).active


def account_state(user_id: Any) -> AccountState:
    """The account's current state: from the cache, else from the database (and cached)."""
    key = _KEY.format(user_id)
    try:
        cached = cache.get(key)
    except Exception:  # no cache: ask the database rather than trust the token
        logger.warning("account state cache unavailable; read from the database", exc_info=True)
        cached = None
    if cached is not None:
        return AccountState(**cached)
    user = get_user_model().objects.select_related("api_client").filter(pk=user_id).first()
    state = (
        AccountState(active=False, staff=False, client_id=None)
        if user is None
        else account_state_of(user)
    )
    try:
        cache.set(key, asdict(state), timeout=settings.PAYWAVE_ACCOUNT_CACHE_SECONDS)
    except Exception:
        logger.warning("account state cache unavailable; not cached", exc_info=True)
    return state


def account_state_forget(user_id: Any) -> None:
    """Drop the cached state, so the next request reads the change from the database."""
    cache.delete(_KEY.format(user_id))


def token_claims(user: Any) -> dict[str, Any]:
    """The claims PayWave adds to a user's tokens, from the database as it is now."""
    state = account_state_of(user)
    return {"client_id": state.client_id, "staff": state.staff}
