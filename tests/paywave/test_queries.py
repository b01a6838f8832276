"""The shared query helpers."""

import uuid

import pytest
from django.utils import timezone

from payments.models import PaymentEvent
from paywave.queries import insert_parts

pytestmark = pytest.mark.django_db


def _event(reason: str) -> PaymentEvent:
    return PaymentEvent(
        payment_id=uuid.uuid4(),
        from_status="pending",
        to_status="processing",
        reason=reason,
        actor="test",
        created_at=timezone.now(),
    )


def test_insert_parts_leave_out_what_each_caller_excludes() -> None:
    columns, placeholders, values = insert_parts(_event("a"), exclude={"id", "payment_id"})
    with_payment, with_placeholders, with_values = insert_parts(_event("a"), exclude={"id"})
    assert len(columns) == len(placeholders) == len(values)
    assert len(with_payment) == len(with_placeholders) == len(with_values) == len(columns) + 1
    assert set(with_payment) - set(columns) == {'"payment_id"'}
    assert all(p.startswith("CAST(%s AS ") for p in placeholders)


def test_insert_parts_are_each_instances_values_in_lists_of_the_callers_own() -> None:
    first = insert_parts(_event("first"), exclude={"id", "payment_id"})
    first[0].append("extra")
    first[1].append("extra")
    second = insert_parts(_event("second"), exclude={"id", "payment_id"})
    assert "extra" not in second[0]
    assert "extra" not in second[1]
    assert "first" in first[2]
    assert "second" in second[2]
    assert "first" not in second[2]
