"""Fixtures for the gateway callback tests."""

from collections.abc import Iterator
from typing import Any

import pytest

from gateways.simulators.config import SANDBOX_WEBHOOK_SECRETS


@pytest.fixture
def capture(sim: Any) -> Iterator[Any]:
    """The simulators sign each callback and hand it back in their answer instead of sending it."""
    for gateway in SANDBOX_WEBHOOK_SECRETS:
        sim.http.put(
            f"/callbacks/{gateway}", json={"url": f"capture://paywave/webhooks/{gateway}"}
        ).raise_for_status()
    yield sim
    for gateway in SANDBOX_WEBHOOK_SECRETS:
        sim.http.put(f"/callbacks/{gateway}", json={"url": ""})
