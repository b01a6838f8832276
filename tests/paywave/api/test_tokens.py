"""Tokens carry no more rights than the account has now: refresh rebuilds the claims,
refresh tokens are used once, and a deactivated wallet app's tokens stop working."""

import time
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.request import Request
from rest_framework.test import APIClient
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import AccessToken

from paywave.api import accounts
from paywave.api.auth import ClientJWTAuthentication
from paywave.observability.log_context import log_context
from paywave.services import api_client_set_active
from paywave.tasks import purge_expired_refresh_tokens
from tests.factories import ApiClientFactory

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery staple"


def obtain(username: str) -> dict[str, str]:
    response = APIClient().post(
        "/api/v1/auth/token", {"username": username, "password": PASSWORD}, format="json"
    )
    assert response.status_code == 200, response.content
    return response.json()


def refresh(token: str) -> Any:
    return APIClient().post("/api/v1/auth/token/refresh", {"refresh": token}, format="json")


def bearer(access: str) -> APIClient:
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
    return api


@pytest.fixture
def staff_user() -> Any:
    return get_user_model().objects.create_user(
        username="ops-anna", password=PASSWORD, is_staff=True
    )


@pytest.fixture
def wallet_app() -> Any:
    return ApiClientFactory(user__username="acme", user__password=PASSWORD)


def test_a_demoted_staff_user_gets_no_staff_claim_on_refresh(staff_user: Any) -> None:
    pair = obtain("ops-anna")
    assert bearer(pair["access"]).get("/api/v1/gateways").status_code == 200
    get_user_model().objects.filter(pk=staff_user.pk).update(is_staff=False)  # no signal

    renewed = refresh(pair["refresh"])

    assert renewed.status_code == 200
    assert AccessToken(renewed.json()["access"])["staff"] is False
    cache.clear()  # the cached state of the account has expired
    assert bearer(renewed.json()["access"]).get("/api/v1/gateways").status_code == 403


def test_a_demoted_staff_users_old_access_token_stops_at_once_when_staff_edit_the_user(
    staff_user: Any, django_capture_on_commit_callbacks: Any
) -> None:
    access = obtain("ops-anna")["access"]
    assert bearer(access).get("/api/v1/gateways").status_code == 200

    with django_capture_on_commit_callbacks(execute=True):
        staff_user.is_staff = False
        staff_user.save()  # as Django's user admin does

    answer = bearer(access).get("/api/v1/gateways")
    assert answer.status_code == 401
    assert answer.json()["error"]["type"] == "authentication_error"


def test_refresh_is_refused_for_an_inactive_user_or_a_deactivated_wallet_app(
    wallet_app: Any,
) -> None:
    first, second = obtain("acme"), obtain("acme")

    api_client_set_active(client=wallet_app, active=False)
    refused_client = refresh(first["refresh"])
    api_client_set_active(client=wallet_app, active=True)
    get_user_model().objects.filter(pk=wallet_app.user_id).update(is_active=False)
    refused_user = refresh(second["refresh"])

    assert refused_client.status_code == 401
    assert refused_user.status_code == 401
    assert refused_client.json()["error"]["type"] == "authentication_error"


def test_a_deactivated_wallet_app_cannot_get_a_token(wallet_app: Any) -> None:
    api_client_set_active(client=wallet_app, active=False)

    response = APIClient().post(
        "/api/v1/auth/token", {"username": "acme", "password": PASSWORD}, format="json"
    )

    assert response.status_code == 401


def test_refresh_rotates_and_a_spent_refresh_token_is_refused(wallet_app: Any) -> None:
    pair = obtain("acme")

    renewed = refresh(pair["refresh"])
    replayed = refresh(pair["refresh"])
    next_one = refresh(renewed.json()["refresh"])

    assert renewed.status_code == 200
    assert set(renewed.json()) == {"access", "refresh"}
    assert renewed.json()["refresh"] != pair["refresh"]
    assert AccessToken(renewed.json()["access"])["client_id"] == str(wallet_app.id)
    assert replayed.status_code == 401
    assert next_one.status_code == 200
    assert BlacklistedToken.objects.count() == 2


def test_expired_refresh_tokens_are_purged_with_their_blacklist_rows(wallet_app: Any) -> None:
    pair = obtain("acme")
    refresh(pair["refresh"])  # blacklists the first
    OutstandingToken.objects.filter(blacklistedtoken__isnull=False).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )

    purged = purge_expired_refresh_tokens.apply().get()

    assert purged >= 1
    assert BlacklistedToken.objects.count() == 0
    assert OutstandingToken.objects.count() == 1  # the live one


def test_the_purge_runs_on_beat() -> None:
    from django.conf import settings

    tasks = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert "paywave.purge_expired_refresh_tokens" in tasks


