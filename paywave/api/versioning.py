"""API versions by date, chosen per request with the `PayWave-Version` header.

Every answer under /api/ names the version that shaped it (`PayWave-Version`). A
wallet app pins one by sending the header; without it the newest answers. A change
that could break a client only ever comes as a new dated version, so a pinned client
keeps its answers' shape. An unknown version is a 400 in the error shape.
"""

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from rest_framework.request import Request
from rest_framework.versioning import BaseVersioning

from paywave.api.errors import ApplicationError

VERSION_HEADER = "PayWave-Version"
# Where the chosen version waits on Django's request for the answer's header.
_VERSION_ATTRIBUTE = "paywave_version"


def current_version() -> str:
    return settings.PAYWAVE_API_VERSIONS[-1]


class HeaderVersioning(BaseVersioning):
    def determine_version(self, request: Request, *args: Any, **kwargs: Any) -> str:
        asked = request.headers.get(VERSION_HEADER)
        version = current_version() if asked is None else asked.strip()
        if version not in settings.PAYWAVE_API_VERSIONS:
            supported = ", ".join(settings.PAYWAVE_API_VERSIONS)
            raise ApplicationError(
                f"Unknown API version; this server speaks {supported}.",
                code="unsupported_api_version",
                fields={VERSION_HEADER: f"One of {supported}."},
            )
        setattr(request._request, _VERSION_ATTRIBUTE, version)  # for ApiVersionMiddleware
        return version


class ApiVersionMiddleware:
    """Name the version in every answer of the API (errors and replays included)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if request.path.startswith("/api/"):
            response[VERSION_HEADER] = getattr(request, _VERSION_ATTRIBUTE, current_version())
        return response
