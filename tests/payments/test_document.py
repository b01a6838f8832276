from typing import Any

import pytest
from rest_framework import serializers

from payments.models import PaymentAttempt
from payments.serializers import PaymentOutputSerializer, payment_document
from tests.factories import PaymentFactory


def _shape(serializer: serializers.Serializer) -> dict[str, Any]:
    shape: dict[str, Any] = {}
    for name, field in serializer.fields.items():
        if isinstance(field, serializers.ListSerializer):
            shape[name] = [_shape(field.child)]
        elif isinstance(field, serializers.Serializer):
            shape[name] = _shape(field)
        else:
            shape[name] = None
    return shape


def _document_shape(document: dict[str, Any], like: dict[str, Any]) -> dict[str, Any]:
    shape: dict[str, Any] = {}
    for name, value in document.items():
        if isinstance(like.get(name), dict) and isinstance(value, dict):
            shape[name] = _document_shape(value, like[name])
        elif isinstance(like.get(name), list) and value:
            shape[name] = [_document_shape(value[0], like[name][0])]
        else:
            shape[name] = like.get(name) if isinstance(like.get(name), list) else None
    return shape


@pytest.mark.django_db
@pytest.mark.parametrize("method", ["pix", "card", "paypal"])
def test_document_has_exactly_the_documented_fields(method: str) -> None:
    payment = PaymentFactory(**({method: True} if method != "pix" else {}))
    PaymentAttempt.objects.create(
        payment=payment, gateway="stripe", number=1, idempotency_key="k", outcome="retryable"
    )
    documented = _shape(PaymentOutputSerializer())
    for block in {"pix", "card", "paypal"} - {method}:  # null unless of that method
        documented[block] = None

    assert _document_shape(payment_document(payment), documented) == documented
