import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from rest_framework.exceptions import AuthenticationFailed

from notifications.models import WebhookEndpoint
from notifications.services import webhook_endpoint_create
from payments import services
from payments.models import Payment, PaymentStatus, Refund
from paywave.api import idempotency
from paywave.api.errors import Conflict
from paywave.api.idempotency import (
    IdempotencyKeyInUse,
    IdempotencyKeyReused,
    StoredResponse,
    idempotency_keys_purge_expired,
    idempotent_call,
    request_fingerprint,
)
from paywave.models import IdempotencyKey
from paywave.queries import insert_row
from tests.factories import ApiClientFactory, PaymentFactory
from tests.helpers import authenticated, card_body, pix_body, post_payment

PIX_FINGERPRINT = request_fingerprint(method="POST", path="/api/v1/payments", data=pix_body())


@pytest.mark.django_db
def test_same_key_same_body_replays_the_first_answer(api: Any) -> None:
    first = post_payment(api, pix_body(), key="order-42")
    second = post_payment(api, pix_body(), key="order-42")

    assert (first.status_code, second.status_code) == (202, 202)
    assert second.json() == first.json()
    assert second["Location"] == first["Location"]
    assert second["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first
    assert Payment.objects.count() == 1


@pytest.mark.django_db
def test_replay_is_the_original_answer_even_after_the_payment_changed(api: Any) -> None:
    first = post_payment(api, pix_body(), key="k")
    api.post(f"/api/v1/payments/{first.json()['id']}/cancel")

    replay = post_payment(api, pix_body(), key="k")

    assert replay.json()["status"] == "pending"
    assert api.get(first["Location"]).json()["status"] == "canceled"


@pytest.mark.django_db
def test_a_retry_whose_second_run_fails_is_still_the_first_answer(wallet_app: Any) -> None:
    """A retry runs the operation again, in a transaction rolled back: a failure there
    (a deadlock, a bug) does not hide the answer already stored."""
    first = _request(wallet_app, _pays(wallet_app))

    again = _request(wallet_app, _crash)

    assert (again.status, again.body, again.replayed) == (first.status, first.body, True)
    assert Payment.objects.count() == 1


@pytest.mark.django_db
def test_same_key_different_body_is_422(api: Any) -> None:
    post_payment(api, pix_body(), key="k")

    response = post_payment(api, pix_body(amount=999), key="k")

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "idempotency_key_reused"
    assert response.json()["error"]["message"] == (
        "This Idempotency-Key was already used with a different request."
    )
    assert Payment.objects.count() == 1


@pytest.mark.django_db
def test_equal_json_with_other_key_order_is_the_same_request(api: Any) -> None:
    body = pix_body()
    reordered = dict(reversed(list(body.items())))
    post_payment(api, body, key="k")

    assert post_payment(api, reordered, key="k").status_code == 202
    assert Payment.objects.count() == 1


@pytest.mark.django_db
def test_key_in_flight_is_409(api: Any, wallet_app: Any) -> None:
    """A claim committed before its answer, as versions before the one-transaction key
    made it: its request may still be running."""
    now = timezone.now()
    IdempotencyKey.objects.create(
        client=wallet_app,
        key="k",
        fingerprint=request_fingerprint(method="POST", path="/api/v1/payments", data=pix_body()),
        locked_at=now,
        expires_at=now + timedelta(hours=24),
    )

    response = post_payment(api, pix_body(), key="k")

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "idempotency_key_in_use"
    assert response.json()["error"]["message"] == (
        "A request with this Idempotency-Key is still being processed; retry shortly."
    )
    assert Payment.objects.count() == 0


@pytest.mark.django_db
def test_abandoned_claim_is_taken_over(api: Any, wallet_app: Any) -> None:
    long_ago = timezone.now() - timedelta(minutes=10)
    IdempotencyKey.objects.create(
        client=wallet_app,
        key="k",
        fingerprint=request_fingerprint(method="POST", path="/api/v1/payments", data=pix_body()),
        locked_at=long_ago,
        expires_at=long_ago + timedelta(hours=24),
    )

    assert post_payment(api, pix_body(), key="k").status_code == 202
    assert Payment.objects.count() == 1


@pytest.mark.django_db
def test_taking_over_one_abandoned_claim_leaves_the_others_abandoned(
    api: Any, wallet_app: Any
) -> None:
    long_ago = timezone.now() - timedelta(minutes=10)
    for key in ("k1", "k2"):  # both abandoned at the same instant
        _claimed(wallet_app, key, at=long_ago)

    first = post_payment(api, pix_body(), key="k1")
    second = post_payment(api, pix_body(), key="k2")

    assert (first.status_code, second.status_code) == (202, 202)
    assert Payment.objects.count() == 2


@pytest.mark.django_db
def test_a_failed_operation_on_an_abandoned_claim_leaves_its_retry_free(
    api: Any, wallet_app: Any
) -> None:
    """The retry after a failure must not wait out the lock timeout on a 409."""
    _claimed(wallet_app, "k", at=timezone.now() - timedelta(minutes=10))

    with pytest.raises(RuntimeError):
        idempotent_call(
            client_id=wallet_app.pk, key="k", fingerprint=PIX_FINGERPRINT, operation=_crash
        )

    assert post_payment(api, pix_body(), key="k").status_code == 202
    assert IdempotencyKey.objects.get().state == IdempotencyKey.State.COMPLETED


@pytest.mark.django_db
def test_expired_key_is_a_new_key(api: Any) -> None:
    post_payment(api, pix_body(), key="k")
    IdempotencyKey.objects.update(expires_at=timezone.now() - timedelta(seconds=1))

    response = post_payment(api, pix_body(amount=5), key="k")

    assert response.status_code == 202
    assert "Idempotent-Replayed" not in response
    assert Payment.objects.count() == 2


@pytest.mark.django_db
def test_keys_belong_to_one_wallet_app(api: Any, other_api: Any) -> None:
    mine = post_payment(api, pix_body(), key="shared")
    theirs = post_payment(other_api, pix_body(), key="shared")

    assert mine.json()["id"] != theirs.json()["id"]
    assert "Idempotent-Replayed" not in theirs


@pytest.mark.django_db
def test_a_key_two_wallet_apps_used_replays_to_each_its_own_answer(
    api: Any, other_api: Any
) -> None:
    mine = post_payment(api, pix_body(), key="order-1")
    theirs = post_payment(other_api, pix_body(), key="order-1")  # the same key and body

    their_replay = post_payment(other_api, pix_body(), key="order-1")
    my_replay = post_payment(api, pix_body(), key="order-1")

    assert (their_replay.status_code, their_replay["Idempotent-Replayed"]) == (202, "true")
    assert their_replay.json() == theirs.json()  # never the other wallet app's payment
    assert their_replay["Location"] == theirs["Location"]
    assert my_replay.json() == mine.json()
    assert Payment.objects.count() == 2


@pytest.mark.django_db
def test_each_of_a_wallet_app_s_keys_replays_its_own_answer(api: Any) -> None:
    first = post_payment(api, pix_body(), key="order-1")
    second = post_payment(api, card_body(), key="order-2")

    assert post_payment(api, card_body(), key="order-2").json() == second.json()
    assert post_payment(api, pix_body(), key="order-1").json() == first.json()
    assert Payment.objects.count() == 2


@pytest.mark.django_db
def test_one_key_and_body_for_refunds_of_two_payments_is_not_a_replay(
    api: Any, wallet_app: Any
) -> None:
    """The request is its method, path and body: another payment's URL is another request."""
    first, second = (
        PaymentFactory(client=wallet_app, status=PaymentStatus.SUCCEEDED, gateway="stripe")
        for _ in range(2)
    )
    refund = {"amount": 300}

    made = api.post(
        f"/api/v1/payments/{first.id}/refunds", refund, format="json", HTTP_IDEMPOTENCY_KEY="r-1"
    )
    reused = api.post(
        f"/api/v1/payments/{second.id}/refunds", refund, format="json", HTTP_IDEMPOTENCY_KEY="r-1"
    )

    assert made.status_code == 202
    assert reused.status_code == 422  # not the first payment's refund replayed as if it were
    assert reused.json()["error"]["code"] == "idempotency_key_reused"
    assert list(Refund.objects.values_list("payment_id", "amount")) == [(first.id, 300)]


@pytest.mark.django_db
def test_failed_operation_releases_the_key(api: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    real_create = services.payment_create

    def broken(**kwargs: Any) -> Any:
        real_create(**kwargs)
        raise RuntimeError("crash after the insert")

    monkeypatch.setattr(services, "payment_create", broken)
    api.raise_request_exception = True
    with pytest.raises(RuntimeError):
        post_payment(api, pix_body(), key="k")
    monkeypatch.setattr(services, "payment_create", real_create)

    assert Payment.objects.count() == 0  # rolled back with the key's answer
    assert IdempotencyKey.objects.count() == 0
    assert post_payment(api, pix_body(), key="k").status_code == 202


@pytest.mark.django_db(transaction=True)  # the client's foreign key is checked at commit
def test_a_request_of_an_account_deleted_meanwhile_is_a_401_and_stores_nothing() -> None:
    with pytest.raises(AuthenticationFailed) as refused:
        idempotent_call(
            client_id="00000000-0000-0000-0000-000000000001",  # no such wallet app (any more)
            key="k",
            fingerprint="f",
            operation=lambda: StoredResponse(status=201, body={"id": "new"}),
        )

    assert refused.value.get_codes() == "account_deleted"
    assert str(refused.value.detail) == "This wallet app account no longer exists."
    assert not IdempotencyKey.objects.exists()


@pytest.mark.django_db
def test_validation_errors_do_not_consume_the_key(api: Any) -> None:
    assert post_payment(api, pix_body(amount=-1), key="k").status_code == 400

    assert post_payment(api, pix_body(), key="k").status_code == 202


@pytest.mark.django_db
def test_the_stored_answer_keeps_no_payer_data_in_clear_and_replays_the_original(
    api: Any,
) -> None:
    first = post_payment(api, pix_body(), key="order-7").json()
    payment_id = first["id"]
    api.patch(f"/api/v1/payments/{payment_id}", {"description": "changed"}, format="json")

    again = post_payment(api, pix_body(), key="order-7")

    assert again["Idempotent-Replayed"] == "true"
    assert again.json() == first  # the answer as it was, not the payment as it is now
    assert first["payer"]["name"] == "Ana Souza"
    assert first["payer"]["email"] == "ana@example.com"
    with connection.cursor() as cursor:
        cursor.execute("SELECT CAST(response_body AS TEXT) FROM paywave_idempotencykey")
        [(stored,)] = cursor.fetchall()
    for personal in ("Ana Souza", "ana@example.com", "Top-up"):
        assert personal not in stored


@pytest.mark.django_db
@pytest.mark.parametrize("key", [None, ""])
def test_a_create_without_a_key_is_refused_and_says_so(api: Any, key: str | None) -> None:
    response = post_payment(api, pix_body(), key=key)

    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["code"], list(error["fields"])) == (
        "idempotency_key_required",
        ["Idempotency-Key"],
    )
    assert error["message"] == (
        "The Idempotency-Key header is required on requests that create something."
    )
    assert error["fields"] == {"Idempotency-Key": "This header is required."}
    assert Payment.objects.count() == 0


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("key", "accepted"),
    [("k" * 255, True), ("k" * 256, False), ("order\n42", False), ("order\x0042", False)],
    ids=["255 characters", "256 characters", "a newline", "a NUL"],
)
def test_a_key_is_at_most_255_printable_characters(api: Any, key: str, accepted: bool) -> None:
    response = post_payment(api, pix_body(), key=key)

    if accepted:
        assert response.status_code == 202
        assert IdempotencyKey.objects.get().key == key
    else:
        assert response.status_code == 400
        error = response.json()["error"]
        assert (error["code"], list(error["fields"])) == (
            "idempotency_key_invalid", ["Idempotency-Key"],
        )  # fmt: skip
        assert error["message"] == (
            "The Idempotency-Key header must be printable and at most 255 characters."
        )
        assert error["fields"] == {"Idempotency-Key": "Invalid key."}
        assert Payment.objects.count() == 0


