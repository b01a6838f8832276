"""One application error type and one renderer for every error the API returns.

Shape: {"error": {"type", "code", "message", "fields"}}. The DRF exception handler
below renders DRF's own exceptions in it too, and `paywave.api.error_views` does the
same for Django-level errors (unknown URL, 500).

A request that cannot reach PostgreSQL (down, or refusing connections: "too many
clients", a connection limit) answers 503 `service_unavailable` with Retry-After,
not 500: nothing was stored, and the same request with the same Idempotency-Key
is safe to send again.
"""

import logging
from typing import Any

import psycopg
from django.core.exceptions import PermissionDenied
from django.db import DatabaseError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response

logger = logging.getLogger(__name__)

# Seconds a client is asked to wait when the database is unavailable.
UNAVAILABLE_RETRY_AFTER = 5
# too_many_connections, admin_shutdown, crash_shutdown, cannot_connect_now
_UNAVAILABLE_SQLSTATES = frozenset({"53300", "57P01", "57P02", "57P03"})


class ErrorType:
    INVALID_REQUEST = "invalid_request_error"
    AUTHENTICATION = "authentication_error"
    PERMISSION = "permission_error"
    NOT_FOUND = "not_found_error"
    CONFLICT = "conflict_error"
    IDEMPOTENCY = "idempotency_error"
    RATE_LIMIT = "rate_limit_error"
    API = "api_error"


class ApplicationError(Exception):
    """An error with a meaning for the API client: raised by services, rendered by the API."""

    status_code: int = status.HTTP_400_BAD_REQUEST
    error_type = ErrorType.INVALID_REQUEST
    code = "invalid_request"
    retry_after: int | None = None  # seconds, answered in Retry-After

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        fields: dict[str, str] | None = None,
        status_code: int | None = None,
        error_type: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.code
        self.fields = fields or {}
        self.status_code = status_code or self.status_code
        self.error_type = error_type or self.error_type


class NotFound(ApplicationError):
    status_code = status.HTTP_404_NOT_FOUND
    error_type = ErrorType.NOT_FOUND
    code = "not_found"


class Conflict(ApplicationError):
    status_code = status.HTTP_409_CONFLICT
    error_type = ErrorType.CONFLICT
    code = "state_conflict"


class ServiceUnavailable(ApplicationError):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    error_type = ErrorType.API
    code = "service_unavailable"
    retry_after = UNAVAILABLE_RETRY_AFTER


DATABASE_UNAVAILABLE_MESSAGE = (
    "The service is briefly unavailable; nothing was stored. "
    "Retry later with the same Idempotency-Key."
)


def database_unavailable(exc: BaseException | None) -> bool:
    """True if `exc` is PostgreSQL refusing or losing the connection (not a query's error)."""
    if not isinstance(exc, DatabaseError):
        return False
    cause = exc.__cause__
    if not isinstance(cause, psycopg.OperationalError):
        return False
    if cause.sqlstate in _UNAVAILABLE_SQLSTATES:
        return True
    # A failed connect (refused, "too many clients", a connection limit) or a connection
    # that died: libpq's connection is bad. A query's own error leaves it good.
    return cause.pgconn is not None and cause.pgconn.status == psycopg.pq.ConnStatus.BAD


def error_body(
    *, error_type: str, code: str, message: str, fields: dict[str, str] | None = None
) -> dict[str, Any]:
    return {"error": {"type": error_type, "code": code, "message": message, "fields": fields or {}}}


def flatten_validation_detail(detail: Any, prefix: str = "") -> dict[str, str]:
    """Turn DRF's nested validation detail into {"payer.tax_id": "first message"}."""
    if isinstance(detail, dict):
        flat: dict[str, str] = {}
        for key, value in detail.items():
            name = "" if key == "non_field_errors" else str(key)
            path = f"{prefix}.{name}" if prefix and name else (prefix or name)
            flat.update(flatten_validation_detail(value, path))
        return flat
    if isinstance(detail, list):
        if detail and all(isinstance(item, (dict, list)) for item in detail):
            flat = {}
            for index, item in enumerate(detail):
                flat.update(
                    flatten_validation_detail(item, f"{prefix}.{index}" if prefix else str(index))
                )
            return flat
        messages = [str(item) for item in detail]
        return {prefix or "non_field_errors": messages[0]} if messages else {}
    return {prefix or "non_field_errors": str(detail)}


