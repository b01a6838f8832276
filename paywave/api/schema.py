"""OpenAPI: what the generated schema cannot see by itself.

drf-spectacular reads the views and serializers; these extensions and the hook below
add what the API does around them: the JWT bearer scheme, strict input objects
(`additionalProperties: false`), metadata's bounds, and the answers and headers every
operation can have (X-Request-ID, 503 with Retry-After, ...). Registered by
PaywaveConfig.ready (extensions) and SPECTACULAR_SETTINGS (hook).
"""

import inspect
from typing import Any

from django.conf import settings
from drf_spectacular.contrib.rest_framework_simplejwt import SimpleJWTScheme
from drf_spectacular.extensions import (
    OpenApiAuthenticationExtension,
    OpenApiSerializerExtension,
    OpenApiSerializerFieldExtension,
)

from paywave.api.idempotency import REPLAY_HEADER
from paywave.api.openapi import ERROR_DESCRIPTIONS
from paywave.api.serializer_fields import StrictSerializer
from paywave.api.versioning import VERSION_HEADER
from paywave.observability.middleware import REQUEST_ID_HEADER
from paywave.values.countries import COUNTRY_CODES
from paywave.values.money import supported_currencies

_HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


class ClientJWTScheme(SimpleJWTScheme):
    target_class = "paywave.api.auth.ClientJWTAuthentication"


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "paywave.api.auth.ApiKeyAuthentication"
    name = "apiKeyAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A wallet app's secret API key (pw_test_... in the sandbox, "
            "pw_live_... otherwise), as `Authorization: Bearer <key>`.",
        }


class StrictSerializerScheme(OpenApiSerializerExtension):
    """A StrictSerializer refuses undeclared fields: its schema says so."""

    target_class = "paywave.api.serializer_fields.StrictSerializer"
    match_subclasses = True

    def map_serializer(self, auto_schema: Any, direction: str) -> dict[str, Any]:
        schema = auto_schema._map_serializer(self.target, direction, bypass_extensions=True)
        schema["additionalProperties"] = False
        if self.target.schema_rules:
            schema["allOf"] = list(self.target.schema_rules)
        if schema.get("description") == inspect.getdoc(StrictSerializer):
            del schema["description"]  # inherited: says nothing of this object
        return schema


class StringMapFieldScheme(OpenApiSerializerFieldExtension):
    """Metadata: a flat map of bounded strings, as StringMapField checks it."""

    target_class = "paywave.api.serializer_fields.StringMapField"

    def map_serializer_field(self, auto_schema: Any, direction: str) -> dict[str, Any]:
        field = self.target
        return {
            "type": "object",
            "maxProperties": field.max_keys,
            "propertyNames": {"minLength": 1, "maxLength": field.max_key_length},
            "additionalProperties": {"type": "string", "maxLength": field.max_value_length},
        }


class CurrencyFieldScheme(OpenApiSerializerFieldExtension):
    target_class = "paywave.api.serializer_fields.CurrencyField"

    def map_serializer_field(self, auto_schema: Any, direction: str) -> dict[str, Any]:
        return {"type": "string", "enum": sorted(supported_currencies())}


class AmountFieldScheme(OpenApiSerializerFieldExtension):
    target_class = "paywave.api.serializer_fields.AmountField"

    def map_serializer_field(self, auto_schema: Any, direction: str) -> dict[str, Any]:
        return {"type": "integer", "minimum": 1, "maximum": settings.PAYWAVE_MAX_AMOUNT}


class CountryFieldScheme(OpenApiSerializerFieldExtension):
    target_class = "paywave.api.serializer_fields.CountryField"

    def map_serializer_field(self, auto_schema: Any, direction: str) -> dict[str, Any]:
        return {"type": "string", "enum": sorted(COUNTRY_CODES)}


def _header(description: str, *, required: bool, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "required": required, "schema": schema}


