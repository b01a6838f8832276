"""Django-level error views (handler400/403/404/500) rendering the API's error shape.

The admin keeps Django's HTML pages; everything else answers JSON.
"""

import sys

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import defaults

from paywave.api.errors import (
    DATABASE_UNAVAILABLE_MESSAGE,
    ErrorType,
    ServiceUnavailable,
    database_unavailable,
    error_body,
)


def _is_admin(request: HttpRequest) -> bool:
    return request.path.startswith(f"/{settings.PAYWAVE_ADMIN_URL}")


def _json(status: int, error_type: str, code: str, message: str) -> JsonResponse:
    return JsonResponse(
        error_body(error_type=error_type, code=code, message=message), status=status
    )


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    if _is_admin(request):
        return defaults.bad_request(request, exception)
    return _json(400, ErrorType.INVALID_REQUEST, "bad_request", "The request is malformed.")


def permission_denied(request: HttpRequest, exception: Exception) -> HttpResponse:
    if _is_admin(request):
        return defaults.permission_denied(request, exception)
    return _json(403, ErrorType.PERMISSION, "permission_denied", "Permission denied.")


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if _is_admin(request):
        return defaults.page_not_found(request, exception)
    return _json(404, ErrorType.NOT_FOUND, "not_found", "Not found.")


def server_error(request: HttpRequest) -> HttpResponse:
    # Django calls handler500 while handling the exception: it is the one in flight.
    if database_unavailable(sys.exc_info()[1]):
        unavailable = ServiceUnavailable(DATABASE_UNAVAILABLE_MESSAGE)
        response = _json(503, unavailable.error_type, unavailable.code, unavailable.message)
        response["Retry-After"] = str(unavailable.retry_after)
        return response
    if _is_admin(request):
        return defaults.server_error(request)
    return _json(500, ErrorType.API, "internal_error", "Internal error; it has been logged.")
