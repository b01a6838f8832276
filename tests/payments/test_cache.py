from typing import Any

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext

from payments import cache as payment_cache
from payments.models import Payment, PaymentStatus
from payments.transitions import payment_transition
from paywave.versioned_cache import RedisVersionedCache, versioned_cache
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