def _validation_response(exc: exceptions.ValidationError) -> Response:
    fields = flatten_validation_detail(exc.detail)
    codes = exc.get_codes()
    code = "invalid_request"
    general = fields.pop("non_field_errors", None)
    # A validator may name a more precise code for the whole request (e.g. card_number_forbidden).
    for value in _iter_codes(codes):
        if value in SPECIFIC_VALIDATION_CODES:
            code = value
            break
    if general and not fields:
        message = general
    elif fields:
        message = "Invalid request: " + "; ".join(f"{k}: {v}" for k, v in fields.items())
        if general:
            message = f"{general} {message}"
    else:
        message = "Invalid request."
    body = error_body(
        error_type=ErrorType.INVALID_REQUEST, code=code, message=message, fields=fields
    )
    return Response(body, status=status.HTTP_400_BAD_REQUEST)


SPECIFIC_VALIDATION_CODES = frozenset({"card_number_forbidden", "idempotency_key_invalid"})


def _iter_codes(codes: Any):
    if isinstance(codes, dict):
        for value in codes.values():
            yield from _iter_codes(value)
    elif isinstance(codes, list):
        for value in codes:
            yield from _iter_codes(value)
    else:
        yield codes


_DRF_ERRORS: list[tuple[type[exceptions.APIException], str, str]] = [
    (exceptions.ParseError, ErrorType.INVALID_REQUEST, "parse_error"),
    (exceptions.UnsupportedMediaType, ErrorType.INVALID_REQUEST, "unsupported_media_type"),
    (exceptions.NotAcceptable, ErrorType.INVALID_REQUEST, "not_acceptable"),
    (exceptions.MethodNotAllowed, ErrorType.INVALID_REQUEST, "method_not_allowed"),
    (exceptions.NotAuthenticated, ErrorType.AUTHENTICATION, "not_authenticated"),
    (exceptions.AuthenticationFailed, ErrorType.AUTHENTICATION, "authentication_failed"),
    (exceptions.PermissionDenied, ErrorType.PERMISSION, "permission_denied"),
    (exceptions.NotFound, ErrorType.NOT_FOUND, "not_found"),
    (exceptions.Throttled, ErrorType.RATE_LIMIT, "rate_limited"),
]


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    elif database_unavailable(exc):
        logger.error("database unavailable: %s", exc)
        exc = ServiceUnavailable(DATABASE_UNAVAILABLE_MESSAGE)

    if isinstance(exc, ApplicationError):
        body = error_body(
            error_type=exc.error_type, code=exc.code, message=exc.message, fields=exc.fields
        )
        response = Response(body, status=exc.status_code)
        if exc.retry_after is not None:
            response["Retry-After"] = str(exc.retry_after)
        return response
    if isinstance(exc, exceptions.ValidationError):
        return _validation_response(exc)
    if not isinstance(exc, exceptions.APIException):
        return None  # a bug: Django's handler500 renders it in our shape

    error_type, code = ErrorType.INVALID_REQUEST, "invalid_request"
    for exc_class, mapped_type, mapped_code in _DRF_ERRORS:
        if isinstance(exc, exc_class):
            error_type, code = mapped_type, mapped_code
            break
    if isinstance(exc, exceptions.AuthenticationFailed | exceptions.NotAuthenticated):
        detail_code = exc.get_codes()
        if isinstance(detail_code, str) and detail_code not in ("authentication_failed",):
            code = detail_code
    message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    if isinstance(exc.detail, dict):
        message = str(exc.detail.get("detail", "Authentication failed."))
        code = str(exc.detail.get("code", code))
    response = Response(
        error_body(error_type=error_type, code=code, message=str(message)),
        status=exc.status_code,
    )
    auth_header = getattr(exc, "auth_header", None)
    if auth_header:
        response["WWW-Authenticate"] = auth_header
    wait = getattr(exc, "wait", None)
    if isinstance(exc, exceptions.Throttled) and wait is not None:
        response["Retry-After"] = str(max(1, int(wait + 0.999)))
    return response
