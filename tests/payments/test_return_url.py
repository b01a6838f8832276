"""`return_url`: where a gateway's page (3-D Secure) sends the payer back to the wallet app."""

from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from django.conf import LazySettings

from payments.models import Payment
from payments.models import PaymentStatus as S
from tests.gateway_fixtures import drive
from tests.helpers import card_body, paypal_body, pix_body, post_payment

pytestmark = pytest.mark.django_db

BACK = "https://wallet.example/checkout/done?order=1001"


def test_a_card_payment_keeps_its_return_url(api: Any) -> None:
    created = post_payment(api, card_body(return_url=BACK)).json()

    assert created["return_url"] == BACK
    assert Payment.objects.get(pk=created["id"]).return_url == BACK
    assert api.get(f"/api/v1/payments/{created['id']}").json()["return_url"] == BACK


def test_without_one_it_is_null(api: Any) -> None:
    assert post_payment(api, pix_body()).json()["return_url"] is None


@pytest.mark.parametrize(
    "url",
    [
        "/checkout/done",  # relative
        "ftp://wallet.example/done",
        "https://user:secret@wallet.example/done",  # credentials
        "https:///no-host",
        "http://wallet.example/done",  # plain http outside the sandbox
        "x" * 2049,
    ],
)
def test_a_bad_return_url_is_a_400_and_stores_nothing(
    api: Any, settings: LazySettings, url: str
) -> None:
    settings.PAYWAVE_SANDBOX = False

    response = post_payment(api, card_body(return_url=url))

    assert response.status_code == 400
    assert "return_url" in response.json()["error"]["fields"]
    assert not Payment.objects.exists()


def test_a_card_number_in_a_return_url_is_refused(api: Any) -> None:
    response = post_payment(api, card_body(return_url=f"{BACK}&pan=4242424242424242"))

    assert response.status_code == 400
    assert response.json()["error"]["fields"]["return_url"]


def test_a_paypal_payment_keeps_its_return_and_cancel_urls(api: Any) -> None:
    cancel = "https://wallet.example/cart"
    created = post_payment(api, paypal_body(return_url=BACK, cancel_url=cancel))

    assert created.status_code == 202, created.content
    document = created.json()
    assert (document["method"], document["return_url"], document["cancel_url"]) == (
        "paypal", BACK, cancel,
    )  # fmt: skip
    assert document["paypal"] == {"order_id": None, "capture_id": None, "approval_expires_at": None}
    assert (document["card"], document["pix"]) == (None, None)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (paypal_body(return_url=None), "return_url"),
        ({k: v for k, v in paypal_body().items() if k != "return_url"}, "return_url"),
        (paypal_body(card={"token": "pm_card_visa"}), "card"),
        (paypal_body(pix={"expires_in": 600}), "pix"),
        (paypal_body(cancel_url="ftp://wallet.example/cart"), "cancel_url"),
        (card_body(cancel_url="https://wallet.example/cart"), "cancel_url"),
        (pix_body(cancel_url="https://wallet.example/cart"), "cancel_url"),
        (paypal_body(cancel_url="https://wallet.example/?pan=4242424242424242"), "cancel_url"),
    ],
)
def test_a_paypal_request_without_what_paypal_needs_is_a_400_and_stores_nothing(
    api: Any, body: dict[str, Any], field: str
) -> None:
    response = post_payment(api, body)

    assert response.status_code == 400, response.content
    assert field in response.json()["error"]["fields"]
    assert not Payment.objects.exists()


@pytest.mark.services
def test_3ds_sends_the_payer_back_to_the_return_url(
    api: Any, wallet_app: Any, card_payment: Any, sim: Any
) -> None:
    payment = drive(card_payment("pm_card_authenticationRequired", return_url=BACK)).payment
    assert payment.status == S.REQUIRES_ACTION
    challenge = payment.next_action["redirect_to_url"]["url"]

    # The payer's browser posts the challenge page's form, as a person clicking "Complete".
    answer = httpx.post(challenge, data={"result": "succeed"}, follow_redirects=False)

    assert answer.status_code == 303
    location = urlsplit(answer.headers["Location"])
    assert (location.scheme, location.netloc, location.path) == (
        "https", "wallet.example", "/checkout/done",
    )  # fmt: skip
    query = parse_qs(location.query)
    assert query["order"] == ["1001"]
    assert query["payment_intent"] == [payment.gateway_reference]
    assert query["redirect_status"] == ["succeeded"]
