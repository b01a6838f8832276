"""What went wrong below HTTP, and the one HTTP session each thread talks to gateways through.

The question every failure must answer is: could the gateway have acted on the
request? Nothing was sent (the name did not resolve, the connection was refused
or timed out, the TLS handshake failed, no pooled connection was free): the
gateway certainly did nothing, `Retryable`. The request started to leave and no
usable answer came back (read timeout, connection reset after sending): it may
have been processed, `Ambiguous`.

"Started to leave" is observed, not guessed: the session's connections record,
per request, the moment the request is handed to the socket (`CallTrace`). A
failure before that moment is "not sent" whatever exception type carries it: a
TLS handshake reset reaches us as the same `ProtocolError` as a reset after
sending.
"""

import contextvars
import functools
import inspect
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import (
    ClosedPoolError,
    ConnectTimeoutError,
    EmptyPoolError,
    NameResolutionError,
    NewConnectionError,
)

from gateways.base import Ambiguous, GatewayError, Retryable

# Exceptions that by their type mean the request never left this machine.
_NOT_SENT = (
    NewConnectionError,  # refused, unreachable, DNS (NameResolutionError is a subclass)
    ConnectTimeoutError,
    NameResolutionError,
    EmptyPoolError,  # no pooled connection free
    ClosedPoolError,
    requests.exceptions.ConnectTimeout,
)


@dataclass
class CallTrace:
    """What the current HTTP request got to: set by the session's connections."""

    request_started: bool = False


_trace: contextvars.ContextVar[CallTrace | None] = contextvars.ContextVar(
    "gateway_call_trace", default=None
)


@contextmanager
def traced_call() -> Iterator[CallTrace]:
    """Trace the gateway call made inside the block (one or more HTTP requests)."""
    trace = CallTrace()
    token = _trace.set(trace)
    try:
        yield trace
    finally:
        _trace.reset(token)


def exception_chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    stack: list[BaseException] = [exc]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        for linked in (current.__cause__, current.__context__, getattr(current, "reason", None)):
            if isinstance(linked, BaseException):
                stack.append(linked)
        stack.extend(arg for arg in current.args if isinstance(arg, BaseException))


def request_never_sent(exc: BaseException, trace: CallTrace | None = None) -> bool:
    """True when the request certainly did not leave: by the failure's type, or because
    the traced request never reached its socket (e.g. the TLS handshake failed)."""
    if trace is not None and not trace.request_started:
        return True
    return any(isinstance(link, _NOT_SENT) for link in exception_chain(exc))


def transport_error(
    exc: BaseException, *, gateway: str, trace: CallTrace | None = None
) -> GatewayError:
    if request_never_sent(exc, trace):
        return Retryable(
            f"{gateway}: the request was not sent ({_cause(exc)})", gateway_message=str(exc)[:300]
        )
    return Ambiguous(
        f"{gateway}: no answer after the request was sent ({_cause(exc)})",
        gateway_message=str(exc)[:300],
    )


def _cause(exc: BaseException) -> str:
    """The innermost named cause, for the attempt's record: e.g. ConnectionResetError."""
    links = list(exception_chain(exc))
    return type(links[-1]).__name__ if links else type(exc).__name__


def _mark_request_started() -> None:
    trace = _trace.get()
    if trace is not None:
        trace.request_started = True


class _TracedHTTPConnection(HTTPConnection):
    def request(self, *args: Any, **kwargs: Any) -> None:
        # For plain HTTP the connection is opened inside request(); a failure to open it
        # is a NewConnectionError/ConnectTimeoutError, "not sent" by its type.
        _mark_request_started()
        super().request(*args, **kwargs)


class _TracedHTTPSConnection(HTTPSConnection):
    def request(self, *args: Any, **kwargs: Any) -> None:
        # The TCP connection and the TLS handshake were made before this call.
        _mark_request_started()
        super().request(*args, **kwargs)


class _TracedHTTPConnectionPool(HTTPConnectionPool):
    ConnectionCls = _TracedHTTPConnection


class _TracedHTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = _TracedHTTPSConnection


class _TracedAdapter(HTTPAdapter):
    """requests' adapter with no retries and connections that report when they send."""

    def __init__(self) -> None:
        super().__init__(max_retries=0)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": _TracedHTTPConnectionPool,
            "https": _TracedHTTPSConnectionPool,
        }


# Session.request's parameters after the method and the URL, in order.
_REQUEST_PARAMETERS = tuple(inspect.signature(requests.Session.request).parameters)[3:]


@functools.lru_cache(maxsize=64)
def environment_settings(origin: str) -> tuple[dict[str, str], str | None]:
    """The proxies the environment sets for a gateway's origin (`scheme://host[:port]`,
    NO_PROXY applied) and its CA bundle (REQUESTS_CA_BUNDLE, CURL_CA_BUNDLE): what
    requests reads on every call, once per origin for the life of the process."""
    return (
        requests.utils.get_environ_proxies(origin),
        os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE"),
    )


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"


class TracedSession(requests.Session):
    """requests' Session, with connections that report when they send, and the
    environment read once per gateway origin (`environment_settings`): requests reads it
    on every call, scanning the whole environment several times, a few percent of a
    charge's CPU. A .netrc is never read: its credentials have no business at a gateway."""

    def __init__(self) -> None:
        super().__init__()
        self.trust_env = False
        self.mount("http://", _TracedAdapter())
        self.mount("https://", _TracedAdapter())

    def request(
        self, method: str, url: str | bytes, *args: Any, **kwargs: Any
    ) -> requests.Response:
        trace = _trace.get()
        if trace is not None:
            trace.request_started = False  # each HTTP request of a call is judged on its own
        kwargs.update(zip(_REQUEST_PARAMETERS, args, strict=False))
        text_url = url.decode() if isinstance(url, bytes) else url
        proxies, ca_bundle = environment_settings(_origin(text_url))
        if proxies:
            kwargs["proxies"] = {**proxies, **(kwargs.get("proxies") or {})}
        if ca_bundle and kwargs.get("verify") in (None, True):
            kwargs["verify"] = ca_bundle
        return super().request(method, url, **kwargs)


_sessions = threading.local()


def pooled_session() -> TracedSession:
    """This thread's `requests` session: connections to a gateway are kept alive and reused.

    The SDKs open a new session (a new TCP and TLS handshake) per call or per client;
    they are handed this one instead. One per thread, since a Session is not documented
    as thread-safe. No retries are mounted: the processing engine owns them.
    """
    session = getattr(_sessions, "session", None)
    if session is None:
        session = _sessions.session = TracedSession()
    return session


class ThreadPooledSession(requests.Session):
    """Stands in for a `requests.Session` that an SDK keeps for all threads (Stripe's
    RequestsClient): each call goes through the calling thread's pooled session. A Session
    itself only so that it is one where a Session is asked for; its own pools stay unused."""

    def request(self, *args: Any, **kwargs: Any) -> requests.Response:
        return pooled_session().request(*args, **kwargs)
