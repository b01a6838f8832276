"""List endpoints take only the query parameters the schema lists, within its bounds."""

from typing import Any

import pytest

from tests.factories import PaymentFactory

pytestmark = pytest.mark.django_db

PAGED_LISTS = [
    "/api/v1/payments",
    "/api/v1/wallets",
    "/api/v1/webhook-endpoints",
    "/api/v1/wallets/{wallet}/entries",
]
ALL_LISTS = [*PAGED_LISTS, "/api/v1/payments/{payment}/refunds"]


@pytest.fixture
def urls(api: Any, wallet_app: Any) -> dict[str, str]:
    wallet = api.post(
        "/api/v1/wallets", {"currency": "BRL"}, format="json", HTTP_IDEMPOTENCY_KEY="w"
    ).json()
    payment = PaymentFactory(client=wallet_app)
    return {"wallet": wallet["id"], "payment": str(payment.id)}


def _error(response: Any) -> dict[str, Any]:
    assert response.status_code == 400, response.content
    return response.json()["error"]


@pytest.mark.parametrize("path", PAGED_LISTS)
@pytest.mark.parametrize("limit", ["0", "-1", "101", "500", "1.0", "1e2", " 5", "ten"])
def test_a_limit_out_of_its_bounds_is_refused(
    api: Any, urls: dict[str, str], path: str, limit: str
) -> None:
    """Not clamped to 1-100 (or replaced by the default) as DRF's paginator does."""
    response = api.get(path.format(**urls), {"limit": limit})

    assert set(_error(response)["fields"]) == {"limit"}


@pytest.mark.parametrize("path", PAGED_LISTS)
@pytest.mark.parametrize("limit", ["1", "100"])
def test_a_limit_within_bounds_sizes_the_page(
    api: Any, urls: dict[str, str], path: str, limit: str
) -> None:
    response = api.get(path.format(**urls), {"limit": limit})

    assert response.status_code == 200


@pytest.mark.parametrize("path", ALL_LISTS)
def test_an_unknown_query_parameter_is_refused(api: Any, urls: dict[str, str], path: str) -> None:
    """A misspelt filter (`stauts`) must not answer the unfiltered list."""
    response = api.get(path.format(**urls), {"stauts": "pending"})

    error = _error(response)
    assert error["fields"] == {"stauts": "Unknown query parameter."}


@pytest.mark.parametrize("query", ["status=pending&status=failed", "status=", "limit="])
def test_a_repeated_or_empty_parameter_is_refused(api: Any, query: str) -> None:
    response = api.get(f"/api/v1/payments?{query}")

    assert set(_error(response)["fields"]) <= {"status", "limit"}


@pytest.mark.parametrize(
    "moment",
    [
        "2026-01-01T00:00:00",  # no offset: whose midnight?
        "2026-01-01",
        "2026-01-01 00:00:00Z",
        "2026-01-01T00:00Z",
        "2026-13-01T00:00:00Z",
        "9999-12-31T23:59:59-23:59",
    ],
)
def test_times_are_rfc3339_with_an_offset(api: Any, moment: str) -> None:
    response = api.get("/api/v1/payments", {"created_after": moment})

    assert set(_error(response)["fields"]) == {"created_after"}


def test_created_before_must_be_after_created_after(api: Any) -> None:
    response = api.get(
        "/api/v1/payments",
        {"created_after": "2026-01-01T00:00:00Z", "created_before": "2026-01-01T00:00:00Z"},
    )

    assert set(_error(response)["fields"]) == {"created_before"}


def test_an_offset_time_filters_by_the_instant(api: Any) -> None:
    response = api.get("/api/v1/payments", {"created_after": "2026-01-01T03:00:00+03:00"})

    assert response.status_code == 200


@pytest.mark.parametrize("currency", ["\x0cSQ", "XYZ", "brl"])
def test_wallets_filter_by_a_currency_paywave_takes(api: Any, currency: str) -> None:
    """Not trimmed into another value: the schema lists the currencies."""
    response = api.get("/api/v1/wallets", {"currency": currency})

    assert set(_error(response)["fields"]) == {"currency"}
