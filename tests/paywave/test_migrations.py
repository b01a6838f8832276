"""Upgrading: events and stored answers written in clear by the previous release are
encrypted by the migration that makes their columns encrypted."""

import json
from typing import Any

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from notifications.models import Event
from paywave.encryption import crypto
from paywave.models import IdempotencyKey
from tests.factories import ApiClientFactory

BEFORE = [("notifications", "0002_webhooks"), ("paywave", "0002_api_client_is_active")]
DOCUMENT = {"id": "p1", "payer": {"name": "Ana Souza", "email": "ana@example.com"}}


def _migrate(targets: list[tuple[str, str]] | None) -> None:
    executor = MigrationExecutor(connection)
    executor.migrate(targets or executor.loader.graph.leaf_nodes())


@pytest.mark.django_db(transaction=True)
def test_the_migration_encrypts_events_and_stored_answers_written_in_clear() -> None:
    client = ApiClientFactory()
    _migrate(BEFORE)
    try:
        client_id: Any = client.pk if connection.vendor == "postgresql" else client.pk.hex
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO notifications_event (type, client_id, subject_id, data, created_at)"
                " VALUES ('payment.succeeded', %s, %s, %s, CURRENT_TIMESTAMP)",
                [client_id, client_id, json.dumps(DOCUMENT)],
            )
            cursor.execute(
                "INSERT INTO paywave_idempotencykey (client_id, key, fingerprint, state,"
                " locked_at, expires_at, response_status, response_body, response_headers)"
                " VALUES (%s, 'k1', 'f', 'completed', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP,"
                " 202, %s, '{}')",
                [client_id, json.dumps(DOCUMENT)],
            )
    finally:
        _migrate(None)

    with connection.cursor() as cursor:
        cursor.execute("SELECT data FROM notifications_event")
        [(event_data,)] = cursor.fetchall()
        cursor.execute("SELECT response_body FROM paywave_idempotencykey")
        [(answer,)] = cursor.fetchall()
    for stored in (event_data, answer):
        assert crypto.is_ciphertext(stored)
        assert "Ana Souza" not in stored
    assert Event.objects.get().data == DOCUMENT
    assert IdempotencyKey.objects.get().response_body == DOCUMENT
