"""The shared query helpers."""

import sys
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from unittest.mock import patch

import pytest
from django.core.exceptions import FieldDoesNotExist
from django.db import IntegrityError, connection, connections, transaction
from django.db.models import F
from django.db.models.signals import post_save
from django.db.models.sql.compiler import SQLInsertCompiler, SQLUpdateCompiler
from django.utils import timezone

from notifications.delivery import _DELIVERY_BY_TOKEN
from notifications.models import Event
from payments.models import AttemptOutcome, Payment, PaymentAttempt, PaymentEvent, PaymentStatus
from payments.processing import _PAYMENT_BY_ID
from paywave.encryption import crypto
from paywave.models import IdempotencyKey
from paywave.queries import (
    CompiledRead,
    ReadShape,
    compiled_read,
    insert_parts,
    insert_row,
    update_parts,
    update_rows,
)
from tests.factories import PaymentFactory
from tests.helpers import column_values

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


def _attempt(payment: Payment, number: int = 1) -> PaymentAttempt:
    return PaymentAttempt(
        payment=payment,
        gateway="stripe",
        number=number,
        idempotency_key=f"key-{number}",
        outcome=AttemptOutcome.IN_FLIGHT,
        request_summary={"amount": 1050},
        charge_params='{"amount": 1050}',
        deadline_at=timezone.now(),
    )


@contextmanager
def _without_orm_insert() -> Iterator[None]:
    """On PostgreSQL insert_row's INSERT is its own text: the ORM's compiler is not used."""
    if connection.vendor != "postgresql":  # insert_row is save() there
        yield
        return
    with patch.object(SQLInsertCompiler, "as_sql", side_effect=AssertionError("ORM INSERT")):
        yield


@pytest.mark.services  # insert_row is save() on SQLite
def test_insert_row_writes_what_save_writes_in_one_statement(
    django_assert_num_queries: Any,
) -> None:
    payment = PaymentFactory(card=True)
    saved = _attempt(payment, number=1)
    saved.save(force_insert=True)
    inserted = _attempt(payment, number=2)

    with django_assert_num_queries(1), _without_orm_insert():
        insert_row(inserted)

    assert inserted.pk is not None
    assert (inserted._state.adding, inserted._state.db) == (False, "default")
    assert inserted.created_at is not None  # auto_now_add, as save fills it
    read_back = {a.number: a for a in PaymentAttempt.objects.filter(payment=payment)}
    assert column_values(read_back[2], typed=False) == column_values(inserted, typed=False)
    ignored = {"id", "number", "idempotency_key", "created_at", "deadline_at"}
    assert {k: v for k, v in column_values(read_back[2]).items() if k not in ignored} == {
        k: v for k, v in column_values(read_back[1]).items() if k not in ignored
    }
    # Encrypted at rest as save encrypts it; read back in clear.
    assert read_back[2].charge_params == '{"amount": 1050}'
    assert crypto.is_ciphertext(_stored(PaymentAttempt, "charge_params", inserted.pk))


@pytest.mark.services  # insert_row is save() on SQLite
def test_insert_row_encrypts_an_events_json_as_save_does() -> None:
    """An event no endpoint subscribes to goes through insert_row (notifications.fan_out):
    its data is personal data, ciphertext in the column."""
    payment = PaymentFactory()
    event = Event(
        type="payment.processing",
        client_id=payment.client_id,
        subject_id=payment.pk,
        data={"payer": {"email": "ana@example.com"}},
    )

    with _without_orm_insert():
        insert_row(event)

    assert crypto.is_ciphertext(_stored(Event, "data", event.pk))
    assert Event.objects.get(pk=event.pk).data == {"payer": {"email": "ana@example.com"}}


