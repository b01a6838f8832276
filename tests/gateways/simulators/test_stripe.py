"""The Stripe simulator through the real stripe SDK."""

import httpx
import pytest
import stripe

from gateways.simulators import SimulatorServer
from tests.gateways.simulators.conftest import CallbackReceiver, card_params, stripe_client

WEBHOOK_SECRET = "whsec_test_secret"


def test_card_charge_succeeds_with_brand_and_last4(
    stripe_sdk: stripe.StripeClient, control: httpx.Client
) -> None:
    intent = stripe_sdk.v1.payment_intents.create(
        params=card_params(), options={"idempotency_key": "key-1"}
    )

    assert isinstance(intent, stripe.PaymentIntent)
    assert intent.status == "succeeded"
    assert intent.amount_received == 1050
    assert intent.payment_method.card.brand == "visa"
    assert intent.payment_method.card.last4 == "4242"
    assert intent.latest_charge.startswith("ch_")
    [record] = control.get("/charges", params={"gateway": "stripe"}).json()
    del record["created_at"]
    assert record == {
        "gateway": "stripe",
        "id": intent.id,
        "idempotency_key": "key-1",
        "reference": "pw_card_1",
        "amount": 1050,
        "currency": "BRL",
        "status": "succeeded",
        "amount_refunded": 0,
    }


def test_retrieve_expands_only_when_asked(stripe_sdk: stripe.StripeClient) -> None:
    created = stripe_sdk.v1.payment_intents.create(params=card_params(expand=[]))

    plain = stripe_sdk.v1.payment_intents.retrieve(created.id)
    expanded = stripe_sdk.v1.payment_intents.retrieve(
        created.id, params={"expand": ["payment_method", "latest_charge"]}
    )

    assert isinstance(plain.payment_method, str)
    assert isinstance(expanded.payment_method, stripe.PaymentMethod)
    assert expanded.latest_charge.payment_method_details.card.last4 == "4242"


def test_repeated_idempotency_key_replays_and_records_once(
    stripe_sdk: stripe.StripeClient, control: httpx.Client
) -> None:
    first = stripe_sdk.v1.payment_intents.create(
        params=card_params(), options={"idempotency_key": "same"}
    )
    second = stripe_sdk.v1.payment_intents.create(
        params=card_params(), options={"idempotency_key": "same"}
    )

    assert second.id == first.id
    assert second.last_response.headers["Idempotent-Replayed"] == "true"
    assert len(control.get("/charges", params={"reference": "pw_card_1"}).json()) == 1


def test_same_key_with_other_parameters_is_an_idempotency_error(
    stripe_sdk: stripe.StripeClient,
) -> None:
    stripe_sdk.v1.payment_intents.create(params=card_params(), options={"idempotency_key": "k"})

    with pytest.raises(stripe.IdempotencyError) as caught:
        stripe_sdk.v1.payment_intents.create(
            params=card_params(amount=999), options={"idempotency_key": "k"}
        )
    assert caught.value.http_status == 400


def test_declined_card_is_a_402_card_error_carrying_the_intent(
    stripe_sdk: stripe.StripeClient, control: httpx.Client
) -> None:
    with pytest.raises(stripe.CardError) as caught:
        stripe_sdk.v1.payment_intents.create(
            params=card_params("pm_card_chargeDeclined"), options={"idempotency_key": "d1"}
        )

    error = caught.value
    assert error.http_status == 402
    assert error.code == "card_declined"
    assert error.error.decline_code == "generic_decline"
    assert error.error.payment_intent.status == "requires_payment_method"
    assert error.error.payment_intent.last_payment_error.decline_code == "generic_decline"
    [record] = control.get("/charges").json()
    assert record["status"] == "requires_payment_method"
    assert record["id"] == error.error.payment_intent.id
    # The decline is saved for the key like any other answer.
    with pytest.raises(stripe.CardError):
        stripe_sdk.v1.payment_intents.create(
            params=card_params("pm_card_chargeDeclined"), options={"idempotency_key": "d1"}
        )
    assert len(control.get("/charges").json()) == 1


def test_insufficient_funds_decline_code(stripe_sdk: stripe.StripeClient) -> None:
    with pytest.raises(stripe.CardError) as caught:
        stripe_sdk.v1.payment_intents.create(
            params=card_params("pm_card_chargeDeclinedInsufficientFunds")
        )
    assert caught.value.error.decline_code == "insufficient_funds"


def test_unknown_payment_method_is_resource_missing(stripe_sdk: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError) as caught:
        stripe_sdk.v1.payment_intents.create(params=card_params("pm_card_nonsense"))
    assert caught.value.http_status == 400
    assert caught.value.code == "resource_missing"
    assert caught.value.param == "payment_method"


