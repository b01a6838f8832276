from io import StringIO
from typing import Any

import pytest
import redis
from cryptography.fernet import Fernet
from django.core.cache import cache
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from payments import cache as payment_cache
from payments.models import Payment, PaymentStatus
from payments.transitions import payment_transition
from paywave.cache.versioned import RedisVersionedCache, versioned_cache
from tests.helpers import pix_body, post_payment

pytestmark = pytest.mark.django_db(transaction=True)


def _get(api: Any, payment_id: str) -> tuple[Any, int]:
    with CaptureQueriesContext(connection) as queries:
        response = api.get(f"/api/v1/payments/{payment_id}")
    return response, len(queries)


@pytest.mark.services
def test_hot_get_is_served_from_redis_without_queries(api: Any) -> None:
    assert isinstance(versioned_cache(), RedisVersionedCache)
    payment_id = post_payment(api, pix_body()).json()["id"]

    response, queries = _get(api, payment_id)

    assert response.status_code == 200
    assert response.json()["id"] == payment_id
    assert queries == 0


@pytest.mark.services
def test_the_cached_payment_is_encrypted_in_redis(api: Any, settings: Any) -> None:
    payment_id = post_payment(api, pix_body()).json()["id"]
    _get(api, payment_id)  # hot

    plain_redis = redis.Redis.from_url(settings.REDIS_URL)
    entries = [plain_redis.hgetall(key) for key in plain_redis.scan_iter(f"*{payment_id}*")]
    response, queries = _get(api, payment_id)

    assert entries
    stored = b"".join(b"".join(entry.values()) for entry in entries)
    for personal in (b"Ana Souza", b"ana@example.com", b"Top-up"):
        assert personal not in stored
    assert queries == 0
    assert response.json()["payer"]["name"] == "Ana Souza"
    assert response.json()["payer"]["email"] == "ana@example.com"


def test_a_payment_cached_under_a_removed_key_is_read_from_the_database(
    api: Any, settings: Any
) -> None:
    payment_id = post_payment(api, pix_body()).json()["id"]
    _get(api, payment_id)  # cached under the current key
    old_key, new_key = settings.PAYWAVE_ENCRYPTION_KEYS[0], Fernet.generate_key().decode()
    settings.PAYWAVE_ENCRYPTION_KEYS = [new_key, old_key]
    call_command("rotate_encryption_keys", stdout=StringIO())
    settings.PAYWAVE_ENCRYPTION_KEYS = [new_key]  # the cached copy no longer opens

    cold, cold_queries = _get(api, payment_id)
    hot, hot_queries = _get(api, payment_id)

    assert cold.status_code == 200
    assert cold_queries > 0
    assert hot_queries == 0
    assert hot.json() == cold.json()
    assert hot.json()["payer"]["name"] == "Ana Souza"


def test_cold_get_reads_the_database_then_caches(api: Any) -> None:
    payment_id = post_payment(api, pix_body()).json()["id"]
    cache.clear()  # the Redis cache and the payment cache share one database

    cold, cold_queries = _get(api, payment_id)
    hot, hot_queries = _get(api, payment_id)

    assert cold_queries > 0
    assert hot_queries == 0
    assert hot.json() == cold.json()


def test_get_is_current_after_every_change(api: Any) -> None:
    payment_id = post_payment(api, pix_body()).json()["id"]
    api.get(f"/api/v1/payments/{payment_id}")  # hot

    api.patch(f"/api/v1/payments/{payment_id}", {"description": "new"}, format="json")
    assert api.get(f"/api/v1/payments/{payment_id}").json()["description"] == "new"

    payment_transition(
        payment_id=payment_id,
        from_statuses=[PaymentStatus.PENDING],
        to_status=PaymentStatus.PROCESSING,
        reason="test",
        actor="worker",
    )
    assert api.get(f"/api/v1/payments/{payment_id}").json()["status"] == "processing"


def test_an_older_version_never_overwrites_a_newer_one(api: Any) -> None:
    payment_id = post_payment(api, pix_body()).json()["id"]
    stale = Payment.objects.get(pk=payment_id)  # version 1, as a slow reader saw it
    payment_transition(
        payment_id=payment_id,
        from_statuses=[PaymentStatus.PENDING],
        to_status=PaymentStatus.CANCELED,
        reason="test",
        actor="client",
    )

    payment_cache.payment_cache_put(stale)  # the slow reader writes last

    assert api.get(f"/api/v1/payments/{payment_id}").json()["status"] == "canceled"


def test_cache_never_answers_for_another_wallet_app(api: Any, other_api: Any) -> None:
    payment_id = post_payment(api, pix_body()).json()["id"]
    api.get(f"/api/v1/payments/{payment_id}")

    assert other_api.get(f"/api/v1/payments/{payment_id}").status_code == 404
