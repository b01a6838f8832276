"""Every API call the suite makes is checked against the OpenAPI schema the app serves.

A pytest plugin (tests/conftest.py loads it): it wraps Django's test client, DRF's
APIClient included, so each request a test sends to /api/v1/ and the answer it gets go
through openapi-core against the schema served at /api/schema/:

- the answer must be declared for its operation and status code and match it: content
  type, body (with no property the schema does not declare), declared headers; and every
  header the API itself adds must be declared for that answer;
- a request the schema forbids must be refused with a 4xx: the API accepts nothing its
  contract does not allow.

A path or method the schema does not have (a test of an unknown URL) is not checked. A
mismatch fails the test that made the call, with what differed.
"""

import copy
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from django.http import HttpResponse
from django.test.client import Client, FakePayload, RequestFactory
from drf_spectacular.views import SpectacularAPIView
from openapi_core import OpenAPI
from openapi_core.contrib.django import DjangoOpenAPIRequest, DjangoOpenAPIResponse
from openapi_core.datatypes import RequestParameters
from werkzeug.datastructures import Headers, ImmutableMultiDict

API_PREFIX = "/api/v1/"
SCHEMA_URL = "/api/schema/"

# What HTTP, Django's middleware and the security headers add to every answer: not part of
# the API's contract. Any other header an answer has must be declared for it.
TRANSPORT_HEADERS = frozenset(
    {
        "content-type",
        "content-length",
        "vary",
        "allow",
        "x-frame-options",
        "x-content-type-options",
        "referrer-policy",
        "cross-origin-opener-policy",
        "strict-transport-security",
    }
)


class ContractViolation(AssertionError):
    """An API answer or acceptance that the served OpenAPI schema does not allow."""


@dataclass(frozen=True)
class ServedSchema:
    spec: dict[str, Any]
    openapi: OpenAPI


_served: ServedSchema | None = None
_original_request = Client.request


def served_schema() -> ServedSchema:
    """The schema as the app serves it, read once per run.

    Straight from the schema view, past the middleware and the view's access rules: what
    the settings of the test under way say of HTTPS, logging or who may read the schema
    must not change what every later test is checked against.
    """
    global _served
    if _served is None:
        view = SpectacularAPIView.as_view(authentication_classes=[], permission_classes=[])
        response = view(RequestFactory().get(SCHEMA_URL, {"format": "json"}))
        response.render()
        assert response.status_code == 200, response.content[:500]
        spec = json.loads(response.content)
        _served = ServedSchema(spec=spec, openapi=OpenAPI.from_dict(_no_undeclared_fields(spec)))
    return _served


def _no_undeclared_fields(spec: dict[str, Any]) -> dict[str, Any]:
    """The schema, with answers held to the fields they declare.

    Answers' objects leave `additionalProperties` open on purpose (PayWave may add fields,
    and clients must ignore what they do not know), but what the suite receives must be
    fully declared: a field the schema lacks is a field no client knows of.
    """
    strict = copy.deepcopy(spec)
    for name, component in strict["components"]["schemas"].items():
        if not name.endswith("Request") and "properties" in component:
            component.setdefault("additionalProperties", False)
    return strict


class _SentRequest(DjangoOpenAPIRequest):
    """Django's request as the app saw it, with the body as the test sent it."""

    def __init__(self, response: HttpResponse, body: bytes) -> None:
        self.request = response.wsgi_request
        match = self.request.resolver_match
        query = self.request.GET
        self.parameters = RequestParameters(
            # As the URL had them (the resolver made UUIDs of them).
            path={name: str(value) for name, value in (match.kwargs if match else {}).items()},
            query=ImmutableMultiDict(
                [(name, value) for name in query for value in query.getlist(name)]
            ),
            # A header with a line break can only come from a test client: HTTP cannot carry it.
            header=Headers(
                (name, value)
                for name, value in self.request.headers.items()
                if "\r" not in value and "\n" not in value
            ),
            cookie=ImmutableMultiDict(self.request.COOKIES),
        )
        self._sent_body = body

    @property
    def host_url(self) -> str:
        # Without Django's ALLOWED_HOSTS check: a test may send a forged Host on purpose.
        return f"{self.request.scheme}://{self.request.META.get('SERVER_NAME', 'testserver')}"

    @property
    def body(self) -> bytes:
        return self._sent_body


def _operation(spec: dict[str, Any], path_pattern: str | None, method: str) -> dict | None:
    if path_pattern is None:
        return None
    return spec["paths"].get(path_pattern, {}).get(method)


def _undeclared_headers(
    spec: dict[str, Any], operation: dict[str, Any], response: HttpResponse
) -> list[str]:
    declared = operation["responses"].get(str(response.status_code), {}).get("headers", {})
    declared_names = {name.lower() for name in declared}
    return sorted(
        name
        for name in response.headers
        if name.lower() not in TRANSPORT_HEADERS and name.lower() not in declared_names
    )


def violations(response: HttpResponse, body: bytes) -> Iterator[str]:
    """What the request and its answer do that the served schema does not allow."""
    schema = served_schema()
    request = _SentRequest(response, body)
    answer = DjangoOpenAPIResponse(response)
    operation = _operation(schema.spec, request.path_pattern, request.method)
    if operation is None:
        return  # not an operation of the API: nothing to hold it to
    call = f"{request.method.upper()} {request.path} -> {response.status_code}"
    if not 400 <= response.status_code < 500:  # a refused request may be anything
        for error in schema.openapi.iter_request_errors(request):
            yield f"{call}: accepted a request the schema forbids: {_explain(error)}"
    for error in schema.openapi.iter_response_errors(request, answer):
        yield f"{call}: the answer does not match the schema: {_explain(error)}"
    if str(response.status_code) in operation["responses"]:
        for name in _undeclared_headers(schema.spec, operation, response):
            yield f"{call}: header {name} is not declared for this answer"


def _explain(error: BaseException) -> str:
    """The schema errors with where they are, else the error and its causes."""
    details, causes = [], []
    cause: BaseException | None = error
    while cause is not None:
        causes.append(str(cause))
        for detail in getattr(cause, "schema_errors", None) or []:
            where = "/".join(map(str, detail.absolute_path)) or "(root)"
            details.append(f"{where}: {detail.message}")
        cause = cause.__cause__
    return "; ".join(details) if details else " / ".join(causes)


@pytest.fixture(autouse=True)
def api_calls_follow_the_schema(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Fail a test whose API calls, or the answers they get, break the served schema."""
    off_thread: list[str] = []

    def checked_request(client: Client, **environ: Any) -> HttpResponse:
        if not environ.get("PATH_INFO", "").startswith(API_PREFIX):
            return _original_request(client, **environ)
        payload = environ.get("wsgi.input")
        body = payload.read() if isinstance(payload, FakePayload) else b""
        environ["wsgi.input"] = FakePayload(body)
        response = _original_request(client, **environ)
        found = list(violations(response, body))
        if found:
            if threading.current_thread() is threading.main_thread():
                raise ContractViolation("\n".join(found))
            off_thread.extend(found)
        return response

    monkeypatch.setattr(Client, "request", checked_request)
    yield
    if off_thread:
        raise ContractViolation("\n".join(off_thread))
