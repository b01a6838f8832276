"""Faults: latency, errors, timeouts and outages, per gateway and reproducible under a seed."""

import time

import httpx
import mercadopago
import pytest
import requests
import stripe
from gerencianet import Gerencianet

from gateways.pix.brcode import BRCodeError, parse
from gateways.simulators import SimulatorServer
from gateways.simulators._brcode import crc16
from tests.gateways.simulators.conftest import (
    HANG_MS,
    card_params,
    cob_body,
    mp_options,
    pix_payment,
    stripe_client,
)

TXID = "Fault0123456789abcdefABCDEF0123"


def test_error_rate_one_answers_500_in_each_gateways_shape_and_records_nothing(
    sim: SimulatorServer,
    control: httpx.Client,
    stripe_sdk: stripe.StripeClient,
    mp_sdk: mercadopago.SDK,
) -> None:
    for gateway in ("stripe", "mercadopago", "gerencianet"):
        assert control.put(f"/faults/{gateway}", json={"error_rate": 1.0}).status_code == 200

    with pytest.raises(stripe.APIError) as stripe_error:
        stripe_sdk.v1.payment_intents.create(params=card_params())
    mp_answer = mp_sdk.payment().create(pix_payment(), mp_options("k"))
    gn_answer = httpx.put(f"{sim.base_url}/gerencianet/v2/cob/{TXID}", json=cob_body())

    assert stripe_error.value.http_status == 500
    assert mp_answer["status"] == 500
    assert set(mp_answer["response"]) == {"message", "error", "status", "cause"}
    assert gn_answer.status_code == 500
    assert gn_answer.headers["content-type"] == "application/problem+json"
    assert control.get("/charges").json() == []
    assert control.get("/health").json() == {"ok": True}  # never faulted
    counts = control.get("/faults").json()["stripe"]["counts"]
    assert counts["error"] == 1


def test_timeout_records_the_charge_then_the_retry_replays_it(
    sim: SimulatorServer, control: httpx.Client
) -> None:
    control.put("/faults/stripe", json={"timeout_rate": 1.0, "hang_ms": HANG_MS})
    impatient = stripe_client(sim.base_url, timeout=0.3)

    started = time.monotonic()
    with pytest.raises(stripe.APIConnectionError):
        impatient.v1.payment_intents.create(
            params=card_params(), options={"idempotency_key": "slow-1"}
        )

    assert time.monotonic() - started < HANG_MS / 1000
    [recorded] = control.get("/charges", params={"reference": "pw_card_1"}).json()
    assert recorded["status"] == "succeeded"
    control.delete("/faults")
    retried = impatient.v1.payment_intents.create(
        params=card_params(), options={"idempotency_key": "slow-1"}
    )
    assert retried.id == recorded["id"]
    assert len(control.get("/charges").json()) == 1


def test_timeout_on_mercado_pago_is_a_read_timeout_after_recording(
    mp_sdk: mercadopago.SDK, control: httpx.Client
) -> None:
    control.put("/faults/mercadopago", json={"timeout_rate": 1})

    with pytest.raises(requests.exceptions.ReadTimeout):
        mp_sdk.payment().create(pix_payment(), mp_options("mp-slow", timeout=0.3))

    assert len(control.get("/charges", params={"gateway": "mercadopago"}).json()) == 1


def test_down_resets_the_connection(
    sim: SimulatorServer, control: httpx.Client, stripe_sdk: stripe.StripeClient
) -> None:
    control.put("/faults/stripe", json={"down": True})

    with pytest.raises(stripe.APIConnectionError):
        stripe_sdk.v1.balance.retrieve()
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(sim.base_url + "/stripe/v1/balance", timeout=5)
    # Other gateways and the control API are untouched.
    assert httpx.get(sim.base_url + "/mercadopago/users/me").status_code == 401
    assert control.get("/charges").status_code == 200


def test_down_as_503(control: httpx.Client, mp_sdk: mercadopago.SDK) -> None:
    control.put("/faults/mercadopago", json={"down": True, "down_mode": "503"})

    assert mp_sdk.user().get(mp_options())["status"] == 503