@pytest.mark.django_db
def test_purge_goes_through_every_batch(api: Any) -> None:
    for n in range(5):
        post_payment(api, pix_body(), key=f"old-{n}")
    post_payment(api, pix_body(), key="fresh")
    IdempotencyKey.objects.exclude(key="fresh").update(expires_at=timezone.now())

    assert idempotency_keys_purge_expired(batch_size=2) == 5

    assert list(IdempotencyKey.objects.values_list("key", flat=True)) == ["fresh"]


@pytest.mark.django_db
def test_purge_removes_only_expired_keys(api: Any) -> None:
    post_payment(api, pix_body(), key="old")
    post_payment(api, card_body(), key="fresh")
    IdempotencyKey.objects.filter(key="old").update(expires_at=timezone.now())

    assert idempotency_keys_purge_expired() == 1
    assert list(IdempotencyKey.objects.values_list("key", flat=True)) == ["fresh"]


def test_a_request_s_fingerprint_matches_the_keys_already_stored() -> None:
    """Stored keys live a day, across deployments: the retry of a request sent before
    one must fingerprint as it did then, or it would be refused as another request."""
    fingerprint = request_fingerprint(
        method="POST", path="/api/v1/payments", data={"currency": "BRL", "amount": 1000}
    )

    assert fingerprint == "9286f464091217dfca0576ea499741e07c9f9023f5655ffd84dad04508bde413"


