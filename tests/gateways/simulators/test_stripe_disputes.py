"""Stripe disputes: opened and decided through /_sim, read and answered through the real SDK."""

from pathlib import Path
from typing import Any

import httpx
import pytest
import stripe

from gateways.simulators import SimulatorConfig, SimulatorServer
from tests.gateways.simulators.conftest import card_params

WEBHOOK_SECRET = "whsec_test_secret"
SEVEN_DAYS = 7 * 24 * 3600
STRIPE_AUTH = {"Authorization": "Bearer sk_test_x"}


def intent_params(payment_id: str, method: str = "pm_card_visa") -> Any:
    """PaymentIntent parameters (as the SDK's typed dict) carrying PayWave's payment id."""
    return card_params(method, metadata={"payment_id": payment_id})


def paid(sdk: stripe.StripeClient, payment_id: str = "pw_card_1") -> stripe.PaymentIntent:
    """A succeeded PaymentIntent for 10.50 BRL carrying PayWave's payment id."""
    intent = sdk.v1.payment_intents.create(params=intent_params(payment_id))
    assert intent.status == "succeeded"
    return intent


def open_dispute(control: httpx.Client, reference: str = "pw_card_1", **body: Any) -> Any:
    answer = control.post("/disputes", json={"reference": reference, **body})
    assert answer.status_code == 201, answer.text
    return answer.json()


def capture_callbacks(control: httpx.Client) -> None:
    """Callbacks are signed and logged with their body, not sent anywhere."""
    target = {"url": "capture://paywave/webhooks/stripe", "secret": WEBHOOK_SECRET}
    assert control.put("/callbacks/stripe", json=target).status_code == 200


def event_of(callback: dict[str, Any], secret: str = WEBHOOK_SECRET) -> Any:
    return stripe.Webhook.construct_event(
        callback["body"], callback["headers"]["Stripe-Signature"], secret
    )


def stripe_error(call: Any) -> stripe.StripeError:
    with pytest.raises(stripe.StripeError) as raised:
        call()
    return raised.value


# Opening.


def test_a_dispute_opens_on_a_paid_charge_as_stripe_renders_it(
    stripe_sdk: stripe.StripeClient, control: httpx.Client
) -> None:
    intent = paid(stripe_sdk)

    opened = open_dispute(control, amount=500, reason="product_not_received")

    assert opened["id"].startswith("dp_")
    assert (opened["gateway"], opened["charge"]) == ("stripe", intent.id)
    dispute = stripe_sdk.v1.disputes.retrieve(opened["id"])
    assert isinstance(dispute, stripe.Dispute)
    assert dispute.to_dict() == opened["dispute"]
    assert (dispute.object, dispute.status, dispute.reason) == (
        "dispute",
        "needs_response",
        "product_not_received",
    )
    assert (dispute.amount, dispute.currency) == (500, "brl")
    assert (dispute.charge, dispute.payment_intent) == (intent.latest_charge, intent.id)
    assert dispute.evidence.uncategorized_text is None
    assert dispute.evidence_details.to_dict() == {
        "due_by": dispute.created + SEVEN_DAYS,
        "has_evidence": False,
        "past_due": False,
        "submission_count": 0,
    }
    assert (dispute.is_charge_refundable, dispute.livemode) == (False, False)
    assert (dispute.metadata.to_dict(), dispute.balance_transactions) == ({}, [])
    charge = stripe_sdk.v1.payment_intents.retrieve(
        intent.id, params={"expand": ["latest_charge"]}
    ).latest_charge
    assert isinstance(charge, stripe.Charge)
    assert charge.disputed is True