def test_latency_delays_only_that_gateway(sim: SimulatorServer, control: httpx.Client) -> None:
    # A whole second: the other gateway's answer must come well within it even on a busy
    # machine (the check is which gateway waits, not how fast the machine is).
    control.put("/faults/mercadopago", json={"latency_ms": 1000})

    started = time.monotonic()
    httpx.get(sim.base_url + "/mercadopago/users/me", headers={"Authorization": "Bearer t"})
    slow = time.monotonic() - started
    started = time.monotonic()
    httpx.get(sim.base_url + "/stripe/v1/balance", headers={"Authorization": "Bearer sk_test_x"})
    control.get("/faults")
    fast = time.monotonic() - started

    assert slow >= 1.0
    assert fast < 1.0


def _statuses(sim: SimulatorServer, count: int = 30) -> list[int]:
    headers = {"Authorization": "Bearer sk_test_x"}
    with httpx.Client(base_url=sim.base_url, headers=headers) as client:
        return [client.get("/stripe/v1/balance").status_code for _ in range(count)]


def test_the_same_seed_gives_the_same_fault_sequence(
    sim: SimulatorServer, control: httpx.Client
) -> None:
    control.put("/faults/stripe", json={"error_rate": 0.5, "seed": 7})
    first = _statuses(sim)
    control.put("/faults/stripe", json={"error_rate": 0.5, "seed": 7})
    second = _statuses(sim)
    control.put("/faults/stripe", json={"error_rate": 0.5, "seed": 8})
    other = _statuses(sim)

    assert first == second
    assert set(first) == {200, 500}
    assert other != first


def test_fault_settings_are_validated_and_reset(control: httpx.Client) -> None:
    assert control.put("/faults/stripe", json={"error_rate": 2}).status_code == 400
    assert control.put("/faults/stripe", json={"latency": 5}).status_code == 400
    assert control.put("/faults/stripe", json={"down_mode": "off"}).status_code == 400
    assert control.put("/faults/gerencianet", json={"br_code": "ugly"}).status_code == 400
    assert control.put("/faults/adyen", json={}).status_code == 404
    assert control.put("/faults/stripe", content=b"nope").status_code == 400

    set_answer = control.put("/faults/stripe", json={"latency_ms": 5, "seed": 1}).json()
    assert (set_answer["latency_ms"], set_answer["seed"], set_answer["error_rate"]) == (5, 1, 0.0)
    assert set_answer["hang_ms"] == HANG_MS
    control.delete("/faults")
    assert control.get("/faults/stripe").json()["latency_ms"] == 0


def test_reset_forgets_charges_faults_and_callback_changes(
    stripe_sdk: stripe.StripeClient, control: httpx.Client
) -> None:
    stripe_sdk.v1.payment_intents.create(params=card_params())
    control.put("/faults/mercadopago", json={"down": True})
    control.put("/callbacks/stripe", json={"url": "http://127.0.0.1:1/cb"})

    control.post("/reset")

    assert control.get("/charges").json() == []
    assert control.get("/faults/mercadopago").json()["down"] is False
    assert control.get("/callbacks").json()["stripe"]["url"] == ""


@pytest.mark.parametrize("status", [429, 502, 503, 504, 401])
def test_error_status_sets_what_an_error_fault_answers_in_each_gateways_shape(
    sim: SimulatorServer, control: httpx.Client, status: int
) -> None:
    for gateway in ("stripe", "mercadopago", "gerencianet"):
        settings = {"error_rate": 1, "error_status": status}
        assert control.put(f"/faults/{gateway}", json=settings).json()["error_status"] == status

    stripe_answer = httpx.get(sim.base_url + "/stripe/v1/balance")
    mp_answer = httpx.get(sim.base_url + "/mercadopago/users/me")
    gn_answer = httpx.put(f"{sim.base_url}/gerencianet/v2/cob/{TXID}", json=cob_body())

    assert [stripe_answer.status_code, mp_answer.status_code, gn_answer.status_code] == [status] * 3
    assert set(stripe_answer.json()["error"]) >= {"type", "message"}
    assert mp_answer.json()["status"] == status
    assert gn_answer.json()["status"] == status
    assert gn_answer.headers["content-type"] == "application/problem+json"
    assert control.get("/charges").json() == []


def test_stripe_429_carries_the_rate_limit_code(
    control: httpx.Client, stripe_sdk: stripe.StripeClient
) -> None:
    control.put("/faults/stripe", json={"error_rate": 1, "error_status": 429})

    with pytest.raises(stripe.RateLimitError) as raised:
        stripe_sdk.v1.balance.retrieve()

    assert raised.value.http_status == 429
    assert raised.value.json_body["error"]["code"] == "rate_limit"


