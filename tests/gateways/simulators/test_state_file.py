"""--state-file: a restarted simulator keeps its charges, refunds and idempotent answers."""

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateways.simulators import SimulatorConfig, SimulatorServer
from gateways.simulators.__main__ import parse_arguments
from gateways.simulators.config import (
    SANDBOX_GERENCIANET_CLIENT_ID,
    SANDBOX_GERENCIANET_CLIENT_SECRET,
)

from .conftest import cob_body, pix_payment

ROOT = Path(__file__).resolve().parents[3]
STRIPE_AUTH = {"Authorization": "Bearer sk_test_x"}
MP_AUTH = {"Authorization": "Bearer TEST-token"}
TXID = "pwstatefile0000000000000000001"


@contextmanager
def simulator(state_file: Path) -> Iterator[httpx.Client]:
    config = SimulatorConfig(hang_ms=200, state_file=str(state_file))
    with (
        SimulatorServer("127.0.0.1", 0, config=config) as server,
        httpx.Client(base_url=server.base_url, timeout=10) as http,
    ):
        yield http


def stripe_charge(http: httpx.Client, key: str, reference: str) -> httpx.Response:
    return http.post(
        "/stripe/v1/payment_intents",
        headers={**STRIPE_AUTH, "Idempotency-Key": key},
        data={
            "amount": "1050",
            "currency": "brl",
            "payment_method": "pm_card_visa",
            "confirm": "true",
            "metadata[payment_id]": reference,
        },
    )


def mp_charge(http: httpx.Client, key: str, reference: str) -> httpx.Response:
    return http.post(
        "/mercadopago/v1/payments",
        headers={**MP_AUTH, "X-Idempotency-Key": key},
        json=pix_payment(reference),
    )


def gn_token(http: httpx.Client) -> str:
    answer = http.post(
        "/gerencianet/oauth/token",
        auth=(SANDBOX_GERENCIANET_CLIENT_ID, SANDBOX_GERENCIANET_CLIENT_SECRET),
        json={"grant_type": "client_credentials"},
    )
    answer.raise_for_status()
    return answer.json()["access_token"]


def charges(http: httpx.Client, **query: str) -> list[dict[str, Any]]:
    answer = http.get("/_sim/charges", params=query)
    answer.raise_for_status()
    return answer.json()


def test_charges_and_idempotent_answers_survive_a_restart(tmp_path: Path) -> None:
    state = tmp_path / "sim.sqlite3"
    with simulator(state) as http:
        card = stripe_charge(http, "key-card-1", "pw-card-1")
        pix = mp_charge(http, "key-pix-1", "pw-pix-1")
        token = gn_token(http)
        cob = http.put(
            f"/gerencianet/v2/cob/{TXID}",
            headers={"Authorization": f"Bearer {token}"},
            json=cob_body("pw-cob-1"),
        )
        assert (card.status_code, pix.status_code, cob.status_code) == (200, 201, 201)
        before = sorted(charges(http), key=lambda c: c["id"])
    assert len(before) == 3

    with simulator(state) as http:
        assert sorted(charges(http), key=lambda c: c["id"]) == before
        # The same keys replay the first answers; nothing new is charged.
        card_again = stripe_charge(http, "key-card-1", "pw-card-1")
        assert card_again.headers["Idempotent-Replayed"] == "true"
        assert card_again.json()["id"] == card.json()["id"]
        assert card_again.json()["status"] == "succeeded"
        assert mp_charge(http, "key-pix-1", "pw-pix-1").json()["id"] == pix.json()["id"]
        # The OAuth token issued before the restart is still valid, and the cob is there.
        cob_again = http.get(
            f"/gerencianet/v2/cob/{TXID}", headers={"Authorization": f"Bearer {token}"}
        )
        assert cob_again.status_code == 200
        assert cob_again.json()["status"] == "ATIVA"
        intent = http.get(f"/stripe/v1/payment_intents/{card.json()['id']}", headers=STRIPE_AUTH)
        assert intent.json()["status"] == "succeeded"
        assert len(charges(http)) == 3


def test_changes_after_a_restart_are_kept_too(tmp_path: Path) -> None:
    state = tmp_path / "sim.sqlite3"
    with simulator(state) as http:
        first = mp_charge(http, "key-pix-1", "pw-pix-1").json()
    with simulator(state) as http:
        paid = http.post(f"/_sim/pix/{first['id']}/pay", params={"gateway": "mercadopago"})
        assert paid.status_code == 200
        # Numbering goes on where it stopped: a new payment never takes an old id.
        second = mp_charge(http, "key-pix-2", "pw-pix-2").json()
        assert second["id"] != first["id"]
        refund = http.post(f"/mercadopago/v1/payments/{first['id']}/refunds", headers=MP_AUTH)
        assert refund.status_code == 201
    with simulator(state) as http:
        by_reference = {c["reference"]: c for c in charges(http)}
        assert by_reference["pw-pix-1"]["status"] == "refunded"  # paid, then refunded in full
        assert by_reference["pw-pix-1"]["amount_refunded"] == 1050
        assert by_reference["pw-pix-2"]["status"] == "pending"
        assert len(http.get("/_sim/refunds").json()) == 1


def test_reset_empties_the_state_file(tmp_path: Path) -> None:
    state = tmp_path / "sim.sqlite3"
    with simulator(state) as http:
        stripe_charge(http, "key-card-1", "pw-card-1")
        assert http.post("/_sim/reset").status_code == 200
    with simulator(state) as http:
        assert charges(http) == []
        fresh = stripe_charge(http, "key-card-1", "pw-card-1")
        assert "Idempotent-Replayed" not in fresh.headers


def test_without_a_state_file_nothing_is_written(tmp_path: Path) -> None:
    with SimulatorServer("127.0.0.1", 0) as server, httpx.Client(base_url=server.base_url) as http:
        stripe_charge(http, "key-card-1", "pw-card-1")
    assert list(tmp_path.iterdir()) == []


def test_the_cli_option_and_the_environment_set_the_file() -> None:
    assert parse_arguments(["--state-file", "/tmp/s.db"]).state_file == "/tmp/s.db"
    assert SimulatorConfig.from_env({"SIM_STATE_FILE": "/tmp/e.db"}).state_file == "/tmp/e.db"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _start_process(port: int, state: Path) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "gateways.simulators", "--port", str(port)]
    process = subprocess.Popen(
        [*command, "--state-file", str(state), "--log-level", "WARNING"],
        cwd=ROOT,
        env=dict(os.environ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/_sim/health", timeout=1).raise_for_status()
            return process
        except httpx.HTTPError:
            time.sleep(0.1)
    process.kill()
    pytest.fail("the simulator process did not start")


@pytest.mark.slow
def test_a_killed_process_keeps_every_answered_charge(tmp_path: Path) -> None:
    """SIGKILL, no shutdown: what was answered had been written before the answer."""
    port, state = _free_port(), tmp_path / "sim.sqlite3"
    process = _start_process(port, state)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            ids = [stripe_charge(http, f"k{i}", f"pw-{i}").json()["id"] for i in range(20)]
        process.send_signal(signal.SIGKILL)
        process.wait(10)
        process = _start_process(port, state)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            assert sorted(c["id"] for c in charges(http)) == sorted(ids)
            replay = stripe_charge(http, "k7", "pw-7")
            assert replay.json()["id"] == ids[7]
            assert len(charges(http)) == 20
    finally:
        process.kill()
        process.wait(10)
