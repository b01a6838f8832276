"""`PayWave-Version`: every API answer names its version; a wallet app can pin one."""

from typing import Any

import pytest
from django.conf import LazySettings

from tests import openapi_contract
from tests.helpers import pix_body, post_payment

pytestmark = pytest.mark.django_db


def test_every_api_answer_names_the_version(api: Any) -> None:
    ok = api.get("/api/v1/payments")
    created = post_payment(api, pix_body())
    missing = api.get("/api/v1/payments/00000000-0000-4000-8000-000000000000")
    no_route = api.get("/api/v1/nothing-here")

    for answer in (ok, created, missing, no_route):
        assert answer["PayWave-Version"] == "2026-12-01", answer.status_code


def test_a_pinned_version_answers_in_it(
    api: Any, settings: LazySettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.PAYWAVE_API_VERSIONS = ["2026-12-01", "2027-06-01"]
    monkeypatch.setattr(openapi_contract, "_served", None)  # the schema names both now

    pinned = api.get("/api/v1/payments", HTTP_PAYWAVE_VERSION="2026-12-01")
    unpinned = api.get("/api/v1/payments")

    assert pinned["PayWave-Version"] == "2026-12-01"
    assert unpinned["PayWave-Version"] == "2027-06-01"


@pytest.mark.parametrize("asked", ["2019-01-01", "", "latest"])
def test_an_unknown_version_is_a_400(api: Any, asked: str) -> None:
    answer = api.get("/api/v1/payments", HTTP_PAYWAVE_VERSION=asked)

    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error["code"] == "unsupported_api_version"
    assert "PayWave-Version" in error["fields"]


def test_replayed_answers_name_it_too(api: Any) -> None:
    post_payment(api, pix_body(), key="v-1")
    replay = post_payment(api, pix_body(), key="v-1")

    assert replay["Idempotent-Replayed"] == "true"
    assert replay["PayWave-Version"] == "2026-12-01"
