"""Helpers for building requests in tests, for comparing the rows they make, and for
reading the jobs they publish."""

import time
from typing import Any

from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from paywave.api.auth import ClientTokenObtainSerializer


def token_for(user: Any) -> str:
    token: RefreshToken = ClientTokenObtainSerializer.get_token(user)
    return str(token.access_token)


def authenticated(user: Any) -> APIClient:
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token_for(user)}")
    return api


def pix_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "amount": 1050,
        "currency": "BRL",
        "method": "pix",
        "payer": {
            "name": "Ana Souza",
            "email": "ana@example.com",
            "tax_id": "123.456.789-09",
            "country": "BR",
        },
        "description": "Top-up",
        "metadata": {"order": "A-1"},
    }
    body.update(overrides)
    return body


def card_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "amount": 2500,
        "currency": "USD",
        "method": "card",
        "payer": {"name": "John Doe", "email": "john@example.com", "country": "US"},
        "card": {"token": "pm_card_visa"},
    }
    body.update(overrides)
    return body


def paypal_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "amount": 1999,
        "currency": "USD",
        "method": "paypal",
        "payer": {"name": "John Doe", "email": "john@example.com", "country": "US"},
        "return_url": "https://wallet.example/paypal/done",
    }
    body.update(overrides)
    return body


def post_payment(api: APIClient, body: dict[str, Any], key: str | None = "key-1", **extra: Any):
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key is not None else {}
    return api.post("/api/v1/payments", body, format="json", **headers, **extra)


def column_values(instance: Any, *, typed: bool = True) -> dict[str, Any]:
    """Each column's attribute of a model instance, with its type unless `typed` is False:
    two reads of a row compare equal only if they agree on both (a str where the ORM gives
    a UUID differs). Untyped, an instance as built compares with its row read back (an
    enum member equals the str the database gives back)."""
    return {
        field.attname: (
            (type(getattr(instance, field.attname)), getattr(instance, field.attname))
            if typed
            else getattr(instance, field.attname)
        )
        for field in instance._meta.concrete_fields
    }


def prepared_statements() -> list[str]:
    """The text of each statement the default connection's session has prepared."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        return [row[0] for row in cursor.fetchall()]


def queued_messages(bound: Any, timeout: float = 3.0) -> list[Any]:
    """Every message in a bound broker queue, acknowledged: taken until it has stayed
    empty for 0.3 s after the first, or `timeout` with none."""
    messages: list[Any] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        message = bound.get(no_ack=False)
        if message is None:
            if messages:
                deadline = min(deadline, time.monotonic() + 0.3)
            time.sleep(0.05)
            continue
        messages.append(message)
        message.ack()
    return messages