def test_missing_amount_is_parameter_missing(stripe_sdk: stripe.StripeClient) -> None:
    params = card_params()
    del params["amount"]
    with pytest.raises(stripe.InvalidRequestError) as caught:
        stripe_sdk.v1.payment_intents.create(params=params)
    assert caught.value.code == "parameter_missing"


def test_a_missing_or_live_key_is_an_authentication_error(sim: SimulatorServer) -> None:
    client = stripe.StripeClient(
        "sk_live_nope", base_addresses={"api": sim.base_url + "/stripe"}, max_network_retries=0
    )
    with pytest.raises(stripe.AuthenticationError) as caught:
        client.v1.balance.retrieve()
    assert caught.value.http_status == 401

    answer = httpx.get(sim.base_url + "/stripe/v1/balance")
    assert answer.status_code == 401
    assert answer.json()["error"]["type"] == "invalid_request_error"


def test_retrieve_unknown_intent_is_404(stripe_sdk: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError) as caught:
        stripe_sdk.v1.payment_intents.retrieve("pi_missing")
    assert caught.value.http_status == 404
    assert caught.value.code == "resource_missing"


def test_cancel_a_pending_intent_but_not_a_succeeded_one(
    stripe_sdk: stripe.StripeClient, control: httpx.Client
) -> None:
    pending = stripe_sdk.v1.payment_intents.create(
        params=card_params("pm_card_authenticationRequired")
    )
    succeeded = stripe_sdk.v1.payment_intents.create(params=card_params())

    canceled = stripe_sdk.v1.payment_intents.cancel(pending.id)

    assert canceled.status == "canceled"
    assert canceled.canceled_at is not None
    with pytest.raises(stripe.InvalidRequestError) as caught:
        stripe_sdk.v1.payment_intents.cancel(succeeded.id)
    assert caught.value.code == "payment_intent_unexpected_state"
    statuses = {c["id"]: c["status"] for c in control.get("/charges").json()}
    assert statuses == {pending.id: "canceled", succeeded.id: "succeeded"}


def test_partial_then_full_refund_then_over_refund(
    stripe_sdk: stripe.StripeClient, control: httpx.Client
) -> None:
    intent = stripe_sdk.v1.payment_intents.create(params=card_params())

    partial = stripe_sdk.v1.refunds.create(
        params={"payment_intent": intent.id, "amount": 50}, options={"idempotency_key": "r1"}
    )
    again = stripe_sdk.v1.refunds.create(
        params={"payment_intent": intent.id, "amount": 50}, options={"idempotency_key": "r1"}
    )
    with pytest.raises(stripe.InvalidRequestError) as too_much:
        stripe_sdk.v1.refunds.create(params={"payment_intent": intent.id, "amount": 5000})
    rest = stripe_sdk.v1.refunds.create(params={"payment_intent": intent.id})
    with pytest.raises(stripe.InvalidRequestError) as already:
        stripe_sdk.v1.refunds.create(params={"payment_intent": intent.id, "amount": 1})

    assert isinstance(partial, stripe.Refund)
    assert (partial.status, partial.amount, partial.payment_intent) == ("succeeded", 50, intent.id)
    assert again.id == partial.id
    assert too_much.value.code == "amount_too_large"
    assert rest.amount == 1000
    assert already.value.code == "charge_already_refunded"
    refunds = control.get("/refunds", params={"charge_id": intent.id}).json()
    assert [r["amount"] for r in refunds] == [50, 1000]
    [record] = control.get("/charges").json()
    assert record["amount_refunded"] == 1050


def test_refund_of_an_unpaid_intent_is_refused(stripe_sdk: stripe.StripeClient) -> None:
    intent = stripe_sdk.v1.payment_intents.create(
        params=card_params("pm_card_authenticationRequired")
    )
    with pytest.raises(stripe.InvalidRequestError):
        stripe_sdk.v1.refunds.create(params={"payment_intent": intent.id})


def test_balance_is_a_cheap_authenticated_call(stripe_sdk: stripe.StripeClient) -> None:
    stripe_sdk.v1.payment_intents.create(params=card_params())

    balance = stripe_sdk.v1.balance.retrieve()

    assert isinstance(balance, stripe.Balance)
    assert balance.available[0].amount == 1050


def test_search_by_payment_id_metadata(stripe_sdk: stripe.StripeClient) -> None:
    wanted = stripe_sdk.v1.payment_intents.create(params=card_params())
    stripe_sdk.v1.payment_intents.create(params=card_params(metadata={"payment_id": "other"}))

    found = stripe_sdk.v1.payment_intents.search(
        params={"query": "metadata['payment_id']:'pw_card_1' AND status:'succeeded'"}
    )

    assert [intent.id for intent in found.data] == [wanted.id]


