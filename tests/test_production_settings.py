"""config.settings.production, loaded in a fresh interpreter with a production-like
environment: sandbox off unless asked for, HTTPS everywhere but the probes' paths, a JWT
key of its own, the API docs closed by default. Then what those values do, in process."""

import importlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import clear_url_caches

from config.dotenv import ensure_dotenv
from tests.helpers import authenticated

ROOT = Path(__file__).resolve().parent.parent
SECRET_KEY = "production-secret-key-" + "x" * 40
JWT_KEY = "production-jwt-signing-key-" + "y" * 40

READ = """
import json
from django.conf import settings
print(json.dumps({name: getattr(settings, name) for name in %r}, default=str))
"""


def production_env(**overrides: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PAYWAVE_", "DJANGO_", "STRIPE_", "MERCADOPAGO_", "GERENCIANET_"))
    }
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.production",
        DJANGO_SECRET_KEY=SECRET_KEY,
        DJANGO_ALLOWED_HOSTS="api.paywave.example.com",
        DATABASE_URL="postgres://paywave:pw@db.invalid:5432/paywave",
        REDIS_URL="redis://redis.invalid:6379/0",
        CELERY_BROKER_URL="amqp://paywave:pw@rabbitmq.invalid:5672//",
        PAYWAVE_ENCRYPTION_KEYS="I2hwCQ4xJ0F6vY0yq2wBqz1k7lF3pQmQ2Zr5pXJmG2k=",
        PAYWAVE_BLIND_INDEX_KEY="blind-index-key",
        PAYWAVE_JWT_SIGNING_KEY=JWT_KEY,
        PAYWAVE_VAR_DIR="/tmp/paywave-production-settings-test",
    )
    env.update(overrides)
    return env


def load(*names: str, **overrides: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup()\n" + READ % (names,)],
        cwd=ROOT,
        env=production_env(**overrides),
        capture_output=True,
        text=True,
        timeout=120,
    )


def production(*names: str, **overrides: str) -> dict[str, Any]:
    loaded = load(*names, **overrides)
    assert loaded.returncode == 0, loaded.stderr
    return json.loads(loaded.stdout.strip().splitlines()[-1])


def test_sandbox_is_off_without_gateway_keys_unless_asked_for() -> None:
    assert production("PAYWAVE_SANDBOX")["PAYWAVE_SANDBOX"] is False
    assert production("PAYWAVE_SANDBOX", PAYWAVE_SANDBOX="true")["PAYWAVE_SANDBOX"] is True


def test_the_production_cache_reads_json_never_pickle_as_every_other() -> None:
    """Django's Redis backend unpickles by default: whoever can write to Redis could run
    code in every process (paywave/cache/serializer.py)."""
    cache = production("CACHES")["CACHES"]["default"]

    assert cache["LOCATION"] == "redis://redis.invalid:6379/0"
    assert cache["OPTIONS"]["serializer"] == "paywave.cache.serializer.JSONSerializer"
    assert cache["BACKEND"] == "paywave.cache.backend.RedisCache"