def test_a_disputes_charge_and_intent_expand_when_asked(
    stripe_sdk: stripe.StripeClient, control: httpx.Client
) -> None:
    intent = paid(stripe_sdk)
    opened = open_dispute(control)

    retrieved = stripe_sdk.v1.disputes.retrieve(
        opened["id"], params={"expand": ["charge", "payment_intent"]}
    )
    [listed] = stripe_sdk.v1.disputes.list(params={"expand": ["data.charge"]}).data

    assert isinstance(retrieved.charge, stripe.Charge)
    assert isinstance(retrieved.payment_intent, stripe.PaymentIntent)
    assert (retrieved.charge.id, retrieved.payment_intent.id) == (intent.latest_charge, intent.id)
    assert isinstance(listed.charge, stripe.Charge)
    assert listed.payment_intent == intent.id


def test_the_amount_defaults_to_what_is_left_after_refunds(
    stripe_sdk: stripe.StripeClient, control: httpx.Client
) -> None:
    intent = paid(stripe_sdk)
    stripe_sdk.v1.refunds.create(params={"payment_intent": intent.id, "amount": 300})

    too_much = control.post("/disputes", json={"reference": "pw_card_1", "amount": 751})
    opened = open_dispute(control)

    assert too_much.status_code == 400
    assert "750" in too_much.json()["error"]
    assert (opened["dispute"]["amount"], opened["dispute"]["reason"]) == (750, "fraudulent")


def test_a_charge_refunded_in_full_cannot_be_disputed(
    stripe_sdk: stripe.StripeClient, control: httpx.Client
) -> None:
    intent = paid(stripe_sdk)
    stripe_sdk.v1.refunds.create(params={"payment_intent": intent.id})

    answer = control.post("/disputes", json={"reference": "pw_card_1"})

    assert answer.status_code == 400


def test_only_a_paid_charge_can_be_disputed(
    stripe_sdk: stripe.StripeClient, control: httpx.Client
) -> None:
    with pytest.raises(stripe.CardError):
        stripe_sdk.v1.payment_intents.create(
            params=intent_params("pw_declined", "pm_card_chargeDeclined")
        )
    stripe_sdk.v1.payment_intents.create(
        params=intent_params("pw_3ds", "pm_card_authenticationRequired")
    )

    for reference in ("pw_declined", "pw_3ds", "pw_unknown"):
        answer = control.post("/disputes", json={"reference": reference})
        assert answer.status_code == 404, reference


def test_one_dispute_per_charge(stripe_sdk: stripe.StripeClient, control: httpx.Client) -> None:
    paid(stripe_sdk)
    open_dispute(control, amount=100)

    again = control.post("/disputes", json={"reference": "pw_card_1", "amount": 100})

    assert again.status_code == 409


def test_the_newest_paid_intent_of_a_payment_is_the_one_disputed(
    stripe_sdk: stripe.StripeClient, control: httpx.Client
) -> None:
    paid(stripe_sdk)
    newer = paid(stripe_sdk)

    assert open_dispute(control)["charge"] == newer.id


def test_opening_sends_a_signed_charge_dispute_created_event(
    stripe_sdk: stripe.StripeClient, control: httpx.Client
) -> None:
    capture_callbacks(control)
    intent = paid(stripe_sdk)

    opened = open_dispute(control)

    callback = opened["callback"]
    assert callback["event"] == "charge.dispute.created"
    event = event_of(callback)
    assert event.type == "charge.dispute.created"
    assert event.id.startswith("evt_")
    assert event.data.object.to_dict() == opened["dispute"]
    assert event.data.object.payment_intent == intent.id
    with pytest.raises(stripe.SignatureVerificationError):
        event_of(callback, "whsec_wrong")


# Closing: the card network decides.


def test_closing_won_then_again_is_refused(
    stripe_sdk: stripe.StripeClient, control: httpx.Client
) -> None:
    capture_callbacks(control)
    paid(stripe_sdk)
    opened = open_dispute(control)

    closed = control.post(f"/disputes/{opened['id']}/close", json={"outcome": "won"})
    again = control.post(f"/disputes/{opened['id']}/close", json={"outcome": "lost"})

    assert closed.status_code == 200
    assert closed.json()["dispute"]["status"] == "won"
    event = event_of(closed.json()["callback"])
    assert (event.type, event.data.object.status) == ("charge.dispute.closed", "won")
    assert event.id != event_of(opened["callback"]).id
    assert stripe_sdk.v1.disputes.retrieve(opened["id"]).status == "won"
    assert again.status_code == 409
    assert stripe_sdk.v1.disputes.retrieve(opened["id"]).status == "won"


