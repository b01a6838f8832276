from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from payments.models import Payment, PaymentEvent, PaymentStatus
from tests.factories import PaymentFactory
from tests.helpers import card_body, pix_body, post_payment

pytestmark = pytest.mark.django_db


def _create(api: Any, body: dict[str, Any], key: str) -> dict[str, Any]:
    response = post_payment(api, body, key=key)
    assert response.status_code == 202
    return response.json()


def test_get_returns_the_payment(api: Any) -> None:
    created = _create(api, pix_body(), "a")

    response = api.get(f"/api/v1/payments/{created['id']}")

    assert response.status_code == 200
    assert response.json() == created


def test_list_is_newest_first_with_cursor_pages(api: Any, wallet_app: Any) -> None:
    base = timezone.now()
    payments = [PaymentFactory(client=wallet_app) for _ in range(5)]
    for offset, payment in enumerate(payments):
        Payment.objects.filter(pk=payment.pk).update(created_at=base + timedelta(seconds=offset))
    expected = [str(p.id) for p in reversed(payments)]

    first = api.get("/api/v1/payments?limit=2").json()
    second = api.get(first["next"]).json()
    third = api.get(second["next"]).json()

    assert set(first) == {"results", "next", "has_more"}
    seen = [p["id"] for page in (first, second, third) for p in page["results"]]
    assert seen == expected
    assert [page["has_more"] for page in (first, second, third)] == [True, True, False]
    assert third["next"] is None


def test_list_filters(api: Any, wallet_app: Any) -> None:
    pix = PaymentFactory(client=wallet_app)
    card = PaymentFactory(client=wallet_app, card=True, status=PaymentStatus.SUCCEEDED)
    old = PaymentFactory(client=wallet_app)
    Payment.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=3))

    def ids(query: str) -> set[str]:
        response = api.get(f"/api/v1/payments?{query}")
        assert response.status_code == 200, response.json()
        return {p["id"] for p in response.json()["results"]}

    assert ids("method=card") == {str(card.id)}
    assert ids("status=succeeded") == {str(card.id)}
    assert ids("status=pending&method=pix") == {str(pix.id), str(old.id)}
    since = (timezone.now() - timedelta(days=1)).isoformat().replace("+00:00", "Z")
    assert ids(f"created_after={since}") == {str(pix.id), str(card.id)}
    assert ids(f"created_before={since}") == {str(old.id)}


@pytest.mark.parametrize(
    "query",
    [
        "status=paid",
        "method=boleto",
        "created_after=yesterday",
        "created_after=2026-01-02T00:00:00Z&created_before=2026-01-01T00:00:00Z",
        "cursor=not-a-cursor",
        "cursor=cD0w",  # base64 of "p=0": decodes, but 0 is no position of ours
        "cursor=cD0yMDI2LTAxLTAxVDAwOjAwOjAw",  # "p=2026-01-01T00:00:00": naive
    ],
)
def test_list_rejects_bad_filters(api: Any, query: str) -> None:
    response = api.get(f"/api/v1/payments?{query}")

    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"


def test_patch_changes_description_and_metadata_only(api: Any) -> None:
    created = _create(api, pix_body(), "a")

    response = api.patch(
        f"/api/v1/payments/{created['id']}",
        {"metadata": {"order": "B-2", "note": "x"}},
        format="json",
    )

    assert response.status_code == 200
    body = response.json()
    assert body["metadata"] == {"order": "B-2", "note": "x"}
    assert body["description"] == created["description"]
    assert body["amount"] == created["amount"]


def test_put_replaces_both_mutable_fields(api: Any) -> None:
    created = _create(api, pix_body(), "a")
    url = f"/api/v1/payments/{created['id']}"

    incomplete = api.put(url, {"description": "only this"}, format="json")
    response = api.put(url, {"description": "d", "metadata": {}}, format="json")

    assert incomplete.status_code == 400
    assert "metadata" in incomplete.json()["error"]["fields"]
    assert response.status_code == 200
    assert (response.json()["description"], response.json()["metadata"]) == ("d", {})


def test_a_final_payment_still_accepts_metadata(api: Any, wallet_app: Any) -> None:
    payment = PaymentFactory(client=wallet_app, status=PaymentStatus.FAILED)

    response = api.patch(
        f"/api/v1/payments/{payment.id}", {"metadata": {"ticket": "T-9"}}, format="json"
    )

    assert response.status_code == 200
    assert response.json()["status"] == "failed"
    assert response.json()["metadata"] == {"ticket": "T-9"}


def test_cancel_pending_payment(api: Any) -> None:
    created = _create(api, card_body(), "a")

    response = api.post(f"/api/v1/payments/{created['id']}/cancel")

    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["failure_code"]) == ("canceled", "canceled")
    event = PaymentEvent.objects.filter(payment_id=created["id"]).last()
    assert (event.from_status, event.to_status) == ("pending", "canceled")


@pytest.mark.parametrize(
    "status",
    [PaymentStatus.PROCESSING, PaymentStatus.SUCCEEDED, PaymentStatus.CANCELED],
)
def test_cancel_from_other_states_is_409(api: Any, wallet_app: Any, status: str) -> None:
    payment = PaymentFactory(client=wallet_app, status=status)

    response = api.post(f"/api/v1/payments/{payment.id}/cancel")

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "payment_state_conflict"
    payment.refresh_from_db()
    assert payment.status == status


def test_qrcode_is_a_png_once_the_pix_charge_exists(api: Any, wallet_app: Any) -> None:
    waiting = PaymentFactory(client=wallet_app)
    issued = PaymentFactory(
        client=wallet_app,
        status=PaymentStatus.AWAITING_PAYMENT,
        pix_qr_code=(
            "00020101021226830014br.gov.bcb.pix2561example.com/qr/v2/cobv/abc"
            "5204000053039865802BR5909Ana Souza6009SAO PAULO62070503***6304ABCD"
        ),
    )

    missing = api.get(f"/api/v1/payments/{waiting.id}/qrcode.png")
    image = api.get(f"/api/v1/payments/{issued.id}/qrcode.png", HTTP_ACCEPT="image/png")

    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "qr_code_not_available"
    assert image.status_code == 200
    assert image["Content-Type"] == "image/png"
    assert image.content.startswith(b"\x89PNG\r\n\x1a\n")
    detail = api.get(f"/api/v1/payments/{issued.id}").json()
    assert detail["pix"]["qr_code_url"] == f"/api/v1/payments/{issued.id}/qrcode.png"


@pytest.mark.parametrize(
    ("method", "suffix", "body"),
    [
        ("get", "", None),
        ("patch", "", {"description": "mine now"}),
        ("put", "", {"description": "mine now", "metadata": {}}),
        ("post", "/cancel", None),
        ("get", "/qrcode.png", None),
    ],
)
def test_another_wallet_apps_payment_is_404_on_every_verb(
    api: Any, other_api: Any, method: str, suffix: str, body: Any
) -> None:
    created = _create(api, pix_body(), "mine")
    url = f"/api/v1/payments/{created['id']}{suffix}"

    response = getattr(other_api, method)(url, body, format="json")

    assert response.status_code == 404
    assert response.json()["error"]["type"] == "not_found_error"
    payment = Payment.objects.get(pk=created["id"])
    assert (payment.status, payment.description) == ("pending", created["description"])
    assert other_api.get("/api/v1/payments").json()["results"] == []
