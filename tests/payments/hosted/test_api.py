"""`"hosted": true` on POST /api/v1/payments: `next_action` sends the payer to the hosted page."""

from typing import Any

import pytest
from django.conf import LazySettings

from payments.hosted_tokens import hosted_return_url, hosted_token, hosted_token_check
from payments.models import Payment
from payments.models import PaymentStatus as S
from payments.processing import charge_request_for
from tests.gateway_fixtures import drive
from tests.helpers import card_body, paypal_body, pix_body, post_payment

from ..callbacks.helpers import pay_pix, receive_and_process
from .helpers import BACK, token_of

pytestmark = pytest.mark.django_db


def _assert_hosted_redirect(document: dict[str, Any], settings: LazySettings) -> str:
    action = document["next_action"]
    assert action["type"] == "redirect"
    assert action["url"].startswith(f"{settings.PAYWAVE_PUBLIC_URL}/pay/{document['id']}?t=")
    token = token_of(action["url"])
    hosted_token_check(document["id"], token)  # raises unless valid for this payment
    return str(action["url"])


@pytest.mark.parametrize("body", [pix_body, card_body, paypal_body])
def test_a_hosted_payment_answers_a_redirect_to_its_hosted_page(
    api: Any, settings: LazySettings, body: Any
) -> None:
    response = post_payment(api, body(hosted=True, return_url=BACK))

    assert response.status_code == 202, response.content
    document = response.json()
    assert document["hosted"] is True
    _assert_hosted_redirect(document, settings)
    assert Payment.objects.get(pk=document["id"]).hosted is True


def test_a_payment_is_not_hosted_by_default(api: Any) -> None:
    document = post_payment(api, pix_body()).json()

    assert document["hosted"] is False
    assert document["next_action"] is None


def test_get_keeps_the_redirect_while_payable_and_drops_it_once_final(
    api: Any,
    settings: LazySettings,
    gateways: Any,
    capture: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    created = post_payment(api, pix_body(hosted=True, return_url=BACK)).json()
    url = _assert_hosted_redirect(created, settings)

    payment = drive(Payment.objects.get(pk=created["id"])).payment
    assert payment.status == S.AWAITING_PAYMENT
    read = api.get(f"/api/v1/payments/{payment.id}").json()
    assert read["status"] == S.AWAITING_PAYMENT
    assert read["next_action"]["url"] == url  # the same link: the token is deterministic

    with django_capture_on_commit_callbacks(execute=True):  # the cache is refreshed on commit
        receive_and_process(payment.gateway, pay_pix(capture, payment))

    done = api.get(f"/api/v1/payments/{payment.id}").json()
    assert (done["status"], done["next_action"], done["hosted"]) == (S.SUCCEEDED, None, True)


@pytest.mark.parametrize("body", [pix_body, card_body])
def test_hosted_without_a_return_url_is_a_400_on_return_url(api: Any, body: Any) -> None:
    response = post_payment(api, body(hosted=True))

    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert set(error) == {"type", "code", "message", "fields"}
    assert "return_url" in error["fields"]
    assert not Payment.objects.exists()


@pytest.mark.parametrize("value", ["true", 1, None])
def test_hosted_must_be_a_json_boolean(api: Any, value: Any) -> None:
    response = post_payment(api, pix_body(hosted=value, return_url=BACK))

    assert response.status_code == 400, response.content
    assert "hosted" in response.json()["error"]["fields"]


def test_hosted_false_needs_no_return_url(api: Any) -> None:
    response = post_payment(api, pix_body(hosted=False))

    assert response.status_code == 202, response.content
    assert response.json()["hosted"] is False


def test_a_hosted_card_payment_sends_3ds_back_to_the_hosted_return_page(
    hosted_card: Any, settings: LazySettings
) -> None:
    payment = hosted_card()

    request = charge_request_for(payment, "stripe")

    assert request.return_url == hosted_return_url(payment)
    assert request.return_url.startswith(
        f"{settings.PAYWAVE_PUBLIC_URL}/pay/{payment.id}/return?t="
    )
    assert token_of(request.return_url) == hosted_token(payment)


def test_a_card_payment_that_is_not_hosted_keeps_the_wallet_apps_return_url(
    card_payment: Any,
) -> None:
    payment = card_payment(return_url=BACK)

    assert charge_request_for(payment, "stripe").return_url == BACK