def test_closing_lost(stripe_sdk: stripe.StripeClient, control: httpx.Client) -> None:
    paid(stripe_sdk)
    opened = open_dispute(control)

    closed = control.post(f"/disputes/{opened['id']}/close", json={"outcome": "lost"})

    assert closed.json()["dispute"]["status"] == "lost"
    assert stripe_sdk.v1.disputes.retrieve(opened["id"]).status == "lost"


def test_an_inquiry_is_a_warning_and_closes_as_warning_closed(
    stripe_sdk: stripe.StripeClient, control: httpx.Client
) -> None:
    paid(stripe_sdk, "pw_won")
    paid(stripe_sdk, "pw_lost")
    won = open_dispute(control, "pw_won", kind="inquiry")
    lost = open_dispute(control, "pw_lost", kind="inquiry")

    control.post(f"/disputes/{won['id']}/close", json={"outcome": "won"})
    control.post(f"/disputes/{lost['id']}/close", json={"outcome": "lost"})

    assert won["dispute"]["status"] == "warning_needs_response"
    assert stripe_sdk.v1.disputes.retrieve(won["id"]).status == "warning_closed"
    assert stripe_sdk.v1.disputes.retrieve(lost["id"]).status == "lost"


def test_closing_an_unknown_dispute_is_404(control: httpx.Client) -> None:
    answer = control.post("/disputes/dp_unknown/close", json={"outcome": "won"})

    assert answer.status_code == 404


# The merchant's side: evidence, acceptance.


def test_submitted_evidence_puts_the_dispute_under_review(
    stripe_sdk: stripe.StripeClient, control: httpx.Client
) -> None:
    capture_callbacks(control)
    paid(stripe_sdk)
    opened = open_dispute(control)

    staged = stripe_sdk.v1.disputes.update(
        opened["id"], params={"evidence": {"uncategorized_text": "Shipped, tracking BR123"}}
    )
    submitted = stripe_sdk.v1.disputes.update(
        opened["id"], params={"submit": True, "metadata": {"case": "42"}}
    )

    assert (staged.status, staged.evidence_details.has_evidence) == ("needs_response", True)
    assert staged.evidence_details.submission_count == 0
    assert submitted.status == "under_review"
    assert submitted.evidence.uncategorized_text == "Shipped, tracking BR123"
    assert submitted.evidence_details.submission_count == 1
    assert submitted.metadata.to_dict() == {"case": "42"}
    callbacks = control.get("/callbacks/deliveries", params={"gateway": "stripe"}).json()
    events = [event_of(callback) for callback in callbacks]
    assert [event.type for event in events] == [
        "charge.dispute.created",
        "charge.dispute.updated",
        "charge.dispute.updated",
    ]
    assert events[-1].data.object.status == "under_review"
    assert len({event.id for event in events}) == 3


def test_an_inquiry_answered_is_a_warning_under_review(
    stripe_sdk: stripe.StripeClient, control: httpx.Client
) -> None:
    paid(stripe_sdk)
    opened = open_dispute(control, kind="inquiry")

    answered = stripe_sdk.v1.disputes.update(
        opened["id"], params={"evidence": {"uncategorized_text": "ok"}, "submit": True}
    )

    assert answered.status == "warning_under_review"


def test_submitted_evidence_cannot_be_changed_but_metadata_can(
    stripe_sdk: stripe.StripeClient, control: httpx.Client
) -> None:
    paid(stripe_sdk)
    opened = open_dispute(control)
    stripe_sdk.v1.disputes.update(
        opened["id"], params={"evidence": {"uncategorized_text": "first"}, "submit": True}
    )

    refused = stripe_error(
        lambda: stripe_sdk.v1.disputes.update(
            opened["id"], params={"evidence": {"uncategorized_text": "second"}}
        )
    )
    tagged = stripe_sdk.v1.disputes.update(opened["id"], params={"metadata": {"k": "v"}})

    assert isinstance(refused, stripe.InvalidRequestError)
    assert refused.http_status == 400
    assert (tagged.evidence.uncategorized_text, tagged.metadata.k) == ("first", "v")


