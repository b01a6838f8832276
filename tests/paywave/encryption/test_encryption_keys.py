"""Key rotation over every encrypted column, the key report, and the startup key check.

Stored values are read raw with SQL: what a key id prefix says is what the database holds.
"""

import json
from collections.abc import Iterator
from dataclasses import dataclass
from io import StringIO
from typing import Any

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command, load_command_class
from django.core.management.base import SystemCheckError
from django.db import connection
from django.test.utils import CaptureQueriesContext

from gateways.models import CallbackStatus, GatewayCallback
from notifications.models import Event, WebhookEndpoint
from payments.models import AttemptOutcome, Dispute, OrphanCharge, Payment, PaymentAttempt
from paywave.encryption import crypto
from paywave.encryption.checks import (
    check_encryption_keys_in_use,
    check_key_id_indexes,
    refuse_to_start_on_errors,
)
from paywave.encryption.columns import DISTINCT_PREFIXES, encrypted_columns
from paywave.encryption.fields import key_id_index
from paywave.models import IdempotencyKey
from tests.factories import ApiClientFactory, PaymentFactory, WebhookEndpointFactory

pytestmark = pytest.mark.django_db

# Every encrypted column, found by the registry walk (none of them is listed in the code).
ALL_COLUMNS = {
    "payments.Payment.payer_name",
    "payments.Payment.payer_email",
    "payments.Payment.payer_tax_id",
    "payments.PaymentAttempt.charge_params",
    "payments.OrphanCharge.charge_params",
    "payments.Dispute.evidence_text",
    "gateways.GatewayCallback.body",
    "notifications.WebhookEndpoint.secret",
    "notifications.Event.data",
    "paywave.IdempotencyKey.response_body",
}


@dataclass
class Keys:
    old: str
    new: str
    settings: Any

    def use(self, *keys: str) -> None:
        self.settings.PAYWAVE_ENCRYPTION_KEYS = list(keys)


@pytest.fixture
def keys(settings: Any) -> Keys:
    return Keys(
        old=settings.PAYWAVE_ENCRYPTION_KEYS[0],
        new=Fernet.generate_key().decode(),
        settings=settings,
    )


@dataclass(frozen=True)
class Stored:
    """One row in each model with encrypted columns, and what each column should read."""

    payment: Payment
    attempt: PaymentAttempt
    orphan: OrphanCharge
    dispute: Dispute
    callback: GatewayCallback
    endpoint: WebhookEndpoint
    event: Event
    idempotency_key: IdempotencyKey

    def read_back(self) -> dict[str, Any]:
        payment = Payment.objects.get(pk=self.payment.pk)
        return {
            "payer": (payment.payer_name, payment.payer_email, payment.payer_tax_id),
            "charge": PaymentAttempt.objects.get(pk=self.attempt.pk).charge_params,
            "orphan": OrphanCharge.objects.get(pk=self.orphan.pk).charge_params,
            "evidence": Dispute.objects.get(pk=self.dispute.pk).evidence_text,
            "callback": GatewayCallback.objects.get(pk=self.callback.pk).body,
            "secret": WebhookEndpoint.objects.get(pk=self.endpoint.pk).secret,
            "event": Event.objects.get(pk=self.event.pk).data,
            "replay": IdempotencyKey.objects.get(pk=self.idempotency_key.pk).response_body,
        }


EXPECTED = {
    "payer": ("Ana Souza", "ana@example.com", "12345678909"),
    "charge": '{"payer": {"name": "Ana Souza"}}',
    "orphan": '{"payer": {"tax_id": "12345678909"}}',
    "evidence": "Delivered to Ana Souza, ana@example.com",
    "callback": '{"payer": {"email": "ana@example.com"}}',
    "secret": "whsec_kept_secret",
    "event": {"id": "e1", "payer": {"name": "Ana Souza"}},
    "replay": {"id": "p1", "payer": {"email": "ana@example.com"}},
}


def store_one_of_each() -> Stored:
    payment = PaymentFactory(payer_email="ana@example.com", payer_tax_id="12345678909")
    return Stored(
        payment=payment,
        attempt=PaymentAttempt.objects.create(
            payment=payment,
            gateway="mercadopago",
            number=1,
            idempotency_key="k",
            outcome=AttemptOutcome.SUCCEEDED,
            charge_params=EXPECTED["charge"],
        ),
        orphan=OrphanCharge.objects.create(
            payment=payment,
            gateway="gerencianet",
            idempotency_key="k",
            reason="test",
            expires_at=payment.created_at,
            charge_params=EXPECTED["orphan"],
        ),
        dispute=Dispute.objects.create(
            payment=payment,
            gateway="stripe",
            reference=f"dp_{payment.pk}",
            kind="chargeback",
            status="under_review",
            amount=100,
            currency="BRL",
            evidence_text=EXPECTED["evidence"],
        ),
        callback=GatewayCallback.objects.create(
            gateway="mercadopago", status=CallbackStatus.RECEIVED, body=EXPECTED["callback"]
        ),
        endpoint=WebhookEndpointFactory(client=payment.client, secret=EXPECTED["secret"]),
        event=Event.objects.create(
            type="payment.succeeded",
            client=payment.client,
            subject_id=payment.id,
            data=EXPECTED["event"],
        ),
        idempotency_key=IdempotencyKey.objects.create(
            client=payment.client,
            key="k1",
            fingerprint="f" * 64,
            state=IdempotencyKey.State.COMPLETED,
            locked_at=payment.created_at,
            expires_at=payment.created_at,
            response_status=202,
            response_body=EXPECTED["replay"],
        ),
    )


