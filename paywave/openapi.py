"""OpenAPI pieces shared by every endpoint: the error shape and the common error answers."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework import serializers


class ErrorDetailSerializer(serializers.Serializer):
    type = serializers.CharField()
    code = serializers.CharField()
    message = serializers.CharField()
    fields = serializers.DictField(child=serializers.CharField())


class ErrorSerializer(serializers.Serializer):
    error = ErrorDetailSerializer()


_DESCRIPTIONS = {
    400: "Invalid input; `fields` names each wrong field.",
    401: "Missing, invalid or expired token.",
    403: "Authenticated, but not a wallet app account (or not staff).",
    404: "No such object (another wallet app's objects answer 404 too).",
    405: "Method not allowed.",
    409: "The object's state does not allow this, or the idempotency key is in use.",
    413: "The request body is too large.",
    415: "The body is not JSON.",
    422: "The Idempotency-Key was used with a different request.",
    429: "Too many requests; see the Retry-After header.",
}


def error_responses(*status_codes: int) -> dict[int, OpenApiResponse]:
    return {
        code: OpenApiResponse(response=ErrorSerializer, description=_DESCRIPTIONS[code])
        for code in status_codes
    }


AUTHENTICATED_ERRORS = (401, 403, 405, 429)
BODY_ERRORS = (400, 413, 415)

IDEMPOTENCY_KEY_HEADER = OpenApiParameter(
    name="Idempotency-Key",
    type=OpenApiTypes.STR,
    location=OpenApiParameter.HEADER,
    required=True,
    description="Any string up to 255 characters, unique per request you mean to make once. "
    "Kept 24 h: the same key and body replay the first answer "
    "(with `Idempotent-Replayed: true`).",
)
