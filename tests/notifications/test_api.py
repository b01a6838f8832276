"""POST/GET/DELETE /api/v1/webhook-endpoints through the real URL conf."""

from typing import Any

import pytest
from django.db import connection
from rest_framework.test import APIClient

from notifications.models import EVENT_TYPES, WebhookEndpoint
from notifications.services import MAX_ENDPOINTS_PER_CLIENT
from paywave.models import IdempotencyKey

pytestmark = pytest.mark.django_db

URL = "/api/v1/webhook-endpoints"


def create(api: APIClient, body: Any, key: str | None = "hook-1") -> Any:
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key is not None else {}
    return api.post(URL, body, format="json", **headers)


def body(**overrides: Any) -> dict[str, Any]:
    return {"url": "https://wallet.example.com/hooks", "events": ["payment.succeeded"], **overrides}


def assert_error(response: Any, status: int, field: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.content
    error = response.json()["error"]
    assert set(error) == {"type", "code", "message", "fields"}
    if field is not None:
        assert field in error["fields"], error
    return error


def test_create_answers_the_endpoint_with_its_secret_once(api: APIClient) -> None:
    response = create(api, body(events=["payment.failed", "payment.succeeded"]))

    assert response.status_code == 201
    document = response.json()
    assert set(document) == {"id", "url", "events", "status", "created_at", "secret"}
    assert document["url"] == "https://wallet.example.com/hooks"
    assert document["events"] == ["payment.succeeded", "payment.failed"]
    assert document["status"] == "enabled"
    assert document["secret"].startswith("whsec_")
    assert len(document["secret"]) > 30
    assert response["Location"] == f"{URL}/{document['id']}"
    assert "secret" not in api.get(f"{URL}/{document['id']}").json()
    assert all("secret" not in item for item in api.get(URL).json()["results"])


def test_the_secret_is_encrypted_at_rest_and_kept_out_of_the_idempotency_store(
    api: APIClient,
) -> None:
    document = create(api, body()).json()

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT secret FROM notifications_webhookendpoint WHERE id = %s",
            [document["id"].replace("-", "") if connection.vendor == "sqlite" else document["id"]],
        )
        stored = cursor.fetchone()[0]
    assert document["secret"] not in stored
    assert WebhookEndpoint.objects.get(pk=document["id"]).secret == document["secret"]
    (replay_body,) = IdempotencyKey.objects.values_list("response_body", flat=True)
    assert "secret" not in replay_body


def test_a_replay_answers_the_same_endpoint_and_secret(api: APIClient) -> None:
    first = create(api, body(), key="same")
    again = create(api, body(), key="same")

    assert again.status_code == 201
    assert again["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert WebhookEndpoint.objects.count() == 1
    assert_error(create(api, body(url="https://other.example.com/"), key="same"), 422)


def test_list_is_newest_first_and_only_the_apps_own(api: APIClient, other_api: APIClient) -> None:
    ids = [create(api, body(), key=f"k{n}").json()["id"] for n in range(3)]
    create(other_api, body(), key="theirs")

    listed = api.get(URL + "?limit=2").json()
    assert [item["id"] for item in listed["results"]] == ids[::-1][:2]
    rest = api.get(listed["next"]).json()
    assert [item["id"] for item in rest["results"]] == ids[:1]
    assert rest["next"] is None


def test_get_and_delete(api: APIClient) -> None:
    endpoint_id = create(api, body()).json()["id"]

    assert api.get(f"{URL}/{endpoint_id}").json()["id"] == endpoint_id
    assert api.delete(f"{URL}/{endpoint_id}").status_code == 204

    assert_error(api.get(f"{URL}/{endpoint_id}"), 404)
    assert_error(api.delete(f"{URL}/{endpoint_id}"), 404)
    assert api.get(URL).json()["results"] == []
    assert WebhookEndpoint.objects.get(pk=endpoint_id).deleted_at is not None


def test_another_apps_endpoint_is_404(api: APIClient, other_api: APIClient) -> None:
    endpoint_id = create(api, body()).json()["id"]

    assert_error(other_api.get(f"{URL}/{endpoint_id}"), 404)
    assert_error(other_api.delete(f"{URL}/{endpoint_id}"), 404)
    assert api.get(f"{URL}/{endpoint_id}").status_code == 200


def test_unauthenticated_is_401() -> None:
    assert_error(APIClient().get(URL), 401)
    assert_error(APIClient().post(URL, body(), format="json"), 401)


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"events": ["payment.succeeded"]}, "url"),
        ({"url": "https://wallet.example.com/"}, "events"),
        (body(url=12345), "url"),
        (body(url="ftp://wallet.example.com/"), "url"),
        (body(url="not a url"), "url"),
        (body(url="https://user:pass@wallet.example.com/"), "url"),
        (body(url="https://wallet.example.com/" + "a" * 2048), "url"),
        (body(events=[]), "events"),
        (body(events="payment.succeeded"), "events"),
        (body(events=["payment.reversed"]), "events.0"),
        (body(events=[42]), "events.0"),
        (body(events=["payment.succeeded"] * (len(EVENT_TYPES) + 2)), "events"),
        (body(secret="whsec_mine"), "secret"),
        ([], None),
    ],
)
def test_invalid_bodies_are_400(api: APIClient, payload: Any, field: str | None) -> None:
    assert_error(create(api, payload), 400, field)
    assert WebhookEndpoint.objects.count() == 0


def test_an_idempotency_key_is_required(api: APIClient) -> None:
    assert_error(create(api, body(), key=None), 400, "Idempotency-Key")


def test_events_are_deduplicated_and_star_means_all(api: APIClient) -> None:
    doubled = create(api, body(events=["payment.failed", "payment.failed"]), key="a").json()
    star = create(api, body(events=["payment.failed", "*"]), key="b").json()

    assert doubled["events"] == ["payment.failed"]
    assert star["events"] == ["*"]


def test_private_and_plain_http_urls_are_refused_outside_the_sandbox(
    api: APIClient, settings: Any
) -> None:
    settings.PAYWAVE_WEBHOOK_ALLOW_PRIVATE = False
    refused = [
        "http://wallet.example.com/hooks",
        "https://127.0.0.1/hooks",
        "https://10.0.0.8/hooks",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/hooks",
        "https://[::ffff:127.0.0.1]/hooks",
        "https://localhost/hooks",
        "https://db.internal/hooks",
    ]
    for number, url in enumerate(refused):
        assert_error(create(api, body(url=url), key=f"r{number}"), 400, "url")

    assert create(api, body(url="https://8.8.8.8/hooks"), key="ok1").status_code == 201
    assert create(api, body(), key="ok2").status_code == 201


def test_the_sandbox_accepts_a_local_http_receiver(api: APIClient, settings: Any) -> None:
    settings.PAYWAVE_WEBHOOK_ALLOW_PRIVATE = True
    assert create(api, body(url="http://127.0.0.1:8080/hooks")).status_code == 201


def test_a_wallet_app_has_a_bounded_number_of_endpoints(api: APIClient) -> None:
    for number in range(MAX_ENDPOINTS_PER_CLIENT):
        assert create(api, body(), key=f"k{number}").status_code == 201

    error = assert_error(create(api, body(), key="one-too-many"), 409)
    assert error["code"] == "webhook_endpoint_limit"

    api.delete(f"{URL}/{WebhookEndpoint.objects.first().pk}")
    assert create(api, body(), key="after-a-delete").status_code == 201
