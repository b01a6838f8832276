"""OpenAPI pieces shared by every endpoint: the error shape and the common error answers."""

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework import serializers

from paywave.api.idempotency import MAX_KEY_LENGTH


class ErrorDetailSerializer(serializers.Serializer):
    type = serializers.CharField()
    code = serializers.CharField()
    message = serializers.CharField()
    # A declared field: DRF's metaclass takes it off the class, its stubs don't know.
    fields = serializers.DictField(child=serializers.CharField())  # type: ignore[assignment]


class ErrorSerializer(serializers.Serializer):
    error = ErrorDetailSerializer()


ERROR_DESCRIPTIONS = {
    400: "Invalid input; `fields` names each wrong field.",
    401: "Missing, invalid or expired token.",
    403: "Authenticated, but not a wallet app account (or not staff).",
    404: "No such object (another wallet app's objects answer 404 too).",
    405: "Method not allowed.",
    406: "The Accept header does not allow JSON.",
    409: "The object's state does not allow this, or the idempotency key is in use.",
    413: "The request body is too large.",
    415: "The body is not JSON.",
    422: "The Idempotency-Key was used with a different request.",
    429: "Too many requests; see the Retry-After header.",
    503: "The service cannot take the request now; nothing was stored. Send the same request "
    "again (same Idempotency-Key) after Retry-After seconds.",
}


def error_responses(*status_codes: int) -> dict[int, OpenApiResponse]:
    return {
        code: OpenApiResponse(response=ErrorSerializer, description=ERROR_DESCRIPTIONS[code])
        for code in status_codes
    }


AUTHENTICATED_ERRORS = (401, 403, 405, 429)
BODY_ERRORS = (400, 413, 415)

IDEMPOTENCY_KEY_HEADER = OpenApiParameter(
    name="Idempotency-Key",
    # Printable characters as a header carries them (Latin-1): what validate_idempotency_key
    # takes, and nothing it refuses.
    type={
        "type": "string",
        "minLength": 1,
        "maxLength": MAX_KEY_LENGTH,
        "pattern": "^[ -~\u00a1-\u00ac\u00ae-\u00ff]+$",
    },
    location=OpenApiParameter.HEADER,
    required=True,
    description=f"Any printable string of 1 to {MAX_KEY_LENGTH} characters, unique per request "
    "you mean to make once (a UUID does). Kept 24 h: the same key and body replay the first "
    "answer (with `Idempotent-Replayed: true`); the same key with another body is a 422. "
    "Without it: 400 `idempotency_key_required`.",
)
