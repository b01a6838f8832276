"""Authentication for wallet apps: secret API keys, or JWTs.

`Authorization: Bearer pw_test_...` (or `pw_live_...`) is an API key
(paywave.api.keys): long-lived, rollable, revocable. Any other bearer token is a JWT.

Tokens carry the wallet app's id (`client_id`) and the staff flag, so an
authenticated request needs no database query: the hot path of a cached
`GET /payments/{id}` touches only Redis (the payment, and the account's current
state: `paywave.api.accounts`).

Refresh tokens are used once: a refresh blacklists the token it was given and
answers a new pair, its claims read from the database again.
"""

import functools
from typing import Any, Protocol, cast

from django.conf import settings
from django.contrib.auth import get_user_model
from django.utils import timezone
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework_simplejwt.authentication import JWTStatelessUserAuthentication
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.serializers import TokenObtainPairSerializer, TokenRefreshSerializer
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import RefreshToken, Token
from rest_framework_simplejwt.utils import aware_utcnow, datetime_from_epoch

from paywave.api.accounts import account_may_sign_in, account_state, token_claims
from paywave.api.keys import api_key_state, api_key_touch, looks_like_api_key
from paywave.observability.log_context import bind

NO_ACTIVE_ACCOUNT = "No active account found for the given token."


class ClientTokenObtainSerializer(TokenObtainPairSerializer):
    @classmethod
    def get_token(cls, user: Any) -> RefreshToken:
        token = super().get_token(user)
        assert isinstance(token, RefreshToken)  # the pair serializer's token_class
        for claim, value in token_claims(user).items():
            token[claim] = value
        return token


class ClientTokenRefreshSerializer(TokenRefreshSerializer):
    """A refresh token for a new pair: claims rebuilt from the database, the old token spent."""

    def validate(self, attrs: dict[str, Any]) -> dict[str, str]:
        refresh = self.token_class(attrs["refresh"])  # signature, expiry, blacklist
        user = (
            get_user_model()
            .objects.select_related("api_client")
            .filter(**{api_settings.USER_ID_FIELD: refresh.get(api_settings.USER_ID_CLAIM)})
            .first()
        )
        if not account_may_sign_in(user):
            raise exceptions.AuthenticationFailed(NO_ACTIVE_ACCOUNT, code="no_active_account")
        refresh_token_spend(refresh, user=user)
        renewed = ClientTokenObtainSerializer.get_token(user)
        return {"access": str(renewed.access_token), "refresh": str(renewed)}


def refresh_token_spend(token: RefreshToken, *, user: Any) -> None:
    """Blacklist a refresh token; refuse it if it was spent already (two refreshes at once
    included: the blacklist's unique row lets exactly one of them through)."""
    outstanding, _ = OutstandingToken.objects.get_or_create(
        jti=token[api_settings.JTI_CLAIM],
        defaults={
            "user": user,
            "token": str(token),
            "created_at": token.current_time,
            "expires_at": datetime_from_epoch(token["exp"]),
        },
    )
    _, created = BlacklistedToken.objects.get_or_create(token=outstanding)
    if not created:
        raise exceptions.AuthenticationFailed("Token is blacklisted", code="token_not_valid")


def refresh_tokens_purge_expired() -> int:
    """Forget refresh tokens past their expiry (their blacklist rows go with them)."""
    deleted, _ = OutstandingToken.objects.filter(expires_at__lte=timezone.now()).delete()
    return deleted


class ApiKeyUser:
    """The wallet app's user, as far as a request made with an API key needs one."""

    is_authenticated = True
    is_active = True
    is_staff = False

    def __init__(self, user_id: int) -> None:
        self.id = self.pk = user_id

    def __str__(self) -> str:
        return f"api-key-user:{self.pk}"


class ApiKeyAuthentication(BaseAuthentication):
    """`Authorization: Bearer pw_...`: a wallet app's secret API key, while it is usable
    and its wallet app active. Other bearer tokens are left to the JWT class after it."""

    def authenticate(self, request: Request) -> tuple[ApiKeyUser, dict[str, Any]] | None:
        scheme, _, raw = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
        raw = raw.strip()
        if scheme.lower() != "bearer" or not looks_like_api_key(raw):
            return None
        state = api_key_state(raw)
        now = timezone.now()
        if state is None or not state.usable(now):
            raise exceptions.AuthenticationFailed(
                "This API key is not valid (unknown, expired or revoked).", code="api_key_invalid"
            )
        account = account_state(state.user_id)
        if not account.active or account.client_id != state.client_id:
            raise exceptions.AuthenticationFailed(
                "This account is deactivated.", code="account_inactive"
            )
        api_key_touch(state, now)
        bind(client=state.client_id)
        claims = {"client_id": state.client_id, "staff": False, "user_id": state.user_id}
        return ApiKeyUser(state.user_id), claims

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="paywave"'


