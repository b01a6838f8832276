from collections.abc import Callable
from typing import Any

import pytest

from payments.models import Payment

from .helpers import BACK


@pytest.fixture
def hosted_pix(pix_payment: Callable[..., Payment]) -> Callable[..., Payment]:
    def make(**fields: Any) -> Payment:
        return pix_payment(**{"hosted": True, "return_url": BACK, **fields})

    return make


@pytest.fixture
def hosted_card(card_payment: Callable[..., Payment]) -> Callable[..., Payment]:
    def make(card_token: str = "pm_card_visa", **fields: Any) -> Payment:  # noqa: S107
        return card_payment(card_token, **{"hosted": True, "return_url": BACK, **fields})

    return make