def test_https_is_enforced_with_hsts_and_secure_cookies() -> None:
    values = production(
        "SECURE_SSL_REDIRECT",
        "SECURE_HSTS_SECONDS",
        "SECURE_HSTS_INCLUDE_SUBDOMAINS",
        "SESSION_COOKIE_SECURE",
        "CSRF_COOKIE_SECURE",
        "SECURE_PROXY_SSL_HEADER",
        "SECURE_REDIRECT_EXEMPT",
        "PAYWAVE_ADMIN_REQUIRE_2FA",
    )

    assert values["SECURE_SSL_REDIRECT"] is True
    assert values["SECURE_HSTS_SECONDS"] >= 31_536_000
    assert values["SECURE_HSTS_INCLUDE_SUBDOMAINS"] is True
    assert values["SESSION_COOKIE_SECURE"] is True
    assert values["CSRF_COOKIE_SECURE"] is True
    assert values["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]
    assert values["PAYWAVE_ADMIN_REQUIRE_2FA"] is True


@pytest.mark.django_db
def test_probes_reach_health_and_metrics_over_plain_http_and_nothing_else_does(
    settings: Any,
) -> None:
    values = production("SECURE_REDIRECT_EXEMPT", "SECURE_HSTS_SECONDS")
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_REDIRECT_EXEMPT = values["SECURE_REDIRECT_EXEMPT"]
    settings.SECURE_HSTS_SECONDS = values["SECURE_HSTS_SECONDS"]
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    probe = Client(REMOTE_ADDR="10.1.2.3")

    assert probe.get("/healthz").status_code == 200
    assert probe.get("/metrics").status_code == 200
    assert probe.get("/readyz").status_code != 301
    for path in ("/api/v1/payments", "/webhooks/stripe", "/admin/", "/healthz/x", "/readyzz"):
        answer = probe.get(path)
        assert answer.status_code == 301, path
        assert answer["Location"].startswith("https://")
    through_ingress = Client().get("/api/v1/payments", HTTP_X_FORWARDED_PROTO="https")
    assert through_ingress.status_code == 401
    assert through_ingress["Strict-Transport-Security"].startswith("max-age=31536000")


def test_the_jwt_signing_key_is_required_and_is_not_the_secret_key() -> None:
    values = production("SIMPLE_JWT", "SECRET_KEY")
    unset = load("SIMPLE_JWT", PAYWAVE_JWT_SIGNING_KEY="")
    short = load("SIMPLE_JWT", PAYWAVE_JWT_SIGNING_KEY="too-short")
    same = load("SIMPLE_JWT", PAYWAVE_JWT_SIGNING_KEY=SECRET_KEY)

    assert values["SIMPLE_JWT"]["SIGNING_KEY"] == JWT_KEY != values["SECRET_KEY"]
    for refused in (unset, short, same):
        assert refused.returncode != 0
        assert "PAYWAVE_JWT_SIGNING_KEY" in refused.stderr


def test_make_run_generates_a_jwt_signing_key_of_its_own(tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text("DJANGO_SECRET_KEY=kept\n")

    added = ensure_dotenv(dotenv)

    values = dict(line.split("=", 1) for line in dotenv.read_text().splitlines())
    assert "PAYWAVE_JWT_SIGNING_KEY" in added
    assert len(values["PAYWAVE_JWT_SIGNING_KEY"]) >= 50
    assert values["PAYWAVE_JWT_SIGNING_KEY"] != values["DJANGO_SECRET_KEY"]
    assert ensure_dotenv(dotenv) == []  # kept on the next run


def test_api_docs_default_to_staff_and_can_be_turned_off_or_public() -> None:
    assert production("PAYWAVE_API_DOCS")["PAYWAVE_API_DOCS"] == "staff"
    assert production("PAYWAVE_API_DOCS", PAYWAVE_API_DOCS="off")["PAYWAVE_API_DOCS"] == "off"
    wrong = load("PAYWAVE_API_DOCS", PAYWAVE_API_DOCS="everyone")
    assert wrong.returncode != 0
    assert "PAYWAVE_API_DOCS" in wrong.stderr


@pytest.fixture
def docs_mode(settings: Any) -> Iterator[Any]:
    """Set PAYWAVE_API_DOCS and rebuild the URL conf, as a start with it would."""
    import config.urls

    def use(mode: str) -> None:
        settings.PAYWAVE_API_DOCS = mode
        importlib.reload(config.urls)
        clear_url_caches()

    yield use
    settings.PAYWAVE_API_DOCS = "public"
    importlib.reload(config.urls)
    clear_url_caches()


@pytest.mark.django_db
def test_staff_api_docs_are_for_staff_sessions_and_staff_tokens_only(
    docs_mode: Any, settings: Any, api: Any
) -> None:
    docs_mode("staff")
    settings.PAYWAVE_ADMIN_REQUIRE_2FA = False
    staff = get_user_model().objects.create_user(username="ops-carla", is_staff=True)
    session = Client()
    session.force_login(staff)

    assert Client().get("/api/schema/").status_code in (401, 403)
    assert Client().get("/api/docs/").status_code in (401, 403)
    assert api.get("/api/schema/").status_code == 403  # a wallet app
    assert session.get("/api/schema/").status_code == 200
    assert session.get("/api/docs/").status_code == 200
    assert authenticated(staff).get("/api/schema/").status_code == 200
    settings.PAYWAVE_ADMIN_REQUIRE_2FA = True  # production: the session must be verified
    assert session.get("/api/schema/").status_code == 403


@pytest.mark.django_db
def test_api_docs_off_are_not_routed_and_public_ones_are_open(docs_mode: Any) -> None:
    docs_mode("off")
    assert Client().get("/api/schema/").status_code == 404
    assert Client().get("/api/docs/").status_code == 404

    docs_mode("public")
    assert Client().get("/api/schema/").status_code == 200