class ClientJWTAuthentication(JWTStatelessUserAuthentication):
    """A JWT whose claims still hold: its account active, its staff flag still granted."""

    www_authenticate_realm = "paywave"

    def get_validated_token(self, raw_token: bytes) -> Token:
        """simplejwt's check, done once per token in a process: a wallet app sends the same
        access token with every request until it expires, and checking its signature and
        claims was 4 % of the api's CPU per payment. A token seen before is checked for
        the one claim that changes with time, its expiry; an expired one goes through
        simplejwt's whole check again, which refuses it in its own words."""
        token = _verified_token(raw_token)
        try:
            token.check_exp(current_time=aware_utcnow())
        except TokenError:
            return super().get_validated_token(raw_token)
        return token

    def authenticate(self, request: Request) -> tuple[Any, Token] | None:
        result = super().authenticate(request)
        if result is None:
            return None
        token = result[1]
        state = account_state(token.get(api_settings.USER_ID_CLAIM))
        if not state.active:
            raise exceptions.AuthenticationFailed(
                "This account is deactivated.", code="account_inactive"
            )
        if (token.get("client_id") or None) != state.client_id or (
            token.get("staff") and not state.staff
        ):
            raise exceptions.AuthenticationFailed(
                "This token's rights have changed: get a new token.", code="token_not_valid"
            )
        if token.get("client_id"):
            bind(client=str(token["client_id"]))  # log lines name the wallet app
        return result


@functools.lru_cache(maxsize=4096)
def _verified_token(raw_token: bytes) -> Token:
    """A token that passed simplejwt's check; a refused one raises and is not kept. (The
    signing key is read at start: a new key is a new process, with nothing kept.)

    The Token is shared by every request that sends it (`request.auth`): read it, never
    change it, and check its expiry against the time of the check (its own
    `current_time` is when it was first checked)."""
    return JWTStatelessUserAuthentication().get_validated_token(raw_token)


def request_claims(request: Request) -> dict[str, Any] | Token | None:
    """The claims a request was authenticated with: an API key's (ApiKeyAuthentication
    answers a dict) or a JWT's (ClientJWTAuthentication); None when unauthenticated."""
    auth = request.auth
    if auth is None:
        return None
    assert isinstance(auth, dict | Token)  # the two DEFAULT_AUTHENTICATION_CLASSES
    return auth


def client_id_of(request: Request) -> str:
    """The authenticated wallet app's id (IsWalletApp guarantees there is one)."""
    claims = request_claims(request)
    assert claims is not None
    return str(claims["client_id"])


class IsWalletApp(BasePermission):
    message = "This endpoint is for wallet app accounts."

    def has_permission(self, request: Request, view: Any) -> bool:
        claims = request_claims(request)
        if claims is None:
            raise exceptions.NotAuthenticated()
        return bool(claims.get("client_id"))


class IsStaff(BasePermission):
    message = "This endpoint is for PayWave staff."

    def has_permission(self, request: Request, view: Any) -> bool:
        claims = request_claims(request)
        if claims is None:
            raise exceptions.NotAuthenticated()
        return bool(claims.get("staff"))


class _OTPUser(Protocol):
    def is_verified(self) -> bool: ...


class ApiDocsAccess(BasePermission):
    """Who may read the OpenAPI schema and Swagger UI (PAYWAVE_API_DOCS): anyone, or staff
    only: a staff session in the admin (verified by its TOTP code where the admin requires
    one) or a staff JWT."""

    message = "The API docs are for PayWave staff."

    def has_permission(self, request: Request, view: Any) -> bool:
        mode = settings.PAYWAVE_API_DOCS
        if mode == "public":
            return True
        if mode != "staff":
            return False
        claims = request_claims(request)
        if claims is not None:  # a JWT, its claims checked against the account
            return bool(claims.get("staff"))
        user = request.user
        if user is None or not (user.is_active and user.is_staff):
            return False
        # OTPMiddleware (settings.MIDDLEWARE) gives every request's user an is_verified().
        return not settings.PAYWAVE_ADMIN_REQUIRE_2FA or cast(_OTPUser, user).is_verified()
