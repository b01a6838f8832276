"""The served OpenAPI schema is valid 3.1, and the suite's calls are held to it.

tests/openapi_contract.py checks every call the suite makes to /api/v1/; these tests
show that it does catch what breaks the contract.
"""

from typing import Any

import pytest
from openapi_spec_validator import validate
from rest_framework.response import Response

from tests.factories import WalletFactory
from tests.openapi_contract import ContractViolation, served_schema

pytestmark = pytest.mark.django_db


def test_the_served_schema_is_valid_openapi_3_1() -> None:
    spec = served_schema().spec

    validate(spec)
    assert spec["openapi"] == "3.1.0"
    assert spec["servers"] == [{"url": "/"}]


def test_every_4xx_answer_has_the_error_shape() -> None:
    for path, item in served_schema().spec["paths"].items():
        for method, operation in item.items():
            codes = [code for code in operation["responses"] if code.startswith("4")]
            assert {"400", "401"} & set(codes), (method, path)
            for code in codes:
                content = operation["responses"][code]["content"]["application/json"]
                assert content["schema"] == {"$ref": "#/components/schemas/Error"}, (path, code)


def test_every_request_body_is_closed_and_has_an_example() -> None:
    spec = served_schema().spec
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if "requestBody" not in operation:
                continue
            media = operation["requestBody"]["content"]["application/json"]
            name = media["schema"]["$ref"].rsplit("/", 1)[1]
            assert spec["components"]["schemas"][name]["additionalProperties"] is False, name
            assert media.get("examples"), (method, path)


def test_an_undeclared_field_in_an_answer_fails_the_call(
    api: Any, wallet_app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    wallet = WalletFactory(client=wallet_app)
    monkeypatch.setattr(
        "wallets.apis.wallet_document", lambda wallet: {"debug": True, **_document(wallet)}
    )

    with pytest.raises(ContractViolation, match="debug"):
        api.get(f"/api/v1/wallets/{wallet.pk}")


def test_an_undeclared_header_fails_the_call(
    api: Any, wallet_app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    wallet = WalletFactory(client=wallet_app)
    monkeypatch.setattr(
        "wallets.apis.WalletDetailApi.get",
        lambda self, request, wallet_id: Response(_document(wallet), headers={"X-Debug": "1"}),
    )

    with pytest.raises(ContractViolation, match="X-Debug is not declared"):
        api.get(f"/api/v1/wallets/{wallet.pk}")


def test_accepting_what_the_schema_forbids_fails_the_call(
    api: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The schema closes request bodies; an API that took an unknown field would break it."""
    from rest_framework import serializers

    monkeypatch.setattr(
        "paywave.api.serializer_fields.StrictSerializer.to_internal_value",
        serializers.Serializer.to_internal_value,
    )

    with pytest.raises(ContractViolation, match="accepted a request the schema forbids"):
        api.post(
            "/api/v1/wallets",
            {"currency": "BRL", "colour": "blue"},
            format="json",
            HTTP_IDEMPOTENCY_KEY="w-1",
        )


def test_a_call_outside_the_schema_is_not_checked(api: Any) -> None:
    assert api.get("/api/v1/no-such-endpoint").status_code == 404


def _document(wallet: Any) -> dict[str, Any]:
    from wallets.serializers import wallet_document

    return wallet_document(wallet)
