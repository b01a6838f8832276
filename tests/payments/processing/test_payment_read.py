"""The charging step's read of its payment, compiled once per connection, is the ORM's.

`payment_process_step` reads its payment through paywave.queries' compiled read; this
compares it with `Payment.objects.get(pk=...)` field by field and type by type, so that
a Django upgrade that changes how the ORM builds objects fails here."""

import uuid

import pytest
from django.core.exceptions import ValidationError

from payments.models import Payment
from payments.processing import _PAYMENT_BY_ID
from paywave.queries import compiled_read
from tests.factories import PaymentFactory
from tests.helpers import column_values

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("traits", [{}, {"card": True}, {"paypal": True}])
def test_the_compiled_read_is_the_orms_read(traits: dict[str, bool]) -> None:
    payment = PaymentFactory(metadata={"order": "1001"}, description="a gift", **traits)
    expected = Payment.objects.get(pk=payment.pk)

    for given in (payment.pk, str(payment.pk)):  # a job carries the id as a str
        read = compiled_read(_PAYMENT_BY_ID).run(pk=given)
        assert type(read) is Payment
        assert column_values(read) == column_values(expected)
        assert (read._state.db, read._state.adding) == ("default", False)
    # Decrypted as the ORM decrypts them (from_db_value), not left as stored.
    assert (read.payer_name, read.payer_email) == ("Ana Souza", "ana@example.com")
    assert read.metadata == {"order": "1001"}


def test_no_payment_is_read_for_an_unknown_id_and_a_bad_one_fails_as_the_orm_fails() -> None:
    PaymentFactory()

    assert compiled_read(_PAYMENT_BY_ID).run(pk=uuid.uuid4()) is None
    with pytest.raises(ValidationError):
        Payment.objects.filter(pk="not a payment id").first()
    with pytest.raises(ValidationError):
        compiled_read(_PAYMENT_BY_ID).run(pk="not a payment id")
