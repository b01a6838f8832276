"""Requests, responses and a small path router, independent of the socket server."""

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import parse_qs, unquote

GATEWAYS = ("stripe", "mercadopago", "gerencianet", "paypal")


@dataclass
class Request:
    method: str
    path: str  # without the query string
    query: dict[str, list[str]]
    headers: dict[str, str]  # names lowercased
    body: bytes
    params: dict[str, str] = field(default_factory=dict)  # from the route pattern

    @classmethod
    def build(cls, method: str, target: str, headers: Mapping[str, str], body: bytes) -> "Request":
        path, _, query = target.partition("?")
        return cls(
            method=method.upper(),
            path=path,
            query=parse_qs(query, keep_blank_values=True),
            headers={name.lower(): value for name, value in headers.items()},
            body=body,
        )

    def header(self, name: str, default: str = "") -> str:
        return self.headers.get(name.lower(), default)

    def query_value(self, name: str, default: str = "") -> str:
        values = self.query.get(name)
        return values[0] if values else default

    def json(self, **options: Any) -> Any:
        """The body as JSON (an empty body is `{}`); ValueError if it is not JSON."""
        if not self.body.strip():
            return {}
        return json.loads(self.body, **options)

    @property
    def gateway(self) -> str | None:
        first = self.path.lstrip("/").split("/", 1)[0]
        return first if first in GATEWAYS else None

    @property
    def bearer_token(self) -> str:
        scheme, _, token = self.header("authorization").partition(" ")
        return token.strip() if scheme.lower() == "bearer" else ""


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    # False for answers an idempotency layer must not save (e.g. parameter validation).
    replayable: bool = True

    @classmethod
    def json(
        cls,
        status: int,
        data: Any,
        *,
        content_type: str = "application/json",
        headers: Mapping[str, str] | None = None,
        replayable: bool = True,
    ) -> "Response":
        return cls(
            status=status,
            body=json.dumps(data).encode(),
            headers={"Content-Type": content_type, **(headers or {})},
            replayable=replayable,
        )

    @classmethod
    def html(cls, status: int, text: str) -> "Response":
        return cls(status, text.encode(), {"Content-Type": "text/html; charset=utf-8"})

    def with_headers(self, **headers: str) -> "Response":
        return replace(self, headers={**self.headers, **headers})

    def data(self) -> Any:
        return json.loads(self.body)


Handler = Callable[[Request], Response]


@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    handler: Handler


def route(method: str, template: str, handler: Handler) -> Route:
    """A route from a template like "/stripe/v1/payment_intents/{id}/cancel"."""
    parts = re.split(r"\{(\w+)\}", template)
    regex = "".join(
        re.escape(part) if index % 2 == 0 else f"(?P<{part}>[^/]+)"
        for index, part in enumerate(parts)
    )
    return Route(method.upper(), re.compile(f"^{regex}/?$"), handler)


class Router:
    def __init__(self, routes: list[Route] | None = None) -> None:
        self._routes: list[Route] = list(routes or [])

    def add(self, routes: list[Route]) -> None:
        self._routes.extend(routes)

    def match(self, method: str, path: str) -> tuple[Handler | None, dict[str, str], bool]:
        """(handler, path params, whether the path exists under some other method)."""
        path_exists = False
        for candidate in self._routes:
            found = candidate.pattern.match(path)
            if found is None:
                continue
            if candidate.method == method:
                return (
                    candidate.handler,
                    {k: unquote(v) for k, v in found.groupdict().items()},
                    True,
                )
            path_exists = True
        return None, {}, path_exists