def raw_values() -> Iterator[tuple[str, str]]:
    """(column label, stored text) of every non-empty encrypted value in the database."""
    for column in encrypted_columns():
        quote = connection.ops.quote_name
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT {quote(column.field.column)} FROM {quote(column.table)} "  # noqa: S608
                f"WHERE {quote(column.field.column)} <> ''"
            )
            for (value,) in cursor.fetchall():
                yield column.label, value


def report(*args: str) -> dict[str, Any]:
    out = StringIO()
    call_command("encryption_keys_report", "--json", *args, stdout=out)
    return json.loads(out.getvalue())


def error_ids(messages: list[Any]) -> list[str]:
    return sorted(message.id for message in messages if message.is_serious())


def test_every_encrypted_column_of_every_model_is_found() -> None:
    assert {column.label for column in encrypted_columns()} == ALL_COLUMNS
    assert all(column.has_key_id_index() for column in encrypted_columns())


def test_stored_values_name_their_key() -> None:
    store_one_of_each()
    current = crypto.configured_key_ids()[0]

    found = dict(raw_values())

    assert set(found) == ALL_COLUMNS
    assert all(value.startswith(current + ":") for _, value in raw_values())


def test_rotation_moves_every_column_of_every_model_to_the_new_key(keys: Keys) -> None:
    stored = store_one_of_each()
    keys.use(keys.new, keys.old)
    out = StringIO()

    call_command("rotate_encryption_keys", stdout=out)

    new_id = crypto.key_id(keys.new)
    labels_seen = set()
    for label, value in raw_values():
        labels_seen.add(label)
        assert crypto.stored_key_id(value) == new_id, label
        Fernet(keys.new.encode()).decrypt(value[crypto.KEY_PREFIX_LENGTH :])
    assert labels_seen == ALL_COLUMNS
    keys.use(keys.new)  # the old key is gone: everything still reads
    assert stored.read_back() == EXPECTED
    assert "notifications.WebhookEndpoint.secret: 1 values re-encrypted" in out.getvalue()


def test_rotation_again_rewrites_nothing(keys: Keys) -> None:
    store_one_of_each()
    keys.use(keys.new, keys.old)
    call_command("rotate_encryption_keys", stdout=StringIO())
    before = sorted(raw_values())

    out = StringIO()
    call_command("rotate_encryption_keys", stdout=out)

    assert sorted(raw_values()) == before
    assert out.getvalue().count(": 0 values re-encrypted") == len(ALL_COLUMNS)


def test_values_written_before_key_ids_are_read_rotated_and_reported(keys: Keys) -> None:
    stored = store_one_of_each()
    legacy_name = Fernet(keys.old.encode()).encrypt(b"Ana Souza").decode()
    with connection.cursor() as cursor:  # as a release before key ids wrote it (one payment)
        cursor.execute("UPDATE payments_payment SET payer_name = %s", [legacy_name])

    assert stored.read_back() == EXPECTED
    assert report()["columns"]["payments.Payment.payer_name"] == {"no key id": 1}

    keys.use(keys.new, keys.old)
    call_command("rotate_encryption_keys", stdout=StringIO())
    keys.use(keys.new)
    assert report()["columns"]["payments.Payment.payer_name"] == {crypto.key_id(keys.new): 1}
    assert stored.read_back() == EXPECTED


def test_the_report_counts_values_per_key_per_column(keys: Keys) -> None:
    client = ApiClientFactory()
    PaymentFactory.create_batch(2, client=client, payer_email="ana@example.com")
    PaymentFactory(client=client, payer_email="")  # no e-mail: nothing stored to count
    WebhookEndpointFactory(client=client)
    keys.use(keys.new, keys.old)
    PaymentFactory(client=client, payer_email="bob@example.com")
    old_id, new_id = crypto.key_id(keys.old), crypto.key_id(keys.new)

    document = report()

    assert document["configured"] == [new_id, old_id]
    columns = document["columns"]
    assert set(columns) == ALL_COLUMNS
    assert columns["payments.Payment.payer_name"] == {old_id: 3, new_id: 1}
    assert columns["payments.Payment.payer_email"] == {old_id: 2, new_id: 1}
    assert columns["payments.Payment.payer_tax_id"] == {old_id: 3, new_id: 1}
    assert columns["notifications.WebhookEndpoint.secret"] == {old_id: 1}
    assert columns["gateways.GatewayCallback.body"] == {}

    text = StringIO()
    call_command("encryption_keys_report", stdout=text)
    assert f"key {new_id} (newest, encrypts): 3 values" in text.getvalue()
    assert f"key {old_id} (decrypts only): 9 values" in text.getvalue()