def _stored(model: Any, column: str, pk: Any) -> str:
    """A column as the database holds it, past the field's conversion."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {column} FROM {model._meta.db_table} WHERE id = %s",  # noqa: S608
            [model._meta.pk.get_db_prep_value(pk, connection)],
        )
        return str(cursor.fetchone()[0])


@pytest.mark.services  # insert_row is save() on SQLite
def test_insert_row_fails_on_a_duplicate_as_save_does() -> None:
    payment = PaymentFactory(card=True)
    insert_row(_attempt(payment, number=1))

    with pytest.raises(IntegrityError), transaction.atomic():
        insert_row(_attempt(payment, number=1))
    assert PaymentAttempt.objects.filter(payment=payment).count() == 1


def test_insert_row_saves_a_model_someone_listens_to_through_save() -> None:
    heard: list[Any] = []

    def listener(sender: Any, instance: Any, created: bool, **kwargs: Any) -> None:
        heard.append((instance.reason, created))

    post_save.connect(listener, sender=PaymentEvent, dispatch_uid="test-insert-row")
    try:
        event = _event("heard")
        event.payment_id = PaymentFactory().pk
        insert_row(event)
    finally:
        post_save.disconnect(sender=PaymentEvent, dispatch_uid="test-insert-row")

    assert heard == [("heard", True)]
    assert PaymentEvent.objects.filter(pk=event.pk, reason="heard").exists()


@pytest.mark.services  # insert_row is save() on SQLite
def test_insert_row_writes_a_key_with_a_default_as_the_instance_has_it(
    django_assert_num_queries: Any,
) -> None:
    """A payment's key is a UUID made in Python: written, not read back."""
    template = PaymentFactory.build(client=PaymentFactory().client, metadata={"o": "1"})
    payment = Payment(**{f.attname: getattr(template, f.attname) for f in Payment._meta.fields})
    payment.created_at = payment.updated_at = None  # filled by pre_save, as save fills them
    key = payment.pk

    with django_assert_num_queries(1), _without_orm_insert():
        insert_row(payment)

    assert payment.pk == key
    assert payment.created_at is not None
    assert payment.updated_at is not None
    assert (payment._state.adding, payment._state.db) == (False, "default")
    stored = Payment.objects.get(pk=key)
    assert column_values(stored, typed=False) == column_values(payment, typed=False)
    assert (stored.payer_name, stored.metadata) == ("Ana Souza", {"o": "1"})


@contextmanager
def _without_orm_update() -> Iterator[None]:
    with patch.object(SQLUpdateCompiler, "as_sql", side_effect=AssertionError("ORM UPDATE")):
        yield


def _twins() -> tuple[Payment, Payment]:
    """Two payments alike in every column but their keys."""
    first = PaymentFactory(card=True, metadata={"o": "1"})
    second = PaymentFactory(
        **{f.name: getattr(first, f.name) for f in Payment._meta.fields if f.name != "id"}
    )
    return first, second


def _columns(payment: Payment) -> dict[str, Any]:
    """The stored row's columns but its key and its creation time (the twins' differ)."""
    values = column_values(Payment.objects.get(pk=payment.pk))
    return {name: value for name, value in values.items() if name not in {"id", "created_at"}}


def test_update_rows_writes_what_the_orms_update_writes(django_assert_num_queries: Any) -> None:
    by_orm, by_helper = _twins()
    values = {
        "status": "processing",
        "version": by_orm.version + 1,
        "updated_at": timezone.now(),
        "dispatch_token": uuid.uuid4(),  # a UUID
        "pix_expires_at": None,  # NULL
        "payer_name": "Bia Lima",  # encrypted at rest
        "next_action": {"a": [1, "b"]},  # JSON
    }
    where = {"status": by_orm.status, "version": by_orm.version, "needs_reconciliation": False}

    assert Payment.objects.filter(pk=by_orm.pk, **where).update(**values) == 1
    with django_assert_num_queries(1), _without_orm_update():
        assert update_rows(Payment, where={"pk": by_helper.pk, **where}, values=values) == 1

    assert _columns(by_helper) == _columns(by_orm)
    assert _columns(by_helper)["payer_name"] == (str, "Bia Lima")
    assert crypto.is_ciphertext(_stored(Payment, "payer_name", by_helper.pk))


def test_update_rows_matches_exact_values_and_null_as_the_orm_does() -> None:
    payment = PaymentFactory(card=True, wallet_id=None)
    moved = {"status": "canceled"}

    with _without_orm_update():
        assert not update_rows(Payment, where={"pk": payment.pk, "status": "processing"},
                               values=moved)  # fmt: skip
        assert not update_rows(Payment, where={"pk": payment.pk, "wallet_id": uuid.uuid4()},
                               values=moved)  # fmt: skip
        assert update_rows(Payment, where={"pk": str(payment.pk), "wallet_id": None},
                           values=moved) == 1  # fmt: skip

    assert Payment.objects.get(pk=payment.pk).status == "canceled"
    assert Payment.objects.exclude(pk=payment.pk).filter(status="canceled").count() == 0


def test_update_rows_leaves_expressions_to_the_orm() -> None:
    payment = PaymentFactory(card=True)

    assert update_rows(Payment, where={"pk": payment.pk}, values={"version": F("version") + 2})

    assert Payment.objects.get(pk=payment.pk).version == payment.version + 2


