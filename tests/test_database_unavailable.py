"""PostgreSQL refusing connections: 503 service_unavailable with Retry-After, never a 500.

The refusals are real: a role with CONNECTION LIMIT 0 (what "too many clients" looks
like to a request) and a port where no PostgreSQL listens (the database down).
"""

import json
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from django.db import DatabaseError, connection, connections
from django.test import Client

from payments.models import Payment
from paywave.api.errors import database_unavailable
from tests.factories import ApiClientFactory
from tests.helpers import authenticated, pix_body, post_payment

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _postgresql_only() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("the refusals are PostgreSQL's")


@contextmanager
def database_refusing(**settings: Any) -> Iterator[None]:
    """Requests on this thread connect with `settings` (a role, a port) until the end."""
    default = connections["default"]
    saved = dict(default.settings_dict)
    default.close()
    default.settings_dict.update(settings)
    try:
        yield
    finally:
        default.close()
        default.settings_dict.clear()
        default.settings_dict.update(saved)


@pytest.fixture
def role_at_its_connection_limit() -> Iterator[str]:
    """A login role allowed no connection at all: PostgreSQL answers "too many connections"."""
    role = f"paywave_refused_{uuid.uuid4().hex[:12]}"
    with connection.cursor() as cursor:
        cursor.execute(f'CREATE ROLE "{role}" LOGIN CONNECTION LIMIT 0')
    yield role
    with connection.cursor() as cursor:
        cursor.execute(f'DROP ROLE IF EXISTS "{role}"')


@pytest.fixture
def closed_port() -> int:
    """A local port nothing listens on: a PostgreSQL that is down."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def assert_unavailable(response: Any) -> None:
    assert response.status_code == 503, response.content
    assert response["Content-Type"].startswith("application/json")
    assert int(response["Retry-After"]) > 0
    error = json.loads(response.content)["error"]
    assert set(error) == {"type", "code", "message", "fields"}
    assert (error["type"], error["code"]) == ("api_error", "service_unavailable")
    assert error["fields"] == {}
    assert "Idempotency-Key" in error["message"]


def test_too_many_connections_is_a_503_and_the_same_key_succeeds_later(
    role_at_its_connection_limit: str,
) -> None:
    api = authenticated(ApiClientFactory().user)

    with database_refusing(USER=role_at_its_connection_limit):
        refused = post_payment(api, pix_body(), key="order-503")

    assert_unavailable(refused)
    accepted = post_payment(api, pix_body(), key="order-503")
    assert accepted.status_code == 202, accepted.content
    assert Payment.objects.count() == 1


def test_a_database_that_is_down_is_a_503(closed_port: int) -> None:
    api = authenticated(ApiClientFactory().user)

    with database_refusing(HOST="127.0.0.1", PORT=closed_port):
        refused = post_payment(api, pix_body(), key="order-down")

    assert_unavailable(refused)
    assert post_payment(api, pix_body(), key="order-down").status_code == 202


def test_a_gateway_callback_is_a_503_too_so_the_gateway_sends_it_again(
    role_at_its_connection_limit: str,
) -> None:
    """Plain Django views (not DRF) go through handler500: it answers 503 as well."""
    with database_refusing(USER=role_at_its_connection_limit):
        response = Client(raise_request_exception=False).post(
            "/webhooks/gerencianet?hmac=x", b"{}", content_type="application/json"
        )

    assert_unavailable(response)


def test_an_error_of_the_query_itself_is_not_mistaken_for_an_outage() -> None:
    with pytest.raises(DatabaseError) as raised, connection.cursor() as cursor:
        cursor.execute("SELECT 1 / 0")

    assert not database_unavailable(raised.value)
