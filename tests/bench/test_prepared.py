"""`python -m bench prepared`'s measurement, run on the suite's services so it cannot rot:
both ways measured, each operation's figures and the platform's way against Django's
default, and the connection left as the platform sends statements."""

import pytest
from django.db import connection
from django.db.backends.postgresql.base import ServerBindingCursor

from bench.prepared import FIGURES, WAYS, measure
from tests.helpers import prepared_statements

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]

OPERATIONS = {"accept", "charge_transaction", "payment_read"}


@pytest.fixture(autouse=True)
def _postgresql_only() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL's ways of sending statements")


def test_both_ways_measured_alternately_and_compared() -> None:
    result = measure(n=3, rounds=2, warmup=6)

    assert set(result["ways"]) == set(WAYS)
    for way in WAYS:
        assert set(result["ways"][way]) == OPERATIONS
        assert [len(result["blocks"][way][name]) for name in sorted(OPERATIONS)] == [2, 2, 2]
        for figures in result["ways"][way].values():
            assert figures["client_cpu_ms"] > 0
            assert figures["wall_ms"] > 0
            assert figures["pg_cpu_ms"] is None or figures["pg_cpu_ms"] >= 0
    assert set(result["ratios"]) == OPERATIONS
    assert all(set(ratios) == set(FIGURES) for ratios in result["ratios"].values())


def test_the_platforms_way_prepares_and_is_left_on() -> None:
    measure(n=3, rounds=1, warmup=6)

    raw = connection.connection
    assert raw.cursor_factory is ServerBindingCursor
    assert raw.prepare_threshold == 5
    locks = [text for text in prepared_statements() if 'FROM "payments_payment"' in text]
    assert any("FOR UPDATE" in text and "$1" in text for text in locks)