def test_update_parts_names_columns_only() -> None:
    with pytest.raises(FieldDoesNotExist):
        update_parts(Payment, where={"status__in": ["pending"]}, values={"status": "failed"})
    with pytest.raises(ValueError, match="not a column"):
        update_parts(Payment, where={"pk": uuid.uuid4()}, values={"attempts": []})
    with pytest.raises(ValueError, match="nothing to set"):
        update_parts(Payment, where={"pk": uuid.uuid4()}, values={})
    with pytest.raises(ValueError, match="JSON equality"):  # the ORM matches JSON null
        update_parts(Payment, where={"next_action": None}, values={"status": "failed"})


def test_update_rows_writes_enums_booleans_json_null_and_encrypted_json_as_the_orm() -> None:
    by_orm, by_helper = _twins()
    values = {
        "status": PaymentStatus.PROCESSING,  # a str enum
        "needs_reconciliation": True,
        "next_action": None,  # a JSON field set to NULL, as processing sets it
        "metadata": {"order": "7"},
    }

    Payment.objects.filter(pk=by_orm.pk).update(**values)
    with _without_orm_update():
        update_rows(Payment, where={"pk": by_helper.pk}, values=values)

    assert _columns(by_helper) | {"updated_at": None} == _columns(by_orm) | {"updated_at": None}
    key = IdempotencyKey.objects.create(
        client=by_orm.client, key="k", fingerprint="f", locked_at=timezone.now(),
        expires_at=timezone.now(),
    )  # fmt: skip
    answer = {"state": "completed", "response_status": 202, "response_body": {"id": "p"}}
    with _without_orm_update():
        assert update_rows(IdempotencyKey, where={"pk": key.pk}, values=answer) == 1
    assert IdempotencyKey.objects.get(pk=key.pk).response_body == {"id": "p"}  # encrypted JSON
    assert crypto.is_ciphertext(_stored(IdempotencyKey, "response_body", key.pk))


def test_update_rows_leaves_a_model_instance_to_the_orm() -> None:
    payment, other = PaymentFactory(card=True), PaymentFactory(card=True)
    attempt = _attempt(payment)
    attempt.save()

    assert update_rows(PaymentAttempt, where={"pk": attempt.pk}, values={"payment": other}) == 1

    assert PaymentAttempt.objects.get(pk=attempt.pk).payment_id == other.pk


def test_a_failed_update_marks_the_atomic_block_for_rollback() -> None:
    payment = PaymentFactory(card=True)
    attempts = [_attempt(payment, number=1), _attempt(payment, number=2)]
    for attempt in attempts:
        attempt.save()

    def marked_after_a_failed_update() -> bool:
        with transaction.atomic():
            try:  # (payment, number) is unique
                update_rows(PaymentAttempt, where={"pk": attempts[1].pk}, values={"number": 1})
            except IntegrityError:
                return connection.needs_rollback  # and the block is rolled back as it ends
        return False

    assert marked_after_a_failed_update()
    assert sorted(PaymentAttempt.objects.values_list("number", flat=True)) == [1, 2]


@pytest.mark.parametrize("shape", [_PAYMENT_BY_ID, _DELIVERY_BY_TOKEN], ids=["payment", "delivery"])
def test_each_thread_compiles_a_read_for_its_own_connection(shape: ReadShape) -> None:
    mine = compiled_read(shape)
    assert mine.database is connections["default"]
    assert compiled_read(shape) is mine

    theirs: list[CompiledRead] = []

    def compile_in_another_thread() -> None:
        try:
            theirs.append(compiled_read(shape))
        finally:
            connections.close_all()

    thread = threading.Thread(target=compile_in_another_thread)
    thread.start()
    thread.join()
    assert theirs
    assert theirs[0].database is not mine.database
    assert compiled_read(shape) is mine


@pytest.mark.parametrize("shape", [_PAYMENT_BY_ID, _DELIVERY_BY_TOKEN], ids=["payment", "delivery"])
def test_threads_compiling_a_read_at_once_each_get_the_same_sql(shape: ReadShape) -> None:
    """A pool's threads all start at once (a worker's delivery poller, a backlog): each
    compiles the shape's one queryset for its own connection at the same moment."""
    expected = compiled_read(shape).sql
    # Threads switching every few bytecodes, as a busy process's may at any point.
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    threads, rounds = 8, 20
    start = threading.Barrier(threads)
    compiled: list[str] = []

    def compile_at_once() -> None:
        try:
            start.wait()
            compiled.append(compiled_read(shape).sql)
        finally:
            connections.close_all()

    try:
        for _ in range(rounds):  # fresh threads: fresh compiles
            running = [threading.Thread(target=compile_at_once) for _ in range(threads)]
            for thread in running:
                thread.start()
            for thread in running:
                thread.join()
    finally:
        sys.setswitchinterval(previous)

    assert compiled == [expected] * threads * rounds
