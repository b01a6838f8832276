"""The gateway table routing reads at every charging step: cached, forgotten on every write."""

from typing import Any

import pytest
from django.core.cache import cache
from django.test import override_settings

from gateways import table
from gateways.models import Gateway
from gateways.selectors import gateway_candidates, gateway_routed
from gateways.table_generation import GENERATION_KEY

pytestmark = pytest.mark.django_db

PIX = {"method": "pix", "currency": "BRL", "country": "BR"}


def _pix_codes() -> list[str]:
    return [gateway.code for gateway in gateway_candidates(**PIX)]


@pytest.fixture
def pix_gateways() -> None:
    Gateway.objects.all().delete()
    for priority, (code, adapter) in enumerate(
        [("first", "mercadopago"), ("second", "gerencianet")]
    ):
        Gateway.objects.create(
            code=code, adapter=adapter, display_name=code, priority=priority + 1,
            methods=["pix"], currencies=["BRL"],
        )  # fmt: skip


def test_the_table_is_read_once_then_from_the_cache(
    pix_gateways: None, django_assert_num_queries: Any
) -> None:
    with django_assert_num_queries(1):
        assert _pix_codes() == ["first", "second"]
    with django_assert_num_queries(0):
        assert _pix_codes() == ["first", "second"]
        first = gateway_routed("first")
    assert first is not None
    assert (first.adapter, first.timeout_ms, first.updated_at) == (
        "mercadopago", 10_000, Gateway.objects.get(code="first").updated_at,
    )  # fmt: skip


@pytest.mark.parametrize(
    "write",
    [
        pytest.param(
            lambda: Gateway.objects.filter(code="first").update(enabled=False), id="update"
        ),
        pytest.param(lambda: Gateway.objects.filter(code="first").delete(), id="delete"),
        pytest.param(lambda: Gateway.objects.get(code="first").delete(), id="delete-one"),
    ],
)
def test_every_write_forgets_the_cached_table(pix_gateways: None, write: Any) -> None:
    assert _pix_codes() == ["first", "second"]  # cached
    write()
    assert _pix_codes() == ["second"]


def test_a_save_forgets_the_cached_table(pix_gateways: None) -> None:
    assert gateway_routed("second", enabled_only=True) is not None  # cached
    second = Gateway.objects.get(code="second")
    second.enabled = False
    second.save()
    assert gateway_routed("second", enabled_only=True) is None
    assert gateway_routed("second") is not None  # still there, disabled

    second.priority = 0
    second.enabled = True
    second.save()
    assert _pix_codes() == ["second", "first"]


def test_rows_read_before_a_write_are_never_served_after_it(pix_gateways: None) -> None:
    """A reader that read the table before a write stores it under the generation it
    started with: the write replaced that generation, so nobody reads it again."""
    old_generation = cache.get(GENERATION_KEY)
    assert _pix_codes() == ["first", "second"]
    Gateway.objects.filter(code="first").update(enabled=False)
    cache.set(f"gateways:table:{old_generation}", ["stale"])  # a slow reader's late store
    assert _pix_codes() == ["second"]


def test_without_its_cache_routing_reads_the_database(
    pix_gateways: None, django_assert_num_queries: Any
) -> None:
    unreachable = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:9/0",  # nothing listens there
            "OPTIONS": {"socket_connect_timeout": 0.2, "socket_timeout": 0.2},
        }
    }
    with override_settings(CACHES=unreachable):
        cache.close()
        with django_assert_num_queries(1):
            assert _pix_codes() == ["first", "second"]
        Gateway.objects.filter(code="first").update(enabled=False)  # a write still succeeds
        assert _pix_codes() == ["second"]


class _CountingCache:
    """The cache, counting the keys read."""

    def __init__(self) -> None:
        self.read: list[str] = []

    def get(self, key: str, default: Any = None) -> Any:
        self.read.append(key)
        return cache.get(key, default)

    def add(self, *args: Any, **kwargs: Any) -> Any:
        return cache.add(*args, **kwargs)

    def set(self, *args: Any, **kwargs: Any) -> Any:
        return cache.set(*args, **kwargs)


def test_the_process_keeps_the_table_and_reads_only_its_generation(
    pix_gateways: None, monkeypatch: pytest.MonkeyPatch, django_assert_num_queries: Any
) -> None:
    assert _pix_codes() == ["first", "second"]  # read, stored in the cache
    assert _pix_codes() == ["first", "second"]  # from the cache, kept by the process
    counting = _CountingCache()
    monkeypatch.setattr(table, "cache", counting)
    with django_assert_num_queries(0):
        assert _pix_codes() == ["first", "second"]
    assert counting.read == [GENERATION_KEY]


def test_the_process_copy_is_dropped_on_every_write(pix_gateways: None) -> None:
    assert _pix_codes() == ["first", "second"]
    assert _pix_codes() == ["first", "second"]  # kept by the process
    Gateway.objects.filter(code="first").update(enabled=False)
    assert _pix_codes() == ["second"]
    second = Gateway.objects.get(code="second")
    second.enabled = False
    second.save()
    assert _pix_codes() == []


def test_the_process_copy_expires(pix_gateways: None, monkeypatch: pytest.MonkeyPatch) -> None:
    assert _pix_codes() == ["first", "second"]
    assert _pix_codes() == ["first", "second"]  # kept by the process
    generation = cache.get(GENERATION_KEY)
    cache.set(f"gateways:table:{generation}", None)  # the shared entry expired...
    Gateway.objects.filter(code="first").update(priority=9)  # ...and this write went unseen
    cache.set(GENERATION_KEY, generation)
    assert _pix_codes() == ["first", "second"]  # the process copy, still young
    monkeypatch.setattr(table, "LOCAL_SECONDS", 0.0)
    assert _pix_codes() == ["second", "first"]


def test_each_reader_gets_gateways_of_its_own(pix_gateways: None) -> None:
    assert _pix_codes() == ["first", "second"]
    first = gateway_routed("first")  # kept by the process
    assert first is not None
    first.methods.append("card")
    first.enabled = False
    again = gateway_routed("first")
    assert again is not None
    assert (again.methods, again.enabled) == (["pix"], True)