def test_the_check_fails_when_a_key_in_use_is_removed_and_passes_after_rotation(
    keys: Keys,
) -> None:
    stored = store_one_of_each()
    call_command("check", stdout=StringIO())

    keys.use(keys.new)  # the old key dropped before rotating: every column is unreadable
    with pytest.raises(SystemCheckError) as failed:
        call_command("check", stdout=StringIO())
    for label in ALL_COLUMNS:
        assert f"{label} has values encrypted with key id(s) {crypto.key_id(keys.old)}" in str(
            failed.value
        )
    with pytest.raises(SystemCheckError):
        refuse_to_start_on_errors()  # what gunicorn (config/wsgi.py) and workers run
    # The report still runs as from the command line (where a command runs the checks
    # first unless it opts out): it is how to see what uses the old key.
    command = load_command_class("paywave", "encryption_keys_report")
    options = command.create_parser("manage.py", "encryption_keys_report").parse_args(["--json"])
    out = StringIO()
    command.execute(**vars(options), stdout=out)
    assert json.loads(out.getvalue())["columns"]["notifications.Event.data"] == {
        crypto.key_id(keys.old): 1
    }

    keys.use(keys.new, keys.old)
    call_command("rotate_encryption_keys", stdout=StringIO())
    keys.use(keys.new)
    call_command("check", stdout=StringIO())
    refuse_to_start_on_errors()
    assert stored.read_back() == EXPECTED


def test_the_check_samples_values_without_a_key_id(keys: Keys) -> None:
    PaymentFactory()
    legacy = Fernet(keys.old.encode()).encrypt(b"Ana Souza").decode()
    with connection.cursor() as cursor:  # as a release before key ids wrote it (one payment)
        cursor.execute("UPDATE payments_payment SET payer_name = %s", [legacy])

    assert [message.id for message in check_encryption_keys_in_use()] == ["paywave.W001"]

    keys.use(keys.new)
    assert "paywave.E002" in error_ids(check_encryption_keys_in_use())


def test_events_an_older_release_wrote_in_clear_are_read_reported_and_encrypted() -> None:
    stored = store_one_of_each()
    with connection.cursor() as cursor:  # as a release before encrypted events wrote it
        cursor.execute("UPDATE notifications_event SET data = %s", ['{"id": "e1", "n": 1}'])

    assert Event.objects.get(pk=stored.event.pk).data == {"id": "e1", "n": 1}
    assert [message.id for message in check_encryption_keys_in_use()] == ["paywave.W002"]
    assert report()["columns"]["notifications.Event.data"] == {"not encrypted": 1}

    call_command("rotate_encryption_keys", stdout=StringIO())

    assert check_encryption_keys_in_use() == []
    assert Event.objects.get(pk=stored.event.pk).data == {"id": "e1", "n": 1}
    assert all('"n"' not in value for _, value in raw_values())


def test_the_check_refuses_values_that_are_not_ciphertext() -> None:
    payment = PaymentFactory()
    with connection.cursor() as cursor:
        cursor.execute("UPDATE payments_payment SET payer_email = 'ana@example.com'")

    assert error_ids(check_encryption_keys_in_use()) == ["paywave.E003"]
    assert Payment.objects.filter(pk=payment.pk).exists()


def test_the_check_costs_one_bounded_query_per_column() -> None:
    for _ in range(3):
        store_one_of_each()

    with CaptureQueriesContext(connection) as queries:
        assert check_encryption_keys_in_use() == []

    # The table list, then one loose index scan per column (savepoints aside).
    scans = [q["sql"] for q in queries.captured_queries if "WITH RECURSIVE" in q["sql"]]
    assert len(scans) == len(ALL_COLUMNS)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's planner")
def test_the_key_scan_of_every_column_goes_through_its_key_id_index() -> None:
    for column in encrypted_columns():
        [index] = [
            index
            for index in column.model._meta.indexes
            if index == key_id_index(column.field.name, name=index.name)
        ]
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL enable_seqscan = off")  # tiny tables: show it can
            cursor.execute("EXPLAIN " + column.sql(DISTINCT_PREFIXES), [64])
            plan = "\n".join(row[0] for row in cursor.fetchall())
        assert f"Index Scan using {index.name}" in plan, (column.label, plan)
        assert "Seq Scan" not in plan, (column.label, plan)


def test_an_encrypted_column_without_its_key_id_index_is_an_error(monkeypatch: Any) -> None:
    assert check_key_id_indexes() == []
    kept = [i for i in Event._meta.indexes if i.name != "event_data_key_idx"]
    monkeypatch.setattr(Event._meta, "indexes", kept)

    [error] = check_key_id_indexes()

    assert error.id == "paywave.E001"
    assert "notifications.Event.data" in error.msg


def test_a_worker_exits_when_a_check_fails(keys: Keys) -> None:
    from paywave.observability.celery_signals import refuse_to_start_on_failed_checks

    store_one_of_each()
    refuse_to_start_on_failed_checks()
    keys.use(keys.new)

    with pytest.raises(SystemExit):
        refuse_to_start_on_failed_checks()
