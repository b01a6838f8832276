"""The request line: each request gets an id, carried by its log lines and its answer."""

import logging
import re
import time
import uuid
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from paywave.observability.log_context import log_context
from paywave.observability.log_fields import LOGGED_QUERY_CHARS, REQUEST_ID_ATTRIBUTE
from paywave.observability.log_masking import mask_query

request_logger = logging.getLogger("paywave.requests")

REQUEST_ID_HEADER = "X-Request-ID"
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
# Probes and scrapes: answered, not logged (every few seconds from each of them).
_UNLOGGED_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
# URL parameters the request line carries as fields (the payment's story in Kibana).
_LOGGED_URL_IDS = ("payment_id",)


class RequestIdMiddleware:
    """Give each request an id (a sane incoming X-Request-ID, else a new one).

    The id is bound to the log context for the request, published with any task
    the request starts (paywave.observability.celery_signals), answered in X-Request-ID, and the
    request ends with one log line (method, path, query, status, duration, and the
    payment it is about). The query is logged with the values of secret-named
    parameters masked (Efí's `?hmac=`).
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = request.META.get("HTTP_X_REQUEST_ID", "")
        request_id = incoming if _SANE_REQUEST_ID.fullmatch(incoming) else uuid.uuid4().hex
        setattr(request, REQUEST_ID_ATTRIBUTE, request_id)
        started = time.monotonic()
        with log_context(request_id=request_id):
            response = self.get_response(request)
            response[REQUEST_ID_HEADER] = request_id
            if request.path not in _UNLOGGED_PATHS:
                query = mask_query(request.META.get("QUERY_STRING", "")[:LOGGED_QUERY_CHARS])
                request_logger.info(
                    "%s %s%s %s",
                    request.method,
                    request.path,
                    f"?{query}" if query else "",
                    response.status_code,
                    extra={
                        "http_method": request.method,
                        "http_path": request.path,
                        "http_query": query,
                        "http_status": response.status_code,
                        "duration_ms": round((time.monotonic() - started) * 1000, 1),
                        **_ids_named(request),
                    },
                )
        return response


def _ids_named(request: HttpRequest) -> dict[str, str]:
    """The payment a request is about, in its URL (`/payments/<id>/...`). One a request
    made (the create, its replays included) is bound to the log context by the view, and
    the line carries it from there."""
    parameters = getattr(request.resolver_match, "kwargs", None) or {}
    return {name: str(parameters[name]) for name in _LOGGED_URL_IDS if name in parameters}