def test_3ds_then_authenticate_sends_a_signed_event(
    stripe_sdk: stripe.StripeClient, control: httpx.Client, receiver: CallbackReceiver
) -> None:
    control.put("/callbacks/stripe", json={"url": receiver.url + "/cb", "secret": WEBHOOK_SECRET})
    intent = stripe_sdk.v1.payment_intents.create(
        params=card_params("pm_card_authenticationRequired", return_url="https://app/return")
    )
    assert intent.status == "requires_action"
    assert intent.next_action.type == "redirect_to_url"
    assert intent.next_action.redirect_to_url.return_url == "https://app/return"
    assert intent.next_action.redirect_to_url.url.endswith(f"/_sim/card/{intent.id}/authenticate")

    answer = control.post(f"/card/{intent.id}/authenticate").json()

    assert answer["charge"]["status"] == "succeeded"
    assert answer["callback"]["delivered"] is True
    [callback] = receiver.requests
    event = stripe.Webhook.construct_event(
        callback.body, callback.headers["stripe-signature"], WEBHOOK_SECRET
    )
    assert event.type == "payment_intent.succeeded"
    assert event.data.object.id == intent.id
    assert event.data.object.metadata["payment_id"] == "pw_card_1"
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(
            callback.body, callback.headers["stripe-signature"], "whsec_wrong"
        )
    assert stripe_sdk.v1.payment_intents.retrieve(intent.id).status == "succeeded"
    assert control.get("/charges").json()[0]["status"] == "succeeded"
    # Only a requires_action intent can be authenticated.
    assert control.post(f"/card/{intent.id}/authenticate").status_code == 409


def test_failed_authentication_sends_payment_failed(
    stripe_sdk: stripe.StripeClient, control: httpx.Client, receiver: CallbackReceiver
) -> None:
    control.put("/callbacks/stripe", json={"url": receiver.url, "secret": WEBHOOK_SECRET})
    intent = stripe_sdk.v1.payment_intents.create(
        params=card_params("pm_card_authenticationRequired")
    )

    control.post(f"/card/{intent.id}/authenticate", json={"result": "fail"})

    event = stripe.Webhook.construct_event(
        receiver.requests[0].body, receiver.requests[0].headers["stripe-signature"], WEBHOOK_SECRET
    )
    assert event.type == "payment_intent.payment_failed"
    assert event.data.object.status == "requires_payment_method"


def test_the_3ds_page_redirects_to_return_url(
    sim: SimulatorServer, stripe_sdk: stripe.StripeClient
) -> None:
    intent = stripe_sdk.v1.payment_intents.create(
        params=card_params("pm_card_authenticationRequired", return_url="https://app/return")
    )
    url = intent.next_action.redirect_to_url.url

    page = httpx.get(url)
    submitted = httpx.post(url, data={"result": "succeed"})

    assert "<form" in page.text
    assert submitted.status_code == 303
    assert submitted.headers["location"] == (
        f"https://app/return?payment_intent={intent.id}&redirect_status=succeeded"
    )


def test_a_callback_that_fails_is_reported_not_raised(
    stripe_sdk: stripe.StripeClient, control: httpx.Client, receiver: CallbackReceiver
) -> None:
    receiver.status = 500
    control.put("/callbacks/stripe", json={"url": receiver.url, "secret": WEBHOOK_SECRET})
    intent = stripe_sdk.v1.payment_intents.create(
        params=card_params("pm_card_authenticationRequired")
    )

    answer = control.post(f"/card/{intent.id}/authenticate")

    assert answer.status_code == 200
    callback = answer.json()["callback"]
    assert (callback["delivered"], callback["status"]) == (False, 500)
    receiver.status = 200
    redelivered = control.post(f"/callbacks/deliveries/{callback['id']}/redeliver")
    assert redelivered.json()["delivered"] is True
    assert len(receiver.requests) == 2
    assert [d["delivered"] for d in control.get("/callbacks/deliveries").json()] == [False, True]


def test_a_callback_to_nowhere_is_reported(sim: SimulatorServer, control: httpx.Client) -> None:
    client = stripe_client(sim.base_url)
    control.put("/callbacks/stripe", json={"url": "http://127.0.0.1:9/nothing-listens"})
    intent = client.v1.payment_intents.create(params=card_params("pm_card_threeDSecure2Required"))

    callback = control.post(f"/card/{intent.id}/authenticate").json()["callback"]

    assert callback["delivered"] is False
    assert "refused" in callback["error"].lower()
