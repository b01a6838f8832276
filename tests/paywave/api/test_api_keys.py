"""Secret API keys: `Authorization: Bearer pw_test_...`, stored hashed, several per wallet app,
rollable (the old one expires after a grace period) and revocable in the admin."""

import hashlib
import json
import re
from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from django.conf import LazySettings
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from paywave.api.keys import api_key_create, api_key_roll
from paywave.models import ApiClient, ApiKey
from paywave.services import api_client_set_active
from tests.factories import UserFactory
from tests.helpers import pix_body, post_payment

pytestmark = pytest.mark.django_db

KEY = re.compile(r"pw_test_[A-Za-z0-9_-]{43}")


def with_key(raw: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


@pytest.fixture
def staff() -> Client:
    client = Client()
    client.force_login(UserFactory(username="keys-admin", is_staff=True, is_superuser=True))
    return client


def test_create_client_prints_an_api_key_that_works_at_once() -> None:
    out = StringIO()
    call_command("create_client", "acme-wallet", stdout=out)
    printed = json.loads(out.getvalue())

    assert KEY.fullmatch(printed["api_key"])
    api = with_key(printed["api_key"])
    created = post_payment(api, pix_body(), key="k-1")
    assert created.status_code == 202
    listed = api.get("/api/v1/payments").json()
    assert [p["id"] for p in listed["results"]] == [created.json()["id"]]
    assert ApiClient.objects.get(name="acme-wallet").payments.count() == 1


def test_only_a_digest_is_kept(wallet_app: Any) -> None:
    key, raw = api_key_create(client=wallet_app, name="backend")

    assert key.digest == hashlib.sha256(raw.encode()).hexdigest()
    assert key.hint == f"{raw[:12]}...{raw[-4:]}"
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM paywave_apikey")
        stored = " ".join(str(value) for row in cursor.fetchall() for value in row)
    assert raw not in stored
    assert raw[12:-4] not in stored


def test_several_keys_each_answer_for_their_own_wallet_app(wallet_app: Any, other_api: Any) -> None:
    _, first = api_key_create(client=wallet_app)
    _, second = api_key_create(client=wallet_app)
    created = post_payment(with_key(first), pix_body(), key="k-2").json()

    assert with_key(second).get(f"/api/v1/payments/{created['id']}").status_code == 200
    assert other_api.get(f"/api/v1/payments/{created['id']}").status_code == 404


@pytest.mark.parametrize(
    "raw", ["pw_test_" + "x" * 43, "pw_live_unknown", "pw_test_"], ids=["unknown", "live", "empty"]
)
def test_an_unknown_key_is_a_401_in_the_error_shape(raw: str) -> None:
    answer = with_key(raw).get("/api/v1/payments")

    assert answer.status_code == 401
    assert answer.json()["error"]["code"] == "api_key_invalid"


def test_a_rolled_key_works_through_its_grace_then_stops(wallet_app: Any) -> None:
    old, old_raw = api_key_create(client=wallet_app)
    assert with_key(old_raw).get("/api/v1/payments").status_code == 200  # cached now

    _, new_raw = api_key_roll(key=old, grace=timedelta(hours=1))

    assert with_key(old_raw).get("/api/v1/payments").status_code == 200
    assert with_key(new_raw).get("/api/v1/payments").status_code == 200
    ApiKey.objects.filter(pk=old.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    api_key_roll(key=ApiKey.objects.get(pk=old.pk), grace=timedelta(0))  # drops the cache
    assert with_key(old_raw).get("/api/v1/payments").status_code == 401
    assert with_key(new_raw).get("/api/v1/payments").status_code == 200


def test_a_key_revoked_in_the_admin_stops_at_once(wallet_app: Any, staff: Client) -> None:
    key, raw = api_key_create(client=wallet_app)
    assert with_key(raw).get("/api/v1/payments").status_code == 200  # cached now

    staff.post("/admin/paywave/apikey/", {"action": "revoke", "_selected_action": [str(key.pk)]})

    assert ApiKey.objects.get(pk=key.pk).revoked_at is not None
    answer = with_key(raw).get("/api/v1/payments")
    assert answer.status_code == 401
    assert answer.json()["error"]["code"] == "api_key_invalid"


def test_the_admin_makes_and_rolls_keys_showing_each_once(wallet_app: Any, staff: Client) -> None:
    made = staff.post(
        "/admin/paywave/apiclient/",
        {"action": "new_api_key", "_selected_action": [str(wallet_app.pk)]},
    )
    [raw] = KEY.findall(made.content.decode())
    assert with_key(raw).get("/api/v1/payments").status_code == 200

    key = ApiKey.objects.get(digest=hashlib.sha256(raw.encode()).hexdigest())
    rolled = staff.post(
        "/admin/paywave/apikey/", {"action": "roll", "_selected_action": [str(key.pk)]}
    )
    [successor] = KEY.findall(rolled.content.decode())
    assert successor != raw
    assert with_key(successor).get("/api/v1/payments").status_code == 200
    key.refresh_from_db()
    assert key.expires_at is not None  # the grace period runs
    page = staff.get(f"/admin/paywave/apiclient/{wallet_app.pk}/change/").content.decode()
    assert key.hint in page
    assert raw not in page
    assert successor not in page


def test_a_deactivated_wallet_app_s_keys_stop(
    wallet_app: Any, django_capture_on_commit_callbacks: Any
) -> None:
    _, raw = api_key_create(client=wallet_app)
    assert with_key(raw).get("/api/v1/payments").status_code == 200

    with django_capture_on_commit_callbacks(execute=True):
        api_client_set_active(client=wallet_app, active=False)

    answer = with_key(raw).get("/api/v1/payments")
    assert answer.status_code == 401
    assert answer.json()["error"]["code"] == "account_inactive"


def test_last_use_is_recorded_at_most_once_a_minute(wallet_app: Any) -> None:
    key, raw = api_key_create(client=wallet_app)

    with_key(raw).get("/api/v1/payments")
    first = ApiKey.objects.get(pk=key.pk).last_used_at
    with_key(raw).get("/api/v1/payments")

    assert first is not None
    assert ApiKey.objects.get(pk=key.pk).last_used_at == first


def test_a_warm_key_reads_a_cached_payment_without_the_database(
    wallet_app: Any, django_assert_num_queries: Any
) -> None:
    _, raw = api_key_create(client=wallet_app)
    api = with_key(raw)
    created = post_payment(api, pix_body(), key="k-3").json()
    api.get(f"/api/v1/payments/{created['id']}")  # the key, its account and its use: cached

    with django_assert_num_queries(0):
        answer = api.get(f"/api/v1/payments/{created['id']}")

    assert answer.json()["id"] == created["id"]


def test_live_keys_outside_the_sandbox(wallet_app: Any, settings: LazySettings) -> None:
    settings.PAYWAVE_SANDBOX = False

    _, raw = api_key_create(client=wallet_app)

    assert raw.startswith("pw_live_")
    assert with_key(raw).get("/api/v1/payments").status_code == 200
