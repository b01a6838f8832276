from typing import Any

import pytest
from django.test import Client

from paywave.observability import health


def test_healthz_answers_without_services() -> None:
    response = Client().get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.django_db
def test_readyz_checks_database_cache_and_broker() -> None:
    response = Client().get("/readyz")

    assert response.status_code == 200
    assert response.json()["checks"] == {"database": "ok", "cache": "ok", "broker": "ok"}


@pytest.mark.django_db
def test_readyz_is_503_naming_what_is_down(monkeypatch: pytest.MonkeyPatch) -> None:
    def broker_down() -> None:
        raise ConnectionRefusedError("connection refused")

    monkeypatch.setitem(health.CHECKS, "broker", broker_down)

    response = Client().get("/readyz")

    assert response.status_code == 503
    assert response.json()["unavailable"] == ["broker"]
    assert response.json()["checks"]["database"] == "ok"


@pytest.mark.services
@pytest.mark.django_db
def test_readyz_reaches_a_real_broker_and_notices_a_dead_one(monkeypatch: Any) -> None:
    health._check_broker()  # the real RabbitMQ answers

    monkeypatch.setenv("CELERY_BROKER_URL", "amqp://guest:guest@127.0.0.1:1//")
    from celery import Celery

    monkeypatch.setattr(health, "celery_app", Celery("dead-broker"))
    with pytest.raises(Exception, match=r"refused|111"):
        health._check_broker()


def test_openapi_schema_and_docs_are_served() -> None:
    schema = Client().get("/api/schema/?format=json")
    docs = Client().get("/api/docs/")

    assert schema.status_code == 200
    paths = schema.json()["paths"]
    for path in (
        "/api/v1/auth/token",
        "/api/v1/auth/token/refresh",
        "/api/v1/payments",
        "/api/v1/payments/{payment_id}",
        "/api/v1/payments/{payment_id}/cancel",
        "/api/v1/payments/{payment_id}/qrcode.png",
    ):
        assert path in paths
    create = paths["/api/v1/payments"]["post"]
    assert {"202", "400", "401", "409", "413", "415", "422", "429"} <= set(create["responses"])
    assert any(p["name"] == "Idempotency-Key" and p["required"] for p in create["parameters"])
    assert docs.status_code == 200
