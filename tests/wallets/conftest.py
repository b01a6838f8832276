from collections.abc import Callable
from typing import Any

import pytest

from config.celery_app import app as celery_app
from tests.factories import WalletFactory


@pytest.fixture(autouse=True)
def published(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, Any]]:
    """Jobs published after commit (event fan-out), recorded instead of sent to the broker."""
    sent: list[tuple[str, Any]] = []
    monkeypatch.setattr(
        celery_app,
        "send_task",
        lambda name, args=None, kwargs=None, **options: sent.append((name, args)),
    )
    return sent


@pytest.fixture
def wallet_of(wallet_app: Any) -> Callable[..., Any]:
    """Wallets of the `api` fixture's wallet app: wallet_of(funds=1000, currency="BRL")."""

    def make(**fields: Any) -> Any:
        return WalletFactory(client=wallet_app, **fields)

    return make
