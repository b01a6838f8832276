"""Many clients at once: every charge recorded exactly once."""

from concurrent.futures import ThreadPoolExecutor

import httpx
import mercadopago
import stripe
from gerencianet import Gerencianet

from tests.gateways.simulators.conftest import card_params, cob_body, mp_options, pix_payment

THREADS = 20


def test_distinct_keys_from_20_threads_are_all_recorded(
    stripe_sdk: stripe.StripeClient, mp_sdk: mercadopago.SDK, control: httpx.Client
) -> None:
    def charge(index: int) -> tuple[str, str]:
        intent = stripe_sdk.v1.payment_intents.create(
            params=card_params(metadata={"payment_id": f"pw_{index}"}),
            options={"idempotency_key": f"card-{index}"},
        )
        answer = mp_sdk.payment().create(pix_payment(f"pw_{index}"), mp_options(f"pix-{index}"))
        return intent.id, str(answer["response"]["id"])

    with ThreadPoolExecutor(THREADS) as pool:
        ids = list(pool.map(charge, range(THREADS)))

    records = control.get("/charges").json()
    assert len(records) == 2 * THREADS
    assert {r["id"] for r in records} == {i for pair in ids for i in pair}
    assert {r["reference"] for r in records} == {f"pw_{i}" for i in range(THREADS)}


def test_one_key_from_20_threads_is_one_charge(
    stripe_sdk: stripe.StripeClient, gn_sdk: Gerencianet, control: httpx.Client
) -> None:
    txid = "Same0123456789abcdefABCDEF01234"

    def charge(_: int) -> tuple[str, str]:
        intent = stripe_sdk.v1.payment_intents.create(
            params=card_params(), options={"idempotency_key": "shared"}
        )
        cob = gn_sdk.pix_create_charge(params={"txid": txid}, body=cob_body())
        return intent.id, cob["txid"]

    with ThreadPoolExecutor(THREADS) as pool:
        results = set(pool.map(charge, range(THREADS)))

    assert len(results) == 1
    assert len(control.get("/charges", params={"gateway": "stripe"}).json()) == 1
    assert len(control.get("/charges", params={"gateway": "gerencianet"}).json()) == 1
