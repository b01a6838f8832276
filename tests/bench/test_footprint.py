"""`python -m bench footprint`'s measurement, run on the suite's services so it cannot rot.

Its counts agree with the statement budgets the suite holds the code to (a stage also
counts the connection's health check, which Django's query log does not show).
"""

from typing import Any

import pytest
from django.db import connection

from bench.footprint import Platform, Receiver, footprint, statement_kind, totals
from tests.notifications.test_delivery_statements import DELIVERED_STATEMENTS
from tests.payments.test_statements import ACCEPT_STATEMENTS, CHARGING_STEP_STATEMENTS

HEALTH_CHECK = "SELECT (health check)"


def _without_health_check(stage: dict[str, Any]) -> int:
    return stage["statements"] - stage["statements_by_kind"].get(HEALTH_CHECK, 0)


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("pollers", [False, True], ids=["delivery-jobs", "delivery-pollers"])
def test_a_card_and_a_pix_payment_measured_stage_by_stage(
    api: Any, gateways: Any, simulator: Any, settings: Any, pollers: bool
) -> None:
    settings.PAYWAVE_WEBHOOK_ALLOW_PRIVATE = True  # the receiver is on 127.0.0.1
    settings.PAYWAVE_WEBHOOK_POLLER = pollers
    with Receiver() as receiver:
        result = footprint(Platform(api, simulator.base_url, receiver))

    assert result["statuses"] == {"card": "succeeded", "pix": "succeeded"}
    assert result["webhooks_received"] == [
        "payment.processing",
        "payment.succeeded",
        "payment.processing",
        "payment.awaiting_payment",
        "payment.succeeded",
    ]
    stages = {(row["payment"], row["stage"]): row for row in result["stages"]}
    assert [row["stage"] for row in result["stages"] if row["payment"] == "pix"][-3:] == [
        "callback",
        "callback_process",
        "delivery",
    ]
    for method in ("card", "pix"):
        accept, charge = stages[method, "accept"], stages[method, "charge"]
        assert _without_health_check(accept) == ACCEPT_STATEMENTS
        assert _without_health_check(charge) == CHARGING_STEP_STATEMENTS
        assert accept["amqp_by_routing_key"] == {"payments": 1}
        assert accept["redis_commands"] > 0
        # A poller's delivery is claimed in the database, not published.
        assert ("notifications" in charge["amqp_by_routing_key"]) is not pollers
    delivered = [row for row in result["stages"] if row.get("outcome") == "delivered"]
    assert len(delivered) == 5
    for row in delivered:
        claim = 1 if row["task"] == "delivery poller" else 0  # a batch of one here
        assert _without_health_check(row) == DELIVERED_STATEMENTS + claim
    polled = [row for row in result["stages"] if row.get("task") == "delivery poller"]
    assert bool(polled) is pollers

    per_payment = result["per_payment"]
    assert per_payment["card"]["deliveries"] == 2
    assert per_payment["pix"]["deliveries"] == 3
    assert per_payment["card"]["statements"] == sum(
        row["statements"] for row in result["stages"] if row["payment"] == "card"
    )
    if connection.vendor == "postgresql":
        # paywave.postgresql: a kept, idle connection is checked from its socket.
        assert not any(row["statements_by_kind"].get(HEALTH_CHECK) for row in result["stages"])
        assert stages["card", "accept"]["wal_bytes"] > 0
        if result["wal_inspected"]:
            own = stages["card", "accept"]
            assert 0 < own["wal_bytes_own"] <= own["wal_bytes"]
            assert own["commits"] == 1  # the payment, its event and the key's answer together


def test_statements_are_counted_by_their_first_word() -> None:
    assert statement_kind('SELECT "payments_payment"."id" FROM ...') == "SELECT"
    assert statement_kind("  (SELECT 1) UNION (SELECT 2)") == "SELECT"
    assert statement_kind("savepoint s1") == "SAVEPOINT"


def test_totals_add_up_per_payment_and_per_process() -> None:
    def stage(payment: str, name: str, process: str, statements: int) -> dict[str, Any]:
        counts = dict.fromkeys(
            ("wal_bytes", "wal_bytes_own", "wal_fpi_bytes_own", "commits"), statements
        )
        return {
            "payment": payment,
            "stage": name,
            "process": process,
            "statements": statements,
            "statements_by_kind": {"INSERT": statements},
            **counts,
            "redis_commands": 1,
            "redis_round_trips": 1,
            "amqp_published": 1,
        }

    figures = totals(
        [
            stage("card", "accept", "api", 6),
            stage("card", "delivery", "worker", 5),
            stage("card", "delivery", "worker", 5),
        ]
    )["card"]
    assert figures["statements"] == 16
    assert figures["delivery_jobs"] == 2
    assert figures["by_process"]["worker"]["statements"] == 10
    assert figures["by_process"]["worker"]["amqp_published"] == 2
    assert figures["statements_by_kind"] == {"INSERT": 16}
