"""A request body too large for the API is refused before anything reads it."""

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse

from paywave.api.errors import ErrorType, error_body


class RequestBodyLimitMiddleware:
    """Answer 413 before any parser reads a body larger than PAYWAVE_MAX_BODY_BYTES.

    DRF's parsers read the stream directly and would bypass Django's own
    DATA_UPLOAD_MAX_MEMORY_SIZE check, so the limit is enforced here, on the
    declared length (the WSGI server never hands over more than it).
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        declared = request.META.get("CONTENT_LENGTH") or "0"
        try:
            length = int(declared)
        except ValueError:
            length = -1
        if length < 0:
            return JsonResponse(
                error_body(
                    error_type=ErrorType.INVALID_REQUEST,
                    code="bad_request",
                    message="Content-Length is not a valid number.",
                ),
                status=400,
            )
        limit = settings.PAYWAVE_MAX_BODY_BYTES
        if length > limit and not request.path.startswith(f"/{settings.PAYWAVE_ADMIN_URL}"):
            return JsonResponse(
                error_body(
                    error_type=ErrorType.INVALID_REQUEST,
                    code="request_too_large",
                    message=f"The request body is larger than {limit} bytes.",
                ),
                status=413,
            )
        return self.get_response(request)
