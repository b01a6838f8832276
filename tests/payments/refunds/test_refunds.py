"""Refunds through the API and the gateways: partial, full, over-refund, races, failures."""

import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.conf import LazySettings
from django.db import connection
from django.test import Client
from kombu import Exchange, Queue

from config.celery_app import app as celery_app
from notifications.models import Event
from payments.dispatch import refund_dispatch
from payments.models import Payment, Refund
from payments.models import PaymentStatus as S
from tests.factories import WalletFactory
from tests.gateway_fixtures import drive
from tests.payments.callbacks.helpers import pay_pix, receive_and_process, run_refund_jobs
from wallets.models import Wallet

pytestmark = [pytest.mark.services, pytest.mark.django_db]


def post(client: Any, url: str, data: Any, **extra: Any) -> Any:
    """A wallet app's POST: each with a fresh Idempotency-Key unless the test names one."""
    extra.setdefault("HTTP_IDEMPOTENCY_KEY", f"refund-{uuid.uuid4()}")
    return client.post(url, data, **extra)


def settle(refund_id: str) -> Refund:
    """Run the refund's jobs as a worker would, until none is left."""
    run_refund_jobs(refund_id)
    return Refund.objects.get(pk=refund_id)


@pytest.fixture
def paid_card(card_payment: Any, wallet_app: Any, sim: Any) -> Payment:
    payment = drive(card_payment(client=wallet_app, amount=1000)).payment
    assert payment.status == S.SUCCEEDED
    return payment


def test_partial_then_full_refund(api: Any, paid_card: Payment, sim: Any) -> None:
    url = f"/api/v1/payments/{paid_card.id}/refunds"

    partial = post(api, url, {"amount": 300}, format="json")
    assert partial.status_code == 202
    assert partial.json()["status"] == "pending"
    assert settle(partial.json()["id"]).status == "succeeded"
    paid_card.refresh_from_db()
    assert (paid_card.status, paid_card.amount_refunded) == (S.PARTIALLY_REFUNDED, 300)

    rest = post(api, url, {}, format="json")  # no amount: all that is left
    assert rest.json()["amount"] == 700
    settle(rest.json()["id"])
    paid_card.refresh_from_db()
    assert (paid_card.status, paid_card.amount_refunded) == (S.REFUNDED, 1000)

    listed = api.get(url).json()["results"]
    assert [(r["amount"], r["status"]) for r in listed] == [(700, "succeeded"), (300, "succeeded")]
    assert api.get(f"/api/v1/payments/{paid_card.id}").json()["amount_refunded"] == 1000
    events = Event.objects.filter(subject_id=paid_card.id, type="refund.succeeded")
    assert events.count() == 2
    charge = sim.charges(paid_card.id)[0]
    assert charge["amount_refunded"] == 1000


def test_over_refund_and_wrong_states_are_refused(
    api: Any, paid_card: Payment, pix_payment: Any, wallet_app: Any
) -> None:
    url = f"/api/v1/payments/{paid_card.id}/refunds"
    over = post(api, url, {"amount": 1001}, format="json")
    assert over.status_code == 400
    assert over.json()["error"]["fields"] == {"amount": "At most 1000."}

    assert post(api, url, {"amount": 0}, format="json").status_code == 400
    assert post(api, url, {"amount": "10"}, format="json").status_code == 400
    assert post(api, url, {"amount": 600}, format="json").status_code == 202
    second = post(api, url, {"amount": 600}, format="json")
    assert second.status_code == 400  # the pending 600 counts: 400 left
    assert post(api, url, {"amount": 400}, format="json").status_code == 202
    nothing_left = post(api, url, {}, format="json")
    assert nothing_left.status_code == 409
    assert nothing_left.json()["error"]["code"] == "payment_fully_refunded"

    pending = pix_payment(client=wallet_app)
    refused = post(api, f"/api/v1/payments/{pending.id}/refunds", {}, format="json")
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "payment_not_refundable"
    assert Refund.objects.filter(payment=pending).count() == 0


