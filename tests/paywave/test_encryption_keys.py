"""Key rotation over every encrypted column, and the key report.

Stored values are read raw with SQL: what a key id prefix says is what the database holds.
"""

import json
from collections.abc import Iterator
from dataclasses import dataclass
from io import StringIO
from typing import Any

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.db import connection

from gateways.models import CallbackStatus, GatewayCallback
from notifications.models import Event, WebhookEndpoint
from payments.models import AttemptOutcome, OrphanCharge, Payment, PaymentAttempt
from paywave import crypto
from paywave.encrypted_columns import encrypted_columns
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
            "callback": GatewayCallback.objects.get(pk=self.callback.pk).body,
            "secret": WebhookEndpoint.objects.get(pk=self.endpoint.pk).secret,
            "event": Event.objects.get(pk=self.event.pk).data,
            "replay": IdempotencyKey.objects.get(pk=self.idempotency_key.pk).response_body,
        }


EXPECTED = {
    "payer": ("Ana Souza", "ana@example.com", "12345678909"),
    "charge": '{"payer": {"name": "Ana Souza"}}',
    "orphan": '{"payer": {"tax_id": "12345678909"}}',
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


def test_events_an_older_release_wrote_in_clear_are_read_reported_and_encrypted() -> None:
    stored = store_one_of_each()
    with connection.cursor() as cursor:  # as a release before encrypted events wrote it
        cursor.execute("UPDATE notifications_event SET data = %s", ['{"id": "e1", "n": 1}'])

    assert Event.objects.get(pk=stored.event.pk).data == {"id": "e1", "n": 1}
    assert report()["columns"]["notifications.Event.data"] == {"not encrypted": 1}

    call_command("rotate_encryption_keys", stdout=StringIO())

    assert Event.objects.get(pk=stored.event.pk).data == {"id": "e1", "n": 1}
    assert all('"n"' not in value for _, value in raw_values())
