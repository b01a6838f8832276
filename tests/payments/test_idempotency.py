import threading
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone
from rest_framework.exceptions import AuthenticationFailed

from payments import services
from payments.models import Payment, PaymentStatus, Refund
from paywave.idempotency import (
    StoredResponse,
    idempotency_keys_purge_expired,
    idempotent_call,
    request_fingerprint,
)
from paywave.models import IdempotencyKey
from tests.factories import ApiClientFactory, PaymentFactory
from tests.helpers import authenticated, card_body, pix_body, post_payment


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
def test_a_key_claimed_for_an_account_deleted_meanwhile_is_a_401() -> None:
    def operation() -> StoredResponse:
        raise AssertionError("never run for a deleted account")

    with pytest.raises(AuthenticationFailed) as refused:
        idempotent_call(
            client_id="00000000-0000-0000-0000-000000000001",  # no such wallet app (any more)
            key="k",
            fingerprint="f",
            operation=operation,
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
    assert set(statuses) <= {202, 409}, statuses
    originals = [r for r in responses if r.status_code == 202 and "Idempotent-Replayed" not in r]
    assert len(originals) == 1
    ids = {r.json()["id"] for r in responses if r.status_code == 202}
    assert ids == {originals[0].json()["id"]}
    assert Payment.objects.count() == 1