def test_refund_with_an_idempotency_key_is_made_once(api: Any, paid_card: Payment) -> None:
    url = f"/api/v1/payments/{paid_card.id}/refunds"
    first = post(api, url, {"amount": 100}, format="json", HTTP_IDEMPOTENCY_KEY="r-1")
    again = post(api, url, {"amount": 100}, format="json", HTTP_IDEMPOTENCY_KEY="r-1")

    assert again.json()["id"] == first.json()["id"]
    assert again["Idempotent-Replayed"] == "true"
    assert Refund.objects.filter(payment=paid_card).count() == 1


def test_a_refund_without_an_idempotency_key_is_refused_and_nothing_is_made(
    api: Any, paid_card: Payment
) -> None:
    url = f"/api/v1/payments/{paid_card.id}/refunds"

    refused = api.post(url, {"amount": 100}, format="json")  # no key

    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "idempotency_key_required"
    assert not Refund.objects.filter(payment=paid_card).exists()
    paths = Client().get("/api/schema/?format=json").json()["paths"]
    parameters = paths["/api/v1/payments/{payment_id}/refunds"]["post"]["parameters"]
    header = next(p for p in parameters if (p["in"], p["name"]) == ("header", "Idempotency-Key"))
    assert header["required"] is True


def test_another_wallet_apps_payment_cannot_be_refunded(other_api: Any, paid_card: Payment) -> None:
    response = post(other_api, f"/api/v1/payments/{paid_card.id}/refunds", {}, format="json")

    assert response.status_code == 404
    assert other_api.get(f"/api/v1/payments/{paid_card.id}/refunds").status_code == 404


def test_a_gateway_failure_fails_the_refund_and_leaves_the_payment(
    api: Any, paid_card: Payment, sim: Any, settings: LazySettings
) -> None:
    sim.faults("stripe", error_rate=1, error_status=429)  # refused before anything ran
    created = post(api, f"/api/v1/payments/{paid_card.id}/refunds", {}, format="json").json()

    refund = settle(created["id"])

    assert refund.status == "failed"
    assert refund.tries == settings.PAYWAVE_REFUND_TRIES
    assert not refund.needs_reconciliation  # every try was a 429: nothing was refunded
    assert refund.failure_message == "The gateway could not be reached; nothing was refunded."
    assert refund.last_error.startswith("Retryable: stripe: ")  # the last try's, for operators
    paid_card.refresh_from_db()
    assert (paid_card.status, paid_card.amount_refunded) == (S.SUCCEEDED, 0)
    assert Event.objects.filter(subject_id=paid_card.id, type="refund.failed").count() == 1
    # The money can be refunded again once the gateway is back.
    sim.reset_faults()
    retry = post(api, f"/api/v1/payments/{paid_card.id}/refunds", {}, format="json").json()
    assert settle(retry["id"]).status == "succeeded"


def test_a_pix_refund_after_the_payer_paid(
    pix_payment: Any, wallet_app: Any, api: Any, sim: Any, capture: Any
) -> None:
    payment = drive(pix_payment(client=wallet_app)).payment
    receive_and_process(payment.gateway, pay_pix(capture, payment))  # the payer pays
    payment.refresh_from_db()
    assert payment.status == S.SUCCEEDED

    created = post(api, f"/api/v1/payments/{payment.id}/refunds", {"amount": 50}, format="json")

    assert settle(created.json()["id"]).status == "succeeded"
    payment.refresh_from_db()
    assert (payment.status, payment.amount_refunded) == (S.PARTIALLY_REFUNDED, 50)
    assert sim.charges(payment.id)[0]["amount_refunded"] == 50  # refunded at the gateway


