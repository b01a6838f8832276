"""`python -m gateways.simulators` as `make run` starts it."""

import json
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
    assert set(ports) == {"shared", "stripe", "mercadopago", "gerencianet", "paypal"}
    assert balance.status_code == 200
    assert f"stripe on its own port: http://127.0.0.1:{stripe_port}".encode() in stdout
    assert process.returncode == 0


def test_gateway_ports_option_takes_free_or_given_ports() -> None:
    assert parse_arguments([]).gateway_ports is None
    assert parse_arguments(["--gateway-ports"]).gateway_ports == {}
    given = parse_arguments(["--gateway-ports", "stripe=8911,gerencianet=8913", "--port", "1"])
    assert given.gateway_ports == {"stripe": 8911, "gerencianet": 8913}
    for wrong in ("adyen=8911", "stripe=", "stripe=70000", "stripe"):
        with pytest.raises(SystemExit):
            parse_arguments(["--gateway-ports", wrong])


def _run_briefly(*arguments: str, **env: str) -> tuple[int, list[str], bytes]:
    """Start the simulators, make one gateway call, stop them: (port, stdout lines, stderr)."""
    port = _free_port()
    environ = {name: value for name, value in os.environ.items() if name != "LOG_FORMAT"}
    process = subprocess.Popen(
        [sys.executable, "-m", "gateways.simulators", "--port", str(port), *arguments],
        cwd=ROOT,
        env={**environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        _wait_for_health(port, process)
        httpx.get(f"http://127.0.0.1:{port}/stripe/v1/balance",
                  headers={"Authorization": "Bearer sk_test_x"})  # fmt: skip
    finally:
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=10)
    assert process.returncode == 0
    return port, stdout.decode().splitlines(), stderr


def test_every_line_is_one_json_object_as_paywaves_are() -> None:
    port, lines, stderr = _run_briefly()

    records = [json.loads(line) for line in lines]
    assert records
    for record in records:
        assert {"@timestamp", "level", "logger_name", "message", "host"} <= set(record)
    messages = [record["message"] for record in records]
    assert f"simulators listening on http://127.0.0.1:{port}" in messages
    assert "GET /stripe/v1/balance -> 200" in messages
    assert stderr == b""


def test_plain_lines_on_request() -> None:
    port, lines, _ = _run_briefly("--log-format", "plain")

    assert any(line.endswith(f"INFO simulators listening on http://127.0.0.1:{port}")
               for line in lines)  # fmt: skip
    assert not [line for line in lines if line.startswith("{")]
