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
        deadline = time.monotonic() + 15
        while True:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/_sim/health", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise
                time.sleep(0.05)
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