_REQUEST_ID = _header(
    "The request's id, for support and logs: the X-Request-ID that was sent if it is 1 to "
    "64 of `A-Za-z0-9._-`, else a new one.",
    required=True,
    schema={"type": "string"},
)
_RETRY_AFTER_THROTTLED = _header(
    "Seconds to wait before the next request.", required=False, schema={"type": "integer"}
)
_RETRY_AFTER_UNAVAILABLE = _header(
    "Seconds to wait before sending the same request again, with the same Idempotency-Key.",
    required=True,
    schema={"type": "integer"},
)
_WWW_AUTHENTICATE = _header(
    "The scheme to authenticate with: `Bearer`.", required=False, schema={"type": "string"}
)
_REPLAYED = _header(
    "`true` when this is the stored answer to an earlier request with the same "
    "Idempotency-Key (nothing was done again); absent on the first answer.",
    required=False,
    schema={"type": "string", "enum": ["true"]},
)
_REQUEST_ID_PARAMETER = {
    "in": "header",
    "name": REQUEST_ID_HEADER,
    "required": False,
    "schema": {"type": "string"},
    "description": "Your id for this request, answered in X-Request-ID and logged with it; "
    "one that is not 1 to 64 of `A-Za-z0-9._-` is replaced by a new id.",
}


def _api_version_header() -> dict[str, Any]:
    return _header(
        "The dated API version that shaped this answer (the one the request pinned with "
        "PayWave-Version, else the newest).",
        required=True,
        schema={"type": "string", "enum": list(settings.PAYWAVE_API_VERSIONS)},
    )


def _api_version_parameter() -> dict[str, Any]:
    return {
        "in": "header",
        "name": VERSION_HEADER,
        "required": False,
        "schema": {"type": "string", "enum": list(settings.PAYWAVE_API_VERSIONS)},
        "description": "Pin the answer to this dated API version; without it the newest "
        "answers. An unknown version is a 400 `unsupported_api_version`.",
    }


def _error_response(code: int) -> dict[str, Any]:
    return {
        "description": ERROR_DESCRIPTIONS[code],
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def _answers_json(operation: dict[str, Any]) -> bool:
    return any(
        "application/json" in response.get("content", {})
        for code, response in operation["responses"].items()
        if code.startswith("2")
    )


def _is_idempotent_create(operation: dict[str, Any]) -> bool:
    return any(
        parameter["in"] == "header" and parameter["name"] == "Idempotency-Key"
        for parameter in operation.get("parameters", [])
    )


def _operations(result: dict[str, Any]):
    for path_item in result.get("paths", {}).values():
        for method, operation in path_item.items():
            if method in _HTTP_METHODS:
                yield operation


def declare_common_answers(
    result: dict[str, Any], generator: Any, request: Any, public: bool
) -> dict[str, Any]:
    """Every operation's answers and headers that no single view declares.

    - 503 `service_unavailable` with Retry-After (the database cannot take the request);
      400 (a PayWave-Version the server does not speak);
      406 where the answer is JSON (an Accept header without it);
    - X-Request-ID and PayWave-Version on every answer, and as optional request headers;
    - Retry-After on 429, WWW-Authenticate on 401;
    - Idempotent-Replayed on the success answers of idempotent creates.
    """
    api_version, api_version_parameter = _api_version_header(), _api_version_parameter()
    for operation in _operations(result):
        responses = operation["responses"]
        responses.setdefault("503", _error_response(503))
        responses.setdefault("400", _error_response(400))  # an unknown PayWave-Version
        if _answers_json(operation):
            responses.setdefault("406", _error_response(406))
        idempotent = _is_idempotent_create(operation)
        for code, response in responses.items():
            headers = response.setdefault("headers", {})
            headers[REQUEST_ID_HEADER] = _REQUEST_ID
            headers[VERSION_HEADER] = api_version
            if code == "401":
                headers["WWW-Authenticate"] = _WWW_AUTHENTICATE
            elif code == "429":
                headers["Retry-After"] = _RETRY_AFTER_THROTTLED
            elif code == "503":
                headers["Retry-After"] = _RETRY_AFTER_UNAVAILABLE
            elif code.startswith("2") and idempotent:
                headers[REPLAY_HEADER] = _REPLAYED
        operation.setdefault("parameters", []).extend(
            [_REQUEST_ID_PARAMETER, api_version_parameter]
        )
        operation["responses"] = dict(sorted(responses.items()))
    return result
