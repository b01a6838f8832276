"""The `refund_status` fault: refunds answered pending or failed, in each gateway's words.

A refund made while it is "pending" stays so while it is; read back later (Stripe's
GET /v1/refunds/{id}, Mercado Pago's payment or refund, Efí's devolução or a repeated
PUT of it) it ends as the fault then says. A repeated create with the same key at
Stripe or Mercado Pago replays the first answer, as the real APIs do.
"""

from typing import Any

import httpx
import mercadopago
import pytest
import stripe
from gerencianet import Gerencianet

from gateways.simulators.gerencianet import DEVOLUTION_REFUSED
from gateways.simulators.stripe import REFUND_FAILURE_REASON
from tests.gateways.simulators.conftest import card_params, cob_body, mp_options, pix_payment

TXID = "Refund0123456789abcdefABCDEF012"


def refund_records(control: httpx.Client, gateway: str) -> list[tuple[int, str]]:
    records = control.get("/refunds", params={"gateway": gateway}).json()
    return [(r["amount"], r["status"]) for r in records]


def charge_refunded(control: httpx.Client, gateway: str) -> int:
    [charge] = control.get("/charges", params={"gateway": gateway}).json()
    return charge["amount_refunded"]


def test_the_fault_is_set_shown_and_checked(control: httpx.Client) -> None:
    assert control.get("/faults/stripe").json()["refund_status"] == "succeeded"
    answer = control.put("/faults/mercadopago", json={"refund_status": "pending"})
    assert answer.json()["refund_status"] == "pending"

    refused = control.put("/faults/stripe", json={"refund_status": "lost"})

    assert refused.status_code == 400
    assert refused.json() == {"error": "refund_status must be one of succeeded, pending, failed"}
    control.delete("/faults/mercadopago")
    assert control.get("/faults/mercadopago").json()["refund_status"] == "succeeded"


def test_stripe_pending_refund_replays_pending_and_reads_back_succeeded(
    stripe_sdk: stripe.StripeClient, control: httpx.Client
) -> None:
    intent = stripe_sdk.v1.payment_intents.create(params=card_params())
    control.put("/faults/stripe", json={"refund_status": "pending"})
    params = {"payment_intent": intent.id, "amount": 50}

    refund = stripe_sdk.v1.refunds.create(params=params, options={"idempotency_key": "r1"})
    replay = stripe_sdk.v1.refunds.create(params=params, options={"idempotency_key": "r1"})
    still = stripe_sdk.v1.refunds.retrieve(refund.id)
    with pytest.raises(stripe.InvalidRequestError) as too_much:  # a pending refund counts
        stripe_sdk.v1.refunds.create(params={"payment_intent": intent.id, "amount": 1001})
    control.delete("/faults/stripe")
    replay_after = stripe_sdk.v1.refunds.create(params=params, options={"idempotency_key": "r1"})
    settled = stripe_sdk.v1.refunds.retrieve(refund.id)

    assert (refund.status, refund.amount) == ("pending", 50)
    assert (replay.id, replay.status) == (refund.id, "pending")
    assert still.status == "pending"
    assert too_much.value.code == "amount_too_large"
    assert (replay_after.id, replay_after.status) == (refund.id, "pending")  # the saved answer
    assert (settled.id, settled.status) == (refund.id, "succeeded")
    assert refund_records(control, "stripe") == [(50, "succeeded")]
    assert charge_refunded(control, "stripe") == 50


