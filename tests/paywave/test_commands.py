import json
from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from paywave.management.commands.seed_demo import DEMO_API_KEY
from paywave.models import ApiClient, ApiKey

pytestmark = pytest.mark.django_db


def test_create_client_prints_credentials_that_log_in() -> None:
    out = StringIO()

    call_command("create_client", "acme-wallet", stdout=out)

    credentials = json.loads(out.getvalue())
    assert credentials["username"] == "acme-wallet"
    assert len(credentials["password"]) >= 24
    assert credentials["api_key"].startswith("pw_test_")
    assert ApiClient.objects.filter(name="acme-wallet").exists()
    login = {"username": credentials["username"], "password": credentials["password"]}
    response = APIClient().post("/api/v1/auth/token", login, format="json")
    assert response.status_code == 200
    assert {"access", "refresh"} <= set(response.json())


def test_create_client_refuses_a_taken_name() -> None:
    call_command("create_client", "acme", stdout=StringIO())

    with pytest.raises(CommandError, match="already exists"):
        call_command("create_client", "acme", stdout=StringIO())


def test_seed_demo_is_idempotent_and_sandbox_only(settings: Any) -> None:
    settings.PAYWAVE_SANDBOX = True
    call_command("seed_demo", stdout=StringIO())
    call_command("seed_demo", stdout=StringIO())

    assert ApiClient.objects.filter(name="demo").count() == 1
    token = APIClient().post(
        "/api/v1/auth/token", {"username": "demo", "password": "demo"}, format="json"
    )
    assert token.status_code == 200
    demo_key = APIClient()
    demo_key.credentials(HTTP_AUTHORIZATION=f"Bearer {DEMO_API_KEY}")
    assert demo_key.get("/api/v1/payments").status_code == 200  # the key make run prints
    assert ApiKey.objects.filter(client__name="demo").count() == 1

    settings.PAYWAVE_SANDBOX = False
    with pytest.raises(CommandError, match="sandbox"):
        call_command("seed_demo", stdout=StringIO())
    out = StringIO()
    call_command("seed_demo", "--if-sandbox", stdout=out)
    assert "sandbox mode is off" in out.getvalue()
