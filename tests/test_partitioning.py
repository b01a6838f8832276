"""The partitioning plan (docs/SCALING.md) on this schema: config/postgresql/partitioning.sql
run on copies of the real tables, in the test's transaction (nothing of the live schema
changes). Rows route to their month's partition, a query bounded in time reads only its
months, and retention is dropping whole partitions, the current month untouched."""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from django.db import DatabaseError, connection, transaction

from payments.models import PaymentEvent
from tests.factories import PaymentFactory

pytestmark = [pytest.mark.services, pytest.mark.django_db]

PLAN = Path(__file__).resolve().parents[1] / "config" / "postgresql" / "partitioning.sql"
COPY = "paymentevent_by_month"


def _sql(query: str, *params: Any) -> list[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(query, params or None)
        return cursor.fetchall() if cursor.description else []


def _month(first: datetime, months: int) -> datetime:
    """The first of the month `months` after (or before) `first`, a first of month."""
    index = first.year * 12 + first.month - 1 + months
    return first.replace(year=index // 12, month=index % 12 + 1)


def _partition(month: datetime) -> str:
    return f"{COPY}_y{month:%Y}m{month:%m}"


def _forget_columns() -> None:
    """Each field keeps its column with the table it first saw (Field.cached_col)."""
    for field in PaymentEvent._meta.concrete_fields:
        field.__dict__.pop("cached_col", None)


def on_copy(monkeypatch: pytest.MonkeyPatch) -> None:
    """PaymentEvent's queries go to the copy until the test ends."""
    monkeypatch.setattr(PaymentEvent._meta, "db_table", COPY)
    _forget_columns()


@pytest.fixture(autouse=True)
def _columns_forgotten_after() -> Iterator[None]:
    yield
    _forget_columns()  # before monkeypatch puts the table back: nothing reads them between


@pytest.fixture
def plan() -> None:
    assert connection.vendor == "postgresql"  # with the services: never skipped on CI
    with connection.cursor() as cursor:
        cursor.execute(PLAN.read_text())


@pytest.fixture
def months() -> dict[str, datetime]:
    this = datetime.now(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return {
        "two_ago": _month(this, -2),
        "last": _month(this, -1),
        "this": this,
        "next": _month(this, 1),
    }


def test_payment_events_by_month_route_prune_and_retire(
    plan: None, months: dict[str, datetime], monkeypatch: pytest.MonkeyPatch
) -> None:
    like = "SELECT paywave_partitioned_like(%s, %s, 'created_at')"
    [[skipped]] = _sql(like, "payments_paymentevent", COPY)
    assert skipped == []  # its only unique index was the primary key, now (id, created_at)
    for month in months.values():
        _sql("SELECT paywave_month_partition_create(%s, %s)", COPY, month.date())
    payment, other = PaymentFactory(), PaymentFactory()
    # The model, unchanged, on the partitioned copy: `id` stays its primary key in Django
    # (the identity makes it unique; the database's key is (id, created_at)).
    on_copy(monkeypatch)
    for name in ("two_ago", "last", "this"):
        for owner in (payment, other):
            event = PaymentEvent.objects.create(
                payment=owner, from_status="pending", to_status="processing", reason=name
            )
            # Created now; moved to the middle of its month (the row changes partition).
            mid_month = months[name] + timedelta(days=14)
            PaymentEvent.objects.filter(pk=event.pk).update(created_at=mid_month)

    rows = _sql(
        "SELECT tableoid::regclass::text, count(*) FROM paymentevent_by_month GROUP BY 1 ORDER BY 1"
    )
    assert rows == [(_partition(months[name]), 2) for name in ("two_ago", "last", "this")]
    assert PaymentEvent.objects.filter(payment=payment).count() == 3
    with pytest.raises(DatabaseError, match="no partition"), transaction.atomic():
        PaymentEvent.objects.filter(payment=payment).update(
            created_at=months["two_ago"] - timedelta(days=1)
        )

    bounded = PaymentEvent.objects.filter(
        payment=payment, created_at__gte=months["this"], created_at__lt=months["next"]
    )
    plan_bounded = bounded.explain()
    assert _partition(months["this"]) in plan_bounded
    assert _partition(months["last"]) not in plan_bounded  # pruned
    assert _partition(months["two_ago"]) not in plan_bounded
    unbounded = PaymentEvent.objects.filter(payment=payment).explain()
    assert all(_partition(months[name]) in unbounded for name in ("two_ago", "last", "this"))

    # Retention: keep from last month on; the month before goes, as a whole partition.
    # It runs in a transaction of its own; here, inside the test's, the deferred foreign
    # key checks of the rows above are made first (DROP refuses pending ones).
    _sql("SET CONSTRAINTS ALL IMMEDIATE")
    [[dropped]] = _sql("SELECT paywave_partitions_retire(%s, %s)", COPY, months["last"].date())
    assert dropped == [_partition(months["two_ago"])]
    assert _sql("SELECT to_regclass(%s)", _partition(months["two_ago"])) == [(None,)]
    assert PaymentEvent.objects.filter(payment=payment).count() == 2
    assert PaymentEvent.objects.filter(created_at__gte=months["this"]).count() == 2
    PaymentEvent.objects.create(payment=payment, to_status="succeeded", reason="after")
    assert bounded.count() == 2
    with pytest.raises(DatabaseError, match="current month"), transaction.atomic():
        _sql("SELECT paywave_partitions_retire(%s, %s)", COPY, months["next"].date())
    assert PaymentEvent.objects.filter(created_at__gte=months["this"]).count() == 3


@pytest.mark.parametrize(
    ("table", "unique_without_key"),
    [
        ("payments_payment", []),
        ("payments_paymentevent", []),
        ("notifications_event", ["(public_id)"]),
        ("notifications_delivery", ["(event_id, endpoint_id)"]),
    ],
)
def test_each_table_of_the_plan_has_a_partitioned_twin(
    plan: None, table: str, unique_without_key: list[str]
) -> None:
    """Same columns, types, defaults and non-unique indexes; the unique constraints that
    lack the partition key are what the model gives up (docs/SCALING.md says how)."""
    twin = f"{table}_by_month"
    [[skipped]] = _sql("SELECT paywave_partitioned_like(%s, %s, 'created_at')", table, twin)
    assert [definition.rsplit(" btree ", 1)[1] for definition in skipped] == unique_without_key

    columns = """SELECT attname, format_type(atttypid, atttypmod), attnotnull, attidentity
                 FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0
                 AND NOT attisdropped ORDER BY attnum"""
    assert _sql(columns, twin) == _sql(columns, table)
    indexes = "SELECT count(*) FROM pg_index WHERE indrelid = %s::regclass AND NOT indisunique"
    assert _sql(indexes, twin) == _sql(indexes, table)
    [[key]] = _sql(
        "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = %s::regclass"
        " AND contype = 'p'",
        twin,
    )
    assert key == "PRIMARY KEY (id, created_at)"