def test_a_closed_dispute_cannot_be_updated_or_closed(
    stripe_sdk: stripe.StripeClient, control: httpx.Client
) -> None:
    paid(stripe_sdk)
    opened = open_dispute(control)
    control.post(f"/disputes/{opened['id']}/close", json={"outcome": "won"})

    updated = stripe_error(lambda: stripe_sdk.v1.disputes.update(opened["id"], params={}))
    closed = stripe_error(lambda: stripe_sdk.v1.disputes.close(opened["id"]))

    for refused in (updated, closed):
        assert isinstance(refused, stripe.InvalidRequestError)
        assert refused.http_status == 400
        assert refused.error is not None
        assert refused.error.type == "invalid_request_error"


def test_accepting_a_dispute_loses_it_with_a_closed_event(
    stripe_sdk: stripe.StripeClient, control: httpx.Client
) -> None:
    capture_callbacks(control)
    paid(stripe_sdk)
    opened = open_dispute(control)

    accepted = stripe_sdk.v1.disputes.close(opened["id"])

    assert accepted.status == "lost"
    *_, callback = control.get("/callbacks/deliveries").json()
    event = event_of(callback)
    assert (event.type, event.data.object.status) == ("charge.dispute.closed", "lost")
    assert control.post(f"/disputes/{opened['id']}/close", json={"outcome": "won"}).status_code == (
        409
    )


def test_an_unknown_dispute_is_resource_missing(stripe_sdk: stripe.StripeClient) -> None:
    calls = [
        lambda: stripe_sdk.v1.disputes.retrieve("dp_unknown"),
        lambda: stripe_sdk.v1.disputes.update("dp_unknown", params={"submit": True}),
        lambda: stripe_sdk.v1.disputes.close("dp_unknown"),
    ]
    for call in calls:
        missing = stripe_error(call)
        assert isinstance(missing, stripe.InvalidRequestError)
        assert (missing.http_status, missing.code) == (404, "resource_missing")
        assert "No such dispute: 'dp_unknown'" in str(missing.user_message)


def test_an_unknown_evidence_field_is_refused(
    stripe_sdk: stripe.StripeClient, control: httpx.Client
) -> None:
    paid(stripe_sdk)
    opened = open_dispute(control)

    unknown: Any = {"evidence": {"mood": "sad"}}

    refused = stripe_error(lambda: stripe_sdk.v1.disputes.update(opened["id"], params=unknown))

    assert (refused.http_status, refused.code) == (400, "parameter_unknown")


# Refunds cannot race a dispute.


def test_a_refund_is_refused_while_disputed_and_allowed_once_won(
    stripe_sdk: stripe.StripeClient, control: httpx.Client
) -> None:
    intent = paid(stripe_sdk)
    opened = open_dispute(control, amount=500)

    refused = stripe_error(
        lambda: stripe_sdk.v1.refunds.create(params={"payment_intent": intent.id, "amount": 100})
    )
    control.post(f"/disputes/{opened['id']}/close", json={"outcome": "won"})
    refund = stripe_sdk.v1.refunds.create(params={"payment_intent": intent.id, "amount": 100})

    assert isinstance(refused, stripe.InvalidRequestError)
    assert (refused.http_status, refused.code) == (400, "charge_disputed")
    assert refund.status == "succeeded"


def test_a_refund_is_refused_once_the_dispute_is_lost(
    stripe_sdk: stripe.StripeClient, control: httpx.Client
) -> None:
    intent = paid(stripe_sdk)
    opened = open_dispute(control, amount=500)
    control.post(f"/disputes/{opened['id']}/close", json={"outcome": "lost"})

    refused = stripe_error(
        lambda: stripe_sdk.v1.refunds.create(params={"payment_intent": intent.id, "amount": 100})
    )

    assert refused.code == "charge_disputed"


