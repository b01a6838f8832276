from typing import Any

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.db import connection

from payments.models import Payment
from paywave.encryption import crypto
from tests.factories import PaymentFactory

pytestmark = pytest.mark.django_db


def _raw_columns(payment_id: Any) -> tuple[str, str, str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT payer_name, payer_email, payer_tax_id FROM payments_payment WHERE id = %s",
            [payment_id.hex if connection.vendor == "sqlite" else payment_id],
        )
        return cursor.fetchone()


def test_personal_data_is_encrypted_at_rest() -> None:
    payment = PaymentFactory(payer_email="ana@example.com", payer_tax_id="12345678909")

    name, email, tax_id = _raw_columns(payment.id)

    for stored, plain in ((name, "Ana Souza"), (email, "ana@example.com"), (tax_id, "12345678909")):
        assert plain not in stored
        assert crypto.decrypt(stored) == plain
    assert Payment.objects.get(pk=payment.id).payer_tax_id == "12345678909"


def test_blind_index_finds_by_exact_value_only() -> None:
    payment = PaymentFactory(payer_email="ana@example.com")
    PaymentFactory(payer_email="bob@example.com")

    found = Payment.objects.filter(payer_email_hash=crypto.blind_index("ana@example.com"))

    assert list(found) == [payment]
    assert crypto.blind_index("ana@example.com") != crypto.blind_index("ana@example.co")


def test_key_rotation_reencrypts_under_the_new_key(settings: Any) -> None:
    payment = PaymentFactory()
    old_key = settings.PAYWAVE_ENCRYPTION_KEYS[0]
    new_key = Fernet.generate_key().decode()
    settings.PAYWAVE_ENCRYPTION_KEYS = [new_key, old_key]

    call_command("rotate_encryption_keys")

    settings.PAYWAVE_ENCRYPTION_KEYS = [new_key]  # the old key is gone
    reloaded = Payment.objects.get(pk=payment.id)
    assert (reloaded.payer_name, reloaded.payer_tax_id) == ("Ana Souza", "12345678909")
    name, _, _ = _raw_columns(payment.id)
    kid, _, token = name.partition(":")
    assert kid == crypto.key_id(new_key)
    assert Fernet(new_key.encode()).decrypt(token.encode()) == b"Ana Souza"