def test_stripe_failed_refund_gives_the_amount_back(
    stripe_sdk: stripe.StripeClient, control: httpx.Client
) -> None:
    intent = stripe_sdk.v1.payment_intents.create(params=card_params())
    control.put("/faults/stripe", json={"refund_status": "failed"})

    failed = stripe_sdk.v1.refunds.create(params={"payment_intent": intent.id})
    control.put("/faults/stripe", json={"refund_status": "pending"})
    pending = stripe_sdk.v1.refunds.create(params={"payment_intent": intent.id, "amount": 1050})
    control.put("/faults/stripe", json={"refund_status": "failed"})
    failed_later = stripe_sdk.v1.refunds.retrieve(pending.id)
    control.delete("/faults/stripe")
    whole = stripe_sdk.v1.refunds.create(params={"payment_intent": intent.id})

    assert (failed.status, failed.amount) == ("failed", 1050)
    assert failed.failure_reason == REFUND_FAILURE_REASON == "expired_or_canceled_card"
    assert failed.failure_balance_transaction.startswith("txn_")
    assert pending.status == "pending"  # the failed one took nothing
    assert (failed_later.status, failed_later.failure_reason) == ("failed", REFUND_FAILURE_REASON)
    assert (whole.status, whole.amount) == ("succeeded", 1050)  # neither took anything
    assert refund_records(control, "stripe") == [
        (1050, "failed"),
        (1050, "failed"),
        (1050, "succeeded"),
    ]
    assert charge_refunded(control, "stripe") == 1050


def paid_mp_payment(mp_sdk: mercadopago.SDK, control: httpx.Client) -> dict[str, Any]:
    payment = mp_sdk.payment().create(pix_payment(), mp_options("p1"))["response"]
    control.post(f"/pix/{payment['id']}/pay")
    return payment


def test_mercadopago_refund_in_process_then_approved_when_read_back(
    mp_sdk: mercadopago.SDK, control: httpx.Client
) -> None:
    payment = paid_mp_payment(mp_sdk, control)
    control.put("/faults/mercadopago", json={"refund_status": "pending"})

    refund = mp_sdk.refund().create(payment["id"], {"amount": 2.25}, mp_options("r1"))["response"]
    waiting = mp_sdk.refund().get(payment["id"], refund["id"], mp_options())["response"]
    over = mp_sdk.refund().create(payment["id"], {"amount": 8.26}, mp_options("r2"))
    unchanged = mp_sdk.payment().get(payment["id"], mp_options())["response"]
    control.delete("/faults/mercadopago")
    replay = mp_sdk.refund().create(payment["id"], {"amount": 2.25}, mp_options("r1"))
    approved = mp_sdk.refund().get(payment["id"], refund["id"], mp_options())["response"]
    settled = mp_sdk.payment().get(payment["id"], mp_options())["response"]

    assert (refund["status"], refund["amount"], refund["amount_refunded_to_payer"]) == (
        "in_process",
        2.25,
        0,
    )
    assert waiting["status"] == "in_process"
    assert over["status"] == 400  # the refund in process takes its amount
    assert (unchanged["status_detail"], unchanged["transaction_amount_refunded"]) == (
        "accredited",
        0,
    )
    assert replay["response"]["status"] == "in_process"  # the saved answer
    assert (approved["status"], approved["amount_refunded_to_payer"]) == ("approved", 2.25)
    assert (settled["status"], settled["status_detail"]) == ("approved", "partially_refunded")
    assert settled["transaction_amount_refunded"] == 2.25
    assert [r["status"] for r in settled["refunds"]] == ["approved"]
    assert refund_records(control, "mercadopago") == [(225, "approved")]
    assert charge_refunded(control, "mercadopago") == 225


def test_mercadopago_refund_rejected_takes_nothing(
    mp_sdk: mercadopago.SDK, control: httpx.Client
) -> None:
    payment = paid_mp_payment(mp_sdk, control)
    control.put("/faults/mercadopago", json={"refund_status": "failed"})

    rejected = mp_sdk.refund().create(payment["id"], None, mp_options("r1"))["response"]
    control.put("/faults/mercadopago", json={"refund_status": "pending"})
    pending = mp_sdk.refund().create(payment["id"], None, mp_options("r2"))["response"]
    control.put("/faults/mercadopago", json={"refund_status": "failed"})
    listed = mp_sdk.refund().list_all(payment["id"], mp_options())["response"]
    control.delete("/faults/mercadopago")
    whole = mp_sdk.refund().create(payment["id"], None, mp_options("r3"))["response"]
    refunded = mp_sdk.payment().get(payment["id"], mp_options())["response"]

    assert (rejected["status"], rejected["amount"], rejected["amount_refunded_to_payer"]) == (
        "rejected",
        10.5,
        0,
    )
    assert pending["status"] == "in_process"
    assert [r["status"] for r in listed] == ["rejected", "rejected"]
    assert whole["status"] == "approved"
    assert (refunded["status"], refunded["transaction_amount_refunded"]) == ("refunded", 10.5)
    assert refund_records(control, "mercadopago") == [
        (1050, "rejected"),
        (1050, "rejected"),
        (1050, "approved"),
    ]