@pytest.mark.django_db
def test_a_claim_that_finds_the_key_gone_each_time_is_409_and_says_so(
    api: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each insert collides with a key whose request releases it before the read, three
    times over: the wallet app is told to retry, as for a key in flight."""

    def collides(row: Any) -> None:
        if isinstance(row, IdempotencyKey):
            raise IntegrityError("duplicate key value violates unique constraint")
        insert_row(row)

    monkeypatch.setattr(idempotency, "insert_row", collides)

    response = post_payment(api, pix_body(), key="k")

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "idempotency_key_in_use"
    assert response.json()["error"]["message"] == (
        "A request with this Idempotency-Key is still being processed; retry shortly."
    )
    assert Payment.objects.count() == 0


@pytest.fixture
def stopped_clock(monkeypatch: pytest.MonkeyPatch) -> datetime:
    instant = timezone.now()
    monkeypatch.setattr(timezone, "now", lambda: instant)
    return instant


@pytest.mark.django_db
def test_a_key_is_expired_from_the_instant_its_ttl_ends(
    wallet_app: Any, stopped_clock: datetime
) -> None:
    claim = _claimed(wallet_app, "k", at=stopped_clock - settings.PAYWAVE_IDEMPOTENCY_TTL)
    IdempotencyKey.objects.filter(pk=claim.pk).update(
        expires_at=stopped_clock,
        state=IdempotencyKey.State.COMPLETED,
        response_status=201,
        response_body={"id": "first"},
        response_headers={},
    )

    answer = idempotent_call(
        client_id=wallet_app.pk, key="k", fingerprint=PIX_FINGERPRINT, operation=_pays(wallet_app)
    )

    assert not answer.replayed
    assert answer.body == {"id": str(Payment.objects.get().id)}  # done once, and answered


@pytest.mark.django_db
def test_a_claim_is_abandoned_from_the_instant_its_lock_timeout_ends(
    wallet_app: Any, stopped_clock: datetime
) -> None:
    _claimed(wallet_app, "k", at=stopped_clock - settings.PAYWAVE_IDEMPOTENCY_LOCK_TIMEOUT)

    answer = idempotent_call(
        client_id=wallet_app.pk, key="k", fingerprint=PIX_FINGERPRINT, operation=_pays(wallet_app)
    )

    assert (answer.status, answer.replayed) == (201, False)
    assert Payment.objects.count() == 1
    assert IdempotencyKey.objects.get().state == IdempotencyKey.State.COMPLETED


@pytest.mark.django_db
def test_a_failed_request_releases_its_own_key_only(
    wallet_app: Any, stopped_clock: datetime
) -> None:
    """Another request's key claimed at the same instant stays claimed."""
    _claimed(wallet_app, "held", at=stopped_clock)

    with pytest.raises(RuntimeError):
        idempotent_call(
            client_id=wallet_app.pk, key="failing", fingerprint=PIX_FINGERPRINT, operation=_crash
        )

    assert list(IdempotencyKey.objects.values_list("key", flat=True)) == ["held"]
    with pytest.raises(IdempotencyKeyInUse):
        idempotent_call(
            client_id=wallet_app.pk,
            key="held",
            fingerprint=PIX_FINGERPRINT,
            operation=_pays(wallet_app),
        )
    assert not Payment.objects.exists()


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_concurrent_requests_with_one_key_create_one_payment() -> None:
    wallet_app = ApiClientFactory()
    requests = 12
    barrier = threading.Barrier(requests)
    responses: list[Any] = []
    lock = threading.Lock()

    def send() -> None:
        client = authenticated(wallet_app.user)
        try:
            barrier.wait()
            response = post_payment(client, pix_body(), key="race")
            with lock:
                responses.append(response)
        finally:
            connection.close()

    threads = [threading.Thread(target=send) for _ in range(requests)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert connection.vendor == "postgresql"
    statuses = sorted(r.status_code for r in responses)
    assert set(statuses) == {202}, statuses  # each waited for the first, then replayed it
    originals = [r for r in responses if r.status_code == 202 and "Idempotent-Replayed" not in r]
    assert len(originals) == 1
    ids = {r.json()["id"] for r in responses if r.status_code == 202}
    assert ids == {originals[0].json()["id"]}
    assert Payment.objects.count() == 1


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_a_request_whose_key_is_being_stored_waits_and_replays_the_answer() -> None:
    wallet_app = ApiClientFactory()

    with _first_request_holding_its_key(
        wallet_app, until=lambda: _waiting_for_locks() == 1
    ) as first:
        second = idempotent_call(
            client_id=wallet_app.pk,
            key="k",
            fingerprint=PIX_FINGERPRINT,
            operation=_pays(wallet_app),
        )

    assert first.answer is not None
    assert not first.answer.replayed
    assert second.replayed  # not a 409: it waited for the first request's transaction
    assert second.body == first.answer.body == {"id": str(Payment.objects.get().id)}


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_a_request_refused_for_the_first_one_s_effect_replays_the_first_answer() -> None:
    """The second request's operation waited for the first's rows and found its effect
    done (a refund of the whole amount, say): the wallet app gets the first answer."""
    wallet_app = ApiClientFactory()
    running = threading.Event()

    def refused_once_the_first_committed() -> StoredResponse:
        running.set()
        _until(lambda: IdempotencyKey.objects.filter(key="k").exists())
        raise Conflict("Already done.", code="payment_fully_refunded")

    with _first_request_holding_its_key(wallet_app, until=running.is_set) as first:
        second = _request(wallet_app, refused_once_the_first_committed)

    assert first.answer is not None
    assert second.replayed
    assert second.body == first.answer.body
    assert Payment.objects.count() == 1


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_a_key_being_stored_for_another_request_is_422_for_a_webhook_endpoint(
    settings: Any,
) -> None:
    """The endpoint's creation locks its wallet app's row; the first request's rows check
    that row as they commit: neither waits for the other, so no deadlock."""
    settings.PAYWAVE_WEBHOOK_ALLOW_PRIVATE = True
    wallet_app = ApiClientFactory()

    def endpoint_created() -> StoredResponse:
        endpoint = webhook_endpoint_create(
            client_id=wallet_app.pk, url="https://hooks.example.com/paywave", events=["*"]
        )
        return StoredResponse(status=201, body={"id": str(endpoint.id)})

    second_waits = lambda: _waiting_for_locks() == 1  # noqa: E731
    with (
        _first_request_holding_its_key(wallet_app, until=second_waits) as first,
        pytest.raises(IdempotencyKeyReused),
    ):
        idempotent_call(
            client_id=wallet_app.pk,
            key="k",
            fingerprint="another request",
            operation=endpoint_created,
        )

    assert first.answer is not None
    assert Payment.objects.count() == 1
    assert not WebhookEndpoint.objects.exists()


@dataclass
class _FirstRequest:
    answer: StoredResponse | None = None


@contextmanager
def _first_request_holding_its_key(
    wallet_app: Any, *, until: Callable[[], bool]
) -> Iterator[_FirstRequest]:
    """A request for key "k" in another thread, whose transaction stays open after it
    inserted its key and answer until `until()`: the block runs meanwhile. Its answer
    is there once the block ends."""
    first = _FirstRequest()
    failures: list[BaseException] = []
    inserted = threading.Event()

    def insert_then_hold(row: Any) -> None:
        insert_row(row)
        if isinstance(row, IdempotencyKey) and threading.current_thread() is thread:
            inserted.set()
            _until(until)

    def run() -> None:
        try:
            first.answer = _request(wallet_app, _pays(wallet_app))
        except BaseException as exc:  # re-raised in the test
            failures.append(exc)
            inserted.set()
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(idempotency, "insert_row", insert_then_hold)
        thread.start()
        inserted.wait(10)
        try:
            yield first
        finally:
            thread.join(30)
    if failures:
        raise failures[0]


# Races between two requests with one key: another transaction changes the key after a
# request failed to insert it, before the request reads it or removes an abandoned claim.
# Table locks hold the request between them: the test waits for its statement to wait,
# as PostgreSQL shows it in pg_stat_activity.


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_a_claim_completed_while_it_is_taken_over_is_replayed_not_done_again() -> None:
    """The request that made the claim finishes just as a retry takes its claim over."""
    wallet_app = ApiClientFactory()
    claim = _claimed(wallet_app, "k", at=timezone.now() - timedelta(minutes=10))

    def complete() -> None:
        IdempotencyKey.objects.filter(pk=claim.pk).update(
            state=IdempotencyKey.State.COMPLETED,
            response_status=202,
            response_body={"id": "first"},
            response_headers={},
        )

    with _meanwhile(complete, before="write"):
        answer = idempotent_call(
            client_id=wallet_app.pk,
            key="k",
            fingerprint=PIX_FINGERPRINT,
            operation=_pays(wallet_app),
        )

    assert (answer.status, answer.body, answer.replayed) == (202, {"id": "first"}, True)
    assert not Payment.objects.exists()  # its own effect rolled back


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_a_claim_another_retry_took_over_meanwhile_is_409() -> None:
    wallet_app = ApiClientFactory()
    claim = _claimed(wallet_app, "k", at=timezone.now() - timedelta(minutes=10))

    def take_over() -> None:
        IdempotencyKey.objects.filter(pk=claim.pk).update(locked_at=timezone.now())

    with _meanwhile(take_over, before="write"), pytest.raises(IdempotencyKeyInUse):
        idempotent_call(
            client_id=wallet_app.pk,
            key="k",
            fingerprint=PIX_FINGERPRINT,
            operation=_pays(wallet_app),
        )

    assert not Payment.objects.exists()


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_a_key_released_between_the_insert_and_the_read_is_claimed_again() -> None:
    """The request holding the key failed and released it: the next one is no conflict."""
    wallet_app = ApiClientFactory()
    claim = _claimed(wallet_app, "k", at=timezone.now())

    def release() -> None:
        IdempotencyKey.objects.filter(pk=claim.pk).delete()

    with _meanwhile(release, before="read"):
        answer = idempotent_call(
            client_id=wallet_app.pk,
            key="k",
            fingerprint=PIX_FINGERPRINT,
            operation=_pays(wallet_app),
        )

    assert (answer.status, answer.replayed) == (201, False)
    assert Payment.objects.count() == 1
    assert IdempotencyKey.objects.get().state == IdempotencyKey.State.COMPLETED


@contextmanager
def _meanwhile(change: Callable[[], None], *, before: str) -> Iterator[None]:
    """Run `change` in another transaction after the claim in the block failed to insert
    its key, and before it reads the key (`before="read"`) or removes it ("write").

    A first transaction locks the key table whole, so the claim's insert waits; a second
    asks for a lock that waits behind the insert and is granted once the insert failed:
    ACCESS EXCLUSIVE stops the claim's read, SHARE lets it read and stops its removal.
    """
    mode = {"read": "ACCESS EXCLUSIVE", "write": "SHARE"}[before]
    table = connection.ops.quote_name(IdempotencyKey._meta.db_table)
    table_locked = threading.Event()
    failures: list[BaseException] = []

    def in_thread(work: Callable[[], None]) -> threading.Thread:
        def run() -> None:
            try:
                with transaction.atomic():  # its locks are held until `work` returns
                    work()
            except BaseException as exc:  # re-raised in the test
                failures.append(exc)
                table_locked.set()
            finally:
                connection.close()

        thread = threading.Thread(target=run)
        thread.start()
        return thread

    def lock_the_table() -> None:
        with connection.cursor() as cursor:
            cursor.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
            table_locked.set()
            _until(lambda: _waiting_for_locks() == 2)  # the claim's insert, then `other`

    def other() -> None:
        table_locked.wait(10)
        _until(lambda: _waiting_for_locks() == 1)  # the claim's insert
        with connection.cursor() as cursor:
            cursor.execute(f"LOCK TABLE {table} IN {mode} MODE")
        _until(lambda: _waiting_for_locks() == 1)  # the claim's read or update
        change()

    threads = [in_thread(lock_the_table)]
    table_locked.wait(10)
    threads.append(in_thread(other))
    try:
        yield
    finally:
        for thread in threads:
            thread.join(30)
    if failures:
        raise failures[0]


def _waiting_for_locks() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")  # taken once per transaction
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0]


def _until(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("the request never waited for the lock")
        time.sleep(0.005)


def _request(wallet_app: Any, operation: Callable[[], StoredResponse]) -> StoredResponse:
    """A request with key "k" for a PIX payment."""
    return idempotent_call(
        client_id=wallet_app.pk, key="k", fingerprint=PIX_FINGERPRINT, operation=operation
    )


def _pays(wallet_app: Any) -> Callable[[], StoredResponse]:
    """An operation whose effect is a payment: the payments committed show how often it
    took effect (a request that loses its key is rolled back whole)."""

    def operation() -> StoredResponse:
        payment = PaymentFactory(client=wallet_app)
        return StoredResponse(status=201, body={"id": str(payment.id)}, headers={})

    return operation


def _claimed(wallet_app: Any, key: str, *, at: datetime) -> IdempotencyKey:
    """A claim of `key` made at `at` for a PIX payment, never completed."""
    return IdempotencyKey.objects.create(
        client=wallet_app,
        key=key,
        fingerprint=PIX_FINGERPRINT,
        locked_at=at,
        expires_at=at + timedelta(hours=24),
    )


def _crash() -> StoredResponse:
    raise RuntimeError("the operation failed")
