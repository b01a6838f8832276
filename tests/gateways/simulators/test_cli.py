"""`python -m gateways.simulators` as `make run` starts it."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from gateways.simulators.__main__ import parse_arguments

ROOT = Path(__file__).resolve().parents[3]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_for_health(port: int, process: subprocess.Popen[bytes]) -> httpx.Response:
    deadline = time.monotonic() + 15
    while True:
        try:
            return httpx.get(f"http://127.0.0.1:{port}/_sim/health", timeout=1)
        except httpx.TransportError:
            if time.monotonic() > deadline or process.poll() is not None:
                raise
            time.sleep(0.05)


def test_the_module_serves_until_sigterm() -> None:
    port = _free_port()
    env = {**os.environ, "SIM_STRIPE_WEBHOOK_URL": "http://127.0.0.1:1/cb"}
    process = subprocess.Popen(
        [sys.executable, "-m", "gateways.simulators", "--port", str(port), "--hang-ms", "100"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        health = _wait_for_health(port, process)
        callbacks = httpx.get(f"http://127.0.0.1:{port}/_sim/callbacks").json()
        faults = httpx.get(f"http://127.0.0.1:{port}/_sim/faults").json()
    finally:
        process.send_signal(signal.SIGTERM)
        stdout, _ = process.communicate(timeout=10)

    assert health.json() == {"ok": True}
    assert callbacks["stripe"] == {"url": "http://127.0.0.1:1/cb", "secret_set": True}
    assert faults["stripe"]["hang_ms"] == 100
    assert process.returncode == 0
    assert f"http://127.0.0.1:{port}".encode() in stdout


def test_mtls_port_needs_its_files() -> None:
    with pytest.raises(SystemExit):
        parse_arguments(["--mtls-port", "8901", "--cert", "server.pem"])


def test_gateway_ports_serve_each_gateway_on_its_own_port() -> None:
    port, stripe_port = _free_port(), _free_port()
    command = [sys.executable, "-m", "gateways.simulators", "--port", str(port)]
    process = subprocess.Popen(
        [*command, "--gateway-ports", f"stripe={stripe_port}"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        _wait_for_health(port, process)
        ports = httpx.get(f"http://127.0.0.1:{port}/_sim/ports").json()
        balance = httpx.get(
            f"http://127.0.0.1:{stripe_port}/stripe/v1/balance",
            headers={"Authorization": "Bearer sk_test_x"},
        )
    finally:
        process.send_signal(signal.SIGTERM)
        stdout, _ = process.communicate(timeout=10)

    assert ports["shared"] == port
    assert ports["stripe"] == stripe_port
    assert set(ports) == {"shared", "stripe", "mercadopago", "gerencianet"}
    assert balance.status_code == 200
    assert f"stripe on its own port: http://127.0.0.1:{stripe_port}".encode() in stdout
    assert process.returncode == 0


def test_gateway_ports_option_takes_free_or_given_ports() -> None:
    assert parse_arguments([]).gateway_ports is None
    assert parse_arguments(["--gateway-ports"]).gateway_ports == {}
    given = parse_arguments(["--gateway-ports", "stripe=8911,gerencianet=8913", "--port", "1"])
    assert given.gateway_ports == {"stripe": 8911, "gerencianet": 8913}
    for wrong in ("paypal=8911", "stripe=", "stripe=70000", "stripe"):
        with pytest.raises(SystemExit):
            parse_arguments(["--gateway-ports", wrong])