def paid_pix(gn_sdk: Gerencianet, control: httpx.Client) -> str:
    gn_sdk.pix_create_charge(params={"txid": TXID}, body=cob_body())
    return control.post(f"/pix/{TXID}/pay").json()["charge"]["pix"][0]["endToEndId"]


def test_efi_devolution_in_processing_then_returned_when_read_back(
    gn_sdk: Gerencianet, control: httpx.Client
) -> None:
    e2e = paid_pix(gn_sdk, control)
    control.put("/faults/gerencianet", json={"refund_status": "pending"})

    def ask() -> dict[str, Any]:  # the SDK consumes its params
        return gn_sdk.pix_devolution(params={"e2eId": e2e, "id": "dev1"}, body={"valor": "2.34"})

    first = ask()
    repeat = ask()
    over = gn_sdk.pix_devolution(params={"e2eId": e2e, "id": "dev2"}, body={"valor": "10.01"})
    control.delete("/faults/gerencianet")
    returned = ask()  # the same id: the devolução as it is now
    read = gn_sdk.pix_devolution_get(params={"e2eId": e2e, "id": "dev1"})

    assert (first["status"], first["valor"], first["horario"]) == (
        "EM_PROCESSAMENTO",
        "2.34",
        {"solicitacao": first["horario"]["solicitacao"]},  # not settled: no liquidacao
    )
    assert repeat == first
    assert over["status"] == 400  # the devolução in processing takes its valor
    assert (returned["status"], returned["rtrId"]) == ("DEVOLVIDO", first["rtrId"])
    assert "liquidacao" in returned["horario"]
    assert read == returned
    assert refund_records(control, "gerencianet") == [(234, "DEVOLVIDO")]
    assert charge_refunded(control, "gerencianet") == 234


def test_efi_devolution_not_made_says_why_and_takes_nothing(
    gn_sdk: Gerencianet, control: httpx.Client
) -> None:
    e2e = paid_pix(gn_sdk, control)
    control.put("/faults/gerencianet", json={"refund_status": "failed"})

    refused = gn_sdk.pix_devolution(params={"e2eId": e2e, "id": "dev1"}, body={"valor": "12.34"})
    control.put("/faults/gerencianet", json={"refund_status": "pending"})
    gn_sdk.pix_devolution(params={"e2eId": e2e, "id": "dev2"}, body={"valor": "12.34"})
    control.put("/faults/gerencianet", json={"refund_status": "failed"})
    refused_later = gn_sdk.pix_devolution_get(params={"e2eId": e2e, "id": "dev2"})
    control.delete("/faults/gerencianet")
    whole = gn_sdk.pix_devolution(params={"e2eId": e2e, "id": "dev3"}, body={"valor": "12.34"})

    assert (refused["status"], refused["motivo"]) == ("NAO_REALIZADO", DEVOLUTION_REFUSED)
    assert "liquidacao" not in refused["horario"]
    assert (refused_later["status"], refused_later["motivo"]) == (
        "NAO_REALIZADO",
        DEVOLUTION_REFUSED,
    )
    assert whole["status"] == "DEVOLVIDO"
    assert refund_records(control, "gerencianet") == [
        (1234, "NAO_REALIZADO"),
        (1234, "NAO_REALIZADO"),
        (1234, "DEVOLVIDO"),
    ]
    assert charge_refunded(control, "gerencianet") == 1234