def test_error_status_is_validated_and_defaults_to_500(control: httpx.Client) -> None:
    for wrong in (200, 399, 600, "502", True):
        assert control.put("/faults/stripe", json={"error_status": wrong}).status_code == 400

    assert control.put("/faults/stripe", json={"error_rate": 1}).json()["error_status"] == 500


def test_error_status_keeps_the_seeded_sequence(
    sim: SimulatorServer, control: httpx.Client
) -> None:
    control.put("/faults/stripe", json={"error_rate": 0.5, "seed": 7})
    plain = _statuses(sim)
    control.put("/faults/stripe", json={"error_rate": 0.5, "seed": 7, "error_status": 502})
    first = _statuses(sim)
    control.put("/faults/stripe", json={"error_rate": 0.5, "seed": 7, "error_status": 502})
    second = _statuses(sim)

    assert first == second
    assert set(first) == {200, 502}
    assert [s == 502 for s in first] == [s == 500 for s in plain]  # same draws, other status


def test_the_request_log_lists_gateway_requests_with_verdict_and_status(
    sim: SimulatorServer, control: httpx.Client
) -> None:
    httpx.get(sim.base_url + "/mercadopago/users/me", headers={"Authorization": "Bearer t"})
    control.put("/faults/stripe", json={"error_rate": 1, "error_status": 503})
    httpx.get(sim.base_url + "/stripe/v1/balance")
    control.put("/faults/stripe", json={"timeout_rate": 1, "hang_ms": 100})
    with pytest.raises(httpx.ReadTimeout):
        httpx.get(sim.base_url + "/stripe/v1/balance", timeout=0.05)

    logged = control.get("/requests").json()
    stripe_only = control.get("/requests", params={"gateway": "stripe"}).json()
    by_path = control.get("/requests", params={"path": "/mercadopago/users/me"}).json()

    assert [(r["gateway"], r["verdict"], r["status"]) for r in logged] == [
        ("mercadopago", "pass", 200),
        ("stripe", "error", 503),
        ("stripe", "timeout", None),  # logged as it starts to hang
    ]
    assert len(stripe_only) == 2
    assert [(r["method"], r["path"]) for r in by_path] == [("GET", "/mercadopago/users/me")]
    control.post("/reset")
    assert control.get("/requests").json() == []


def _new_pix_codes(mp_sdk: mercadopago.SDK, gn_sdk: Gerencianet, txid: str) -> dict[str, str]:
    """The BR Code of a new Mercado Pago payment (R$ 10.50) and a new Efí cob (R$ 12.34)."""
    answer = mp_sdk.payment().create(pix_payment(amount=10.5), mp_options(f"mp-{txid}"))
    cob = gn_sdk.pix_create_charge(params={"txid": txid}, body=cob_body(amount="12.34"))
    return {
        "mercadopago": answer["response"]["point_of_interaction"]["transaction_data"]["qr_code"],
        "gerencianet": cob["pixCopiaECola"],
    }


def test_br_code_fault_makes_new_pix_codes_state_another_amount_or_break_their_crc(
    control: httpx.Client, mp_sdk: mercadopago.SDK, gn_sdk: Gerencianet
) -> None:
    charged = {"mercadopago": 1050, "gerencianet": 1234}
    valid = _new_pix_codes(mp_sdk, gn_sdk, TXID)
    assert {gateway: parse(code).amount for gateway, code in valid.items()} == charged

    for gateway in charged:
        answer = control.put(f"/faults/{gateway}", json={"br_code": "wrong_amount"}).json()
        assert answer["br_code"] == "wrong_amount"
    wrong = _new_pix_codes(mp_sdk, gn_sdk, TXID[:-1] + "X")
    assert {gateway: parse(code).amount for gateway, code in wrong.items()} == {
        gateway: amount + 1 for gateway, amount in charged.items()
    }
    assert [c["amount"] for c in control.get("/charges").json()[2:]] == [1050, 1234]  # as asked

    for gateway in charged:
        control.put(f"/faults/{gateway}", json={"br_code": "bad_crc"})
    broken = _new_pix_codes(mp_sdk, gn_sdk, TXID[:-1] + "Y")
    for code in broken.values():
        with pytest.raises(BRCodeError):
            parse(code)
        assert parse(code[:-4] + crc16(code[:-4])).amount in charged.values()  # only the CRC

    control.delete("/faults")
    valid_again = _new_pix_codes(mp_sdk, gn_sdk, TXID[:-1] + "Z")
    assert {gateway: parse(code).amount for gateway, code in valid_again.items()} == charged