@pytest.mark.django_db(transaction=True)
def test_concurrent_refunds_never_exceed_the_amount(
    api: Any, card_payment: Any, wallet_app: Any, sim: Any
) -> None:
    payment = drive(card_payment(client=wallet_app, amount=1000)).payment
    answers: list[int] = []
    lock = threading.Lock()
    start = threading.Barrier(10)

    def refund() -> None:
        try:
            start.wait()
            response = post(
                api, f"/api/v1/payments/{payment.id}/refunds", {"amount": 300}, format="json"
            )
            with lock:
                answers.append(response.status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=refund) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(answers) == [202] * 3 + [400] * 7
    promised = sum(r.amount for r in Refund.objects.filter(payment=payment))
    assert promised == 900


def test_a_wallet_credited_payment_is_refunded_only_from_money_still_there(
    api: Any, wallet_app: Any, card_payment: Any, sim: Any
) -> None:
    wallet, other = WalletFactory(client=wallet_app), WalletFactory(client=wallet_app)
    payment = drive(
        card_payment(client=wallet_app, currency="BRL", amount=1000, wallet_id=wallet.pk)
    ).payment
    assert Wallet.objects.get(pk=wallet.pk).balance == 1000
    spent = post(
        api,
        "/api/v1/transfers",
        {
            "from_wallet": str(wallet.pk),
            "to_wallet": str(other.pk),
            "amount": 800,
            "currency": "BRL",
        },
        format="json",
        HTTP_IDEMPOTENCY_KEY="spend-800",
    )
    assert spent.status_code == 201, spent.content
    url = f"/api/v1/payments/{payment.id}/refunds"

    refused = post(api, url, {"amount": 500}, format="json")

    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "insufficient_funds"
    assert Refund.objects.filter(payment=payment).count() == 0
    allowed = post(api, url, {"amount": 200}, format="json")
    assert allowed.status_code == 202
    assert Wallet.objects.get(pk=wallet.pk).balance == 0  # taken at once, before the gateway
    assert settle(allowed.json()["id"]).status == "succeeded"


def test_a_failed_refund_gives_the_wallet_its_money_back(
    api: Any, wallet_app: Any, card_payment: Any, sim: Any
) -> None:
    wallet = WalletFactory(client=wallet_app)
    payment = drive(
        card_payment(client=wallet_app, currency="BRL", amount=1000, wallet_id=wallet.pk)
    ).payment
    sim.faults("stripe", error_rate=1, error_status=429)  # refused before anything ran

    created = post(api, f"/api/v1/payments/{payment.id}/refunds", {}, format="json").json()
    assert Wallet.objects.get(pk=wallet.pk).balance == 0

    assert settle(created["id"]).status == "failed"
    assert Wallet.objects.get(pk=wallet.pk).balance == 1000


PAYMENTS_QUEUE = Queue("payments", Exchange("payments", type="direct"), routing_key="payments")


def test_a_refund_job_carries_its_refund_and_token_and_its_countdown() -> None:
    """What a worker gets: the refund and the token of its chain, now or after the countdown."""
    now_id, later_id, token = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    with celery_app.connection_for_write() as connection:
        bound = PAYMENTS_QUEUE(connection.default_channel)
        bound.declare()
        published_at = datetime.now(UTC)

        assert refund_dispatch(now_id, token) is True
        assert refund_dispatch(later_id, token, countdown=30) is True

        now, later = _job_for(bound, str(now_id)), _job_for(bound, str(later_id))
    assert now.headers["task"] == later.headers["task"] == "payments.process_refund"
    assert now.decode()[0] == [str(now_id), str(token)]
    assert later.decode()[0] == [str(later_id), str(token)]
    assert now.headers["eta"] is None
    eta = datetime.fromisoformat(later.headers["eta"])
    assert published_at + timedelta(seconds=29) <= eta <= published_at + timedelta(seconds=35)


def _job_for(bound_queue: Any, refund_id: str, timeout_s: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        message = bound_queue.get(no_ack=False)
        if message is None:
            time.sleep(0.05)
            continue
        message.ack()  # the job is taken off the queue either way: no worker runs it
        if message.decode()[0][0] == refund_id:
            return message
    raise AssertionError(f"no job for refund {refund_id} in the payments queue")
