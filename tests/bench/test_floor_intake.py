"""The floor's intake parts (bench/floor.py): what an accept cannot leave out, kept in step
with what the API's accept writes, and the bound on the intake ratio they set."""

import re
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from bench.floor import accept_writes, intake_floor, intake_ratio_bound, services_extra_ms
from payments.models import Payment
from paywave.models import IdempotencyKey
from tests.helpers import pix_body, post_payment

INSERT_INTO = re.compile(r'^INSERT INTO "(\w+)"')


def _inserted_tables(queries: list[dict[str, Any]]) -> list[str]:
    return [m.group(1) for q in queries if (m := INSERT_INTO.match(q["sql"]))]


@pytest.mark.django_db
def test_the_floors_accept_writes_the_rows_an_accept_writes(api: Any, wallet_app: Any) -> None:
    post_payment(api, pix_body(), key="warm-up")  # the wallet app's token, read once
    with CaptureQueriesContext(connection) as accepted:
        assert post_payment(api, pix_body(), key="counted").status_code == 202
    with CaptureQueriesContext(connection) as floor:
        accept_writes(wallet_app, 1)

    assert _inserted_tables(floor.captured_queries) == _inserted_tables(accepted.captured_queries)
    assert len(floor.captured_queries) == len(accepted.captured_queries)
    assert Payment.objects.filter(client=wallet_app).count() == 3
    assert IdempotencyKey.objects.filter(client=wallet_app).count() == 3


def _part(cpu_ms: float) -> dict[str, Any]:
    return {"n": 1, "cpu_ms": {"mean": cpu_ms, "p50": cpu_ms}, "wall_ms": {"mean": 0, "p50": 0}}


def test_the_intake_floor_is_the_accepts_writes_and_publish_less_the_bare_row() -> None:
    parts = {
        "accept_writes": _part(2.2),
        "celery_publish": _part(0.6),
        "bare_row_insert": _part(0.4),
    }

    floor = intake_floor(parts)

    assert floor["intake_floor_ms"] == 2.4
    assert [(t["part"], t["weight"]) for t in floor["intake_summed"]] == [
        ("accept_writes", 1),
        ("celery_publish", 1),
        ("bare_row_insert", -1),
    ]
    without_baselines = {k: v for k, v in parts.items() if k != "bare_row_insert"}
    assert intake_floor(without_baselines)["intake_floor_ms"] is None


def test_the_bound_adds_the_floor_to_the_bare_inserts_machine_cpu_per_request() -> None:
    # 2 cores at 400 req/s: 5 ms a bare insert; an accept at least 5 + 2.5 ms.
    assert intake_ratio_bound(400, 2.0, 2.5, 0.0) == pytest.approx(5 / 7.5, abs=0.001)
    assert intake_ratio_bound(None, 2.0, 2.5, 0.0) is None
    assert intake_ratio_bound(400, 2.0, None, 0.0) is None
    assert intake_ratio_bound(400, 2.0, 2.5, None) is None  # no intake phase to bound


def test_the_services_extra_is_what_postgresql_and_rabbitmq_spent_more_per_accept() -> None:
    cpu_cores = {
        "baseline": {"postgresql": 0.1, "rabbitmq": 0.0, "api": 1.2},
        "intake": {"postgresql": 0.2, "rabbitmq": 0.05, "api": 1.2},
    }

    # PostgreSQL 0.25 ms a bare insert at 400/s, 1 ms an accept at 200/s; RabbitMQ 0.25 ms.
    assert services_extra_ms(cpu_cores, 400, 200) == 1.0
    assert services_extra_ms(cpu_cores, 400, None) is None
    assert services_extra_ms({"baseline": cpu_cores["baseline"]}, 400, 200) is None
    assert intake_ratio_bound(400, 2.0, 2.5, 1.0) == pytest.approx(5 / 8.5, abs=0.001)
