"""StrictSerializer's fields: a copy of its own for every serializer, never rebuilt."""

import threading
from typing import Any

import pytest
from rest_framework import serializers

from payments.serializers import PayerInputSerializer, PaymentCreateInputSerializer

PAYER = {
    "name": "Ana Souza",
    "email": "ana@example.com",
    "tax_id": "529.982.247-25",
    "country": "BR",
}
BODY = {"amount": 1050, "currency": "BRL", "method": "pix", "payer": PAYER, "metadata": {"o": "1"}}


def test_a_plain_field_is_copied_not_built_again(monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[type] = []
    init = serializers.Field.__init__

    def counting(self: serializers.Field, *args: Any, **kwargs: Any) -> None:
        built.append(type(self))
        init(self, *args, **kwargs)

    monkeypatch.setattr(serializers.Field, "__init__", counting)
    payer = PayerInputSerializer(data=PAYER)

    assert payer.is_valid(), payer.errors
    assert built == [PayerInputSerializer]  # the serializer itself; none of its fields


def test_each_serializer_binds_fields_of_its_own_and_the_declared_ones_stay_unbound() -> None:
    first, second = PaymentCreateInputSerializer(data=BODY), PaymentCreateInputSerializer(data=BODY)
    assert first.is_valid(), first.errors
    assert second.is_valid(), second.errors

    for name, declared in PaymentCreateInputSerializer._declared_fields.items():
        mine, theirs = first.fields[name], second.fields[name]
        assert mine is not theirs
        assert mine is not declared
        assert (mine.parent, theirs.parent, declared.parent) == (first, second, None)
        assert (mine.field_name, declared.field_name) == (name, None)
    assert first.fields["payer"].fields["name"] is not second.fields["payer"].fields["name"]
    # A field holding a field (metadata's map of strings) is copied whole: its child too.
    metadata = first.fields["metadata"]
    assert metadata.child is not second.fields["metadata"].child
    assert metadata.child.parent is metadata
    assert first.validated_data == second.validated_data


def test_serializers_in_threads_report_their_own_errors() -> None:
    """A gunicorn worker validates in several threads at once."""
    answers: dict[int, Any] = {}

    def validate(index: int) -> None:
        body = {**BODY, "amount": -index} if index % 2 else {**BODY, "amount": index + 1}
        for _ in range(50):
            serializer = PaymentCreateInputSerializer(data=body)
            valid = serializer.is_valid()
            answers[index] = (valid, serializer.validated_data if valid else serializer.errors)

    threads = [threading.Thread(target=validate, args=(i,)) for i in range(1, 9)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    for index, (valid, answer) in answers.items():
        assert valid is not bool(index % 2)
        if valid:
            assert answer["amount"] == index + 1
        else:
            assert set(answer) == {"amount"}


@pytest.mark.parametrize("edge", [" ", "\x1c", "\t"])
def test_a_string_longer_than_its_maximum_is_refused_before_any_trimming(edge: str) -> None:
    """The schema's maxLength counts what is sent; trimming must not let more through."""
    body = {**BODY, "description": edge + "*" * 255}

    payload = PaymentCreateInputSerializer(data=body)

    assert not payload.is_valid()
    assert payload.errors["description"] == ["Ensure this field has no more than 255 characters."]
