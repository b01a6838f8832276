"""The API: DRF, versions, request limits, throttles, idempotency, the OpenAPI schema."""

from datetime import timedelta
from typing import Any

from django.core.exceptions import ImproperlyConfigured

from .environment import env

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "paywave.api.auth.ApiKeyAuthentication",
        "paywave.api.auth.ClientJWTAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["paywave.api.auth.IsWalletApp"],
    "DEFAULT_PARSER_CLASSES": ["paywave.api.parsers.StrictJSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_THROTTLE_CLASSES": ["paywave.api.throttling.ClientRateThrottle"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "paywave.api.errors.api_exception_handler",
    "DEFAULT_VERSIONING_CLASS": "paywave.api.versioning.HeaderVersioning",
    "UNAUTHENTICATED_USER": None,
    # Client addresses (token throttling) come from X-Forwarded-For only past this many
    # trusted proxies; 0 means REMOTE_ADDR, which a client cannot forge.
    "NUM_PROXIES": env.int("PAYWAVE_NUM_PROXIES", default=0),
}
# The API's versions, oldest first; the last is the newest (paywave/api/versioning.py).
PAYWAVE_API_VERSIONS = ["2026-12-01"]

# The OpenAPI schema (/api/schema/) and Swagger UI (/api/docs/): "public", "staff" (a
# staff session in the admin, or a staff JWT) or "off" (not routed). Production: staff.
API_DOCS_MODES = ("off", "staff", "public")
PAYWAVE_API_DOCS = env.str("PAYWAVE_API_DOCS", default="public")
if PAYWAVE_API_DOCS not in API_DOCS_MODES:
    raise ImproperlyConfigured(
        f"PAYWAVE_API_DOCS: {PAYWAVE_API_DOCS!r} is not one of {API_DOCS_MODES}"
    )

SPECTACULAR_SETTINGS: dict[str, Any] = {
    "TITLE": "PayWave API",
    "DESCRIPTION": "PIX and card payments for wallet apps. Money is an integer in minor "
    "units with an ISO 4217 currency (a JSON integer: `1050`, never `1050.0`). Request "
    "bodies are JSON objects with only the declared fields; strings may not contain NUL "
    "(U+0000). Every error has the shape "
    '`{"error": {"type", "code", "message", "fields"}}`. The contract in prose: docs/API.md.',
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["paywave.api.auth.ApiDocsAccess"],
    "SERVE_AUTHENTICATION": [
        "rest_framework.authentication.SessionAuthentication",
        "paywave.api.auth.ClientJWTAuthentication",
    ],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # JSON Schema 2020-12: a null object is `oneOf: [{$ref}, {type: null}]`, which every
    # validator reads alike (3.0's `nullable` beside a $ref is not).
    "OAS_VERSION": "3.1.0",
    # Where wallet apps reach the API, for generated clients and Swagger UI's "Try it out":
    # by default the host that served the schema.
    "SERVERS": [{"url": env.str("PAYWAVE_API_SERVER_URL", default="/")}],
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "paywave.api.schema.declare_common_answers",
    ],
    "ENUM_NAME_OVERRIDES": {
        "PaymentStatusEnum": "payments.models.PaymentStatus",
        "PaymentMethodEnum": "payments.models.PaymentMethod",
    },
}

# Request bodies above this size are answered 413 before anything parses them.
PAYWAVE_MAX_BODY_BYTES = env.int("PAYWAVE_MAX_BODY_BYTES", default=64 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = PAYWAVE_MAX_BODY_BYTES
# Largest accepted payment, in minor units of any currency.
PAYWAVE_MAX_AMOUNT = env.int("PAYWAVE_MAX_AMOUNT", default=100_000_000)
PAYWAVE_CURRENCIES = env.list(
    "PAYWAVE_CURRENCIES", default=["BRL", "USD", "EUR", "GBP", "ARS", "CLP", "MXN", "COP"]
)
PAYWAVE_THROTTLE_RATE = env.str("PAYWAVE_THROTTLE_RATE", default="1200/min")
PAYWAVE_TOKEN_THROTTLE_RATE = env.str("PAYWAVE_TOKEN_THROTTLE_RATE", default="30/min")
# Gateway callbacks (POST /webhooks/<gateway>) per source address: a gateway sends from a
# few addresses, one callback or two per payment; raise it if one address sends more.
PAYWAVE_CALLBACK_THROTTLE_RATE = env.str("PAYWAVE_CALLBACK_THROTTLE_RATE", default="1200/min")
PAYWAVE_IDEMPOTENCY_TTL = timedelta(hours=env.int("PAYWAVE_IDEMPOTENCY_TTL_HOURS", default=24))
# A key claimed in progress (as versions before the key joined its request's transaction
# did) and older than this belongs to a request that died: it is removed.
PAYWAVE_IDEMPOTENCY_LOCK_TIMEOUT = timedelta(
    seconds=env.int("PAYWAVE_IDEMPOTENCY_LOCK_SECONDS", default=60)
)
