"""Django's log lines about requests, in PayWave's field names (settings.LOGGING).

Django's `django.request` line (an answer of 400 or more) and `django.server`'s carry
the status as `status_code` and the request object: they get `http_status`,
`http_method`, `http_path`, `http_query` (masked) and the request's `request_id`
instead, the names of the request line (paywave.observability.middleware), so one field holds the
HTTP status in every line. A logger filter: it sees only those loggers' own records,
and never drops one.
"""

import logging

from django.http import HttpRequest

from paywave.observability.log_masking import mask_query

LOGGED_QUERY_CHARS = 1024  # as much of a query string as a line keeps
# Where RequestIdMiddleware leaves the request's id on Django's request.
REQUEST_ID_ATTRIBUTE = "request_id"


class HttpFieldsFilter(logging.Filter):
    """Django's status and request, in the request line's field names."""

    def filter(self, record: logging.LogRecord) -> bool:
        fields = record.__dict__
        if "status_code" in fields:
            fields.setdefault("http_status", fields.pop("status_code"))
        request = fields.pop("request", None)
        if isinstance(request, HttpRequest):
            fields.setdefault("http_method", request.method)
            fields.setdefault("http_path", request.path)
            query = request.META.get("QUERY_STRING", "")[:LOGGED_QUERY_CHARS]
            fields.setdefault("http_query", mask_query(query))
            request_id = getattr(request, REQUEST_ID_ATTRIBUTE, None)
            if request_id is not None:
                fields.setdefault("request_id", request_id)
        return True