def test_a_deactivated_wallet_apps_access_token_stops_working_at_once(wallet_app: Any) -> None:
    api = bearer(obtain("acme")["access"])
    assert api.get("/api/v1/payments").status_code == 200

    with_commit = api_client_set_active(client=wallet_app, active=False)
    accounts.account_state_forget(wallet_app.user_id)  # what the commit does (test transaction)

    answer = api.get("/api/v1/payments")
    assert with_commit is True
    assert answer.status_code == 401
    assert answer.json()["error"]["code"] == "account_inactive"


def test_a_wallet_app_disabled_behind_the_cache_loses_access_within_the_cache_time(
    wallet_app: Any, settings: Any
) -> None:
    settings.PAYWAVE_ACCOUNT_CACHE_SECONDS = 1
    api = bearer(obtain("acme")["access"])
    assert api.get("/api/v1/payments").status_code == 200
    type(wallet_app).objects.filter(pk=wallet_app.pk).update(is_active=False)  # no service

    still_cached = api.get("/api/v1/payments").status_code
    time.sleep(1.2)
    expired = api.get("/api/v1/payments").status_code

    assert (still_cached, expired) == (200, 401)


def test_the_default_cache_time_is_at_most_a_minute() -> None:
    from config.settings import base

    assert 0 < base.PAYWAVE_ACCOUNT_CACHE_SECONDS <= 60


def test_the_account_check_costs_one_cache_read_and_no_query_when_warm(
    wallet_app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    access = obtain("acme")["access"]
    bearer(access).get("/api/v1/payments")  # warms the account's state
    reads: list[str] = []
    real_get = accounts.cache.get
    monkeypatch.setattr(accounts.cache, "get", lambda key, *a: reads.append(key) or real_get(key))
    request = APIClient().get("/", HTTP_AUTHORIZATION=f"Bearer {access}").wsgi_request

    with log_context(), CaptureQueriesContext(connection) as queries:  # as a request is
        _, token = ClientJWTAuthentication().authenticate(Request(request))

    assert token["client_id"] == str(wallet_app.id)
    assert len(queries) == 0
    assert len(reads) == 1


@pytest.mark.parametrize(
    "credentials",
    [
        {"password": f" {PASSWORD}"},
        {"password": " "},
        {"username": "app "},
    ],
)
def test_credentials_are_compared_as_sent(credentials: dict[str, str]) -> None:
    """Not trimmed: " secret" is a wrong password (401), and " " a wrong one, not blank."""
    ApiClientFactory(user__username="app", user__password=PASSWORD)
    body = {"username": "app", "password": PASSWORD, **credentials}

    response = APIClient().post("/api/v1/auth/token", body, format="json")

    assert response.status_code == 401, response.content
    assert response.json()["error"]["code"] == "no_active_account"


def test_a_blank_refresh_token_is_an_invalid_one() -> None:
    response = refresh(" ")

    assert response.status_code == 401, response.content


def test_token_bodies_take_no_other_field() -> None:
    ApiClientFactory(user__username="app", user__password=PASSWORD)

    response = APIClient().post(
        "/api/v1/auth/token",
        {"username": "app", "password": PASSWORD, "scope": "admin"},
        format="json",
    )

    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"scope": "Unknown field."}


@pytest.fixture
def verified_tokens_forgotten() -> Any:
    from paywave.api import auth

    verified = getattr(auth, "_verified_token", None)
    if verified is not None:
        verified.cache_clear()
    yield
    if verified is not None:
        verified.cache_clear()


def test_a_token_is_checked_once_then_for_its_expiry_only(
    wallet_app: Any, verified_tokens_forgotten: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its signature and claims once per process (4 % of the api's CPU per payment)."""
    from rest_framework_simplejwt.backends import TokenBackend

    api = bearer(obtain("acme")["access"])
    decoded: list[Any] = []
    real_decode = TokenBackend.decode
    monkeypatch.setattr(
        TokenBackend,
        "decode",
        lambda self, *a, **k: decoded.append(a) or real_decode(self, *a, **k),
    )

    answers = [api.get("/api/v1/payments").status_code for _ in range(3)]

    assert answers == [200, 200, 200]
    assert len(decoded) == 1


def test_a_token_seen_before_is_refused_once_it_expires_as_any_expired_token_is(
    wallet_app: Any, verified_tokens_forgotten: Any
) -> None:
    from paywave.api.accounts import token_claims

    def access_token(lifetime: timedelta) -> str:
        token = AccessToken.for_user(wallet_app.user)
        for claim, value in token_claims(wallet_app.user).items():
            token[claim] = value
        token.set_exp(lifetime=lifetime)
        return str(token)

    api = bearer(access_token(timedelta(seconds=1)))
    assert api.get("/api/v1/payments").status_code == 200
    time.sleep(1.2)

    seen_before = api.get("/api/v1/payments")
    never_seen = bearer(access_token(timedelta(seconds=-5))).get("/api/v1/payments")

    assert seen_before.status_code == never_seen.status_code == 401
    assert seen_before.json()["error"] == never_seen.json()["error"]
