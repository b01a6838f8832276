"""Statements per accepted payment and per charging step: counts, not times, so a
regression fails CI (bench/README.md has the times).

Counted as PostgreSQL runs them: a transaction's BEGIN and COMMIT count too (Django
shows them in a transactional test; inside pytest-django's `db` transaction, a
transaction of the code is a savepoint pair, which stands for them).
"""

from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any
from unittest.mock import patch

import pytest
from django.db.models.sql.compiler import (
    SQLCompiler,
    SQLDeleteCompiler,
    SQLInsertCompiler,
    SQLUpdateCompiler,
)

from payments.models import Payment
from payments.processing import payment_process_step
from tests.factories import WebhookEndpointFactory
from tests.helpers import card_body, pix_body, post_payment

# One transaction: the payment, its first event, the key with its answer.
ACCEPT_STATEMENTS = 2 + 3
# The payment read (a pending one has no attempts; the gateway table is cached), then two
# transactions: the attempt in flight and `processing`; the call's result and `succeeded`.
# Each transition is one guarded UPDATE of the job's copy with the payment's event, and
# the wallet app's event with its deliveries: one statement each on PostgreSQL.
CHARGING_STEP_STATEMENTS = 1 + (2 + 3) + (2 + 3)


@pytest.mark.django_db(transaction=True)
def test_accepting_a_payment(api: Any, django_assert_max_num_queries: Any) -> None:
    post_payment(api, card_body(), key="warm-up")  # the wallet app's token, read once

    with django_assert_max_num_queries(ACCEPT_STATEMENTS):
        response = post_payment(api, card_body(), key="counted")

    assert response.status_code == 202
    assert Payment.objects.count() == 2


@pytest.mark.services
@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "charged"),
    [
        (card_body, "succeeded"),
        (lambda: card_body(card={"token": "pm_card_authenticationRequired"}), "requires_action"),
        (pix_body, "awaiting_payment"),
    ],
    ids=["card", "card-3ds", "pix"],
)
# New deliveries as jobs, or left to the pollers (notifications/poller.py): the same
# statements.
@pytest.mark.parametrize("pollers", [False, True], ids=["jobs", "pollers"])
def test_a_payment_charged_in_one_step(
    api: Any,
    wallet_app: Any,
    gateways: Any,
    sim: Any,
    django_assert_max_num_queries: Any,
    settings: Any,
    body: Callable[[], dict[str, Any]],
    charged: str,
    pollers: bool,
) -> None:
    settings.PAYWAVE_WEBHOOK_POLLER = pollers
    WebhookEndpointFactory(client=wallet_app, url="http://127.0.0.1:9/hooks")
    warm = Payment.objects.get(pk=post_payment(api, body(), key="warm-up").json()["id"])
    assert payment_process_step(warm.pk, str(warm.dispatch_token)) is None
    payment = Payment.objects.get(pk=post_payment(api, body(), key="counted").json()["id"])

    with django_assert_max_num_queries(CHARGING_STEP_STATEMENTS):
        assert payment_process_step(payment.pk, str(payment.dispatch_token)) is None

    payment.refresh_from_db()
    assert payment.status == charged


# A retry: the attempts read (the payment is processing), then the same two transactions;
# the first one moves no status, so it writes the payment's new version and no event.
RETRY_STEP_STATEMENTS = 2 + (2 + 2) + (2 + 3)


@pytest.mark.services
@pytest.mark.django_db
def test_a_retry_at_the_same_gateway_in_one_step(
    api: Any, wallet_app: Any, gateways: Any, sim: Any, django_assert_max_num_queries: Any
) -> None:
    WebhookEndpointFactory(client=wallet_app, url="http://127.0.0.1:9/hooks")
    payment = Payment.objects.get(pk=post_payment(api, pix_body(), key="counted").json()["id"])
    sim.faults("mercadopago", down=True, down_mode="503")
    retry = payment_process_step(payment.pk, str(payment.dispatch_token))
    assert retry is not None  # the next try's job, with its token
    sim.reset_faults()

    with django_assert_max_num_queries(RETRY_STEP_STATEMENTS):
        assert payment_process_step(payment.pk, retry.token) is None

    payment.refresh_from_db()
    assert payment.status == "awaiting_payment"
    assert list(payment.attempts.values_list("outcome", flat=True)) == ["retryable", "succeeded"]


@contextmanager
def _no_sql_compiled() -> Iterator[None]:
    """The ORM's compilers refuse to build a statement: what runs is SQL built before."""
    refused = AssertionError("SQL compiled on the charging path")
    with ExitStack() as stack:
        for compiler in (SQLCompiler, SQLInsertCompiler, SQLUpdateCompiler, SQLDeleteCompiler):
            stack.enter_context(patch.object(compiler, "as_sql", side_effect=refused))
        yield


@pytest.mark.services
@pytest.mark.django_db
@pytest.mark.parametrize("body", [card_body, pix_body], ids=["card", "pix"])
def test_a_charging_step_runs_sql_built_once(
    api: Any, wallet_app: Any, gateways: Any, sim: Any, body: Callable[[], dict[str, Any]]
) -> None:
    """After the first step of the process, a step builds no SQL of its own: its read, the
    attempt's INSERT, the transitions' UPDATEs, the attempt's outcome and the wallet app's
    event are statements whose text was built once (paywave.queries)."""
    WebhookEndpointFactory(client=wallet_app, url="http://127.0.0.1:9/hooks")
    warm = Payment.objects.get(pk=post_payment(api, body(), key="warm-up").json()["id"])
    assert payment_process_step(warm.pk, str(warm.dispatch_token)) is None
    payment = Payment.objects.get(pk=post_payment(api, body(), key="counted").json()["id"])

    with _no_sql_compiled():
        assert payment_process_step(payment.pk, str(payment.dispatch_token)) is None

    payment.refresh_from_db()
    assert payment.status in {"succeeded", "awaiting_payment"}