# Listing.


def test_disputes_list_newest_first_in_pages(
    stripe_sdk: stripe.StripeClient, control: httpx.Client
) -> None:
    intents = [paid(stripe_sdk, f"pw_{n}") for n in range(3)]
    opened = [open_dispute(control, f"pw_{n}")["id"] for n in range(3)]

    first = stripe_sdk.v1.disputes.list(params={"limit": 2})
    second = stripe_sdk.v1.disputes.list(params={"limit": 2, "starting_after": first.data[-1].id})
    every = list(stripe_sdk.v1.disputes.list(params={"limit": 1}).auto_paging_iter())
    by_intent = stripe_sdk.v1.disputes.list(params={"payment_intent": intents[1].id})
    by_charge = stripe_sdk.v1.disputes.list(params={"charge": str(intents[2].latest_charge)})

    assert ([d.id for d in first.data], first.has_more) == (opened[:0:-1], True)
    assert ([d.id for d in second.data], second.has_more) == ([opened[0]], False)
    assert first.url == "/v1/disputes"
    assert [d.id for d in every] == opened[::-1]
    assert [d.id for d in by_intent.data] == [opened[1]]
    assert [d.id for d in by_charge.data] == [opened[2]]
    assert stripe_sdk.v1.disputes.list(params={"payment_intent": "pi_none"}).data == []


def test_disputes_list_by_creation_time(
    stripe_sdk: stripe.StripeClient, control: httpx.Client
) -> None:
    paid(stripe_sdk)
    dispute = open_dispute(control)["dispute"]
    created = dispute["created"]

    def listed(bounds: Any) -> list[str]:
        return [d.id for d in stripe_sdk.v1.disputes.list(params={"created": bounds}).data]

    assert listed({"gte": created}) == [dispute["id"]]
    assert listed({"lte": created, "gt": created - 1}) == [dispute["id"]]
    assert listed({"gt": created}) == []
    assert listed({"lt": created}) == []


def test_disputes_list_refuses_a_bad_limit_or_time(stripe_sdk: stripe.StripeClient) -> None:
    for params in ({"limit": 0}, {"limit": 101}, {"created": {"gte": "soon"}}):
        refused = stripe_error(lambda params=params: stripe_sdk.v1.disputes.list(params=params))
        assert refused.http_status == 400, params


def test_disputes_survive_a_restart(tmp_path: Path) -> None:
    config = SimulatorConfig(hang_ms=200, state_file=str(tmp_path / "state.db"))
    with SimulatorServer("127.0.0.1", 0, config=config) as server, stripe_http(server) as http:
        http.post(
            "/stripe/v1/payment_intents",
            data={
                "amount": "1050",
                "currency": "brl",
                "payment_method": "pm_card_visa",
                "confirm": "true",
                "metadata[payment_id]": "pw_kept",
            },
        ).raise_for_status()
        opened = http.post("/_sim/disputes", json={"reference": "pw_kept"}).json()
        http.post(
            f"/stripe/v1/disputes/{opened['id']}",
            data={"evidence[uncategorized_text]": "kept", "submit": "true"},
        ).raise_for_status()

    with SimulatorServer("127.0.0.1", 0, config=config) as server, stripe_http(server) as http:
        dispute = http.get(f"/stripe/v1/disputes/{opened['id']}").json()
        closed = http.post(f"/_sim/disputes/{opened['id']}/close", json={"outcome": "won"})

    assert (dispute["status"], dispute["evidence"]["uncategorized_text"]) == (
        "under_review",
        "kept",
    )
    assert closed.status_code == 200


def stripe_http(server: SimulatorServer) -> httpx.Client:
    return httpx.Client(base_url=server.base_url, headers=STRIPE_AUTH, timeout=10)
