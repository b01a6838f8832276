"""Classify what went wrong below HTTP: was the request sent or not?

Every SDK here talks through `requests`. A connection that was never made
(refused, connect timeout, DNS) means nothing reached the gateway: Retryable.
Anything after the request may have left (read timeout, connection reset
mid-answer) means the charge may exist: Ambiguous.
"""

import threading
from collections.abc import Iterator

import requests
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError

from gateways.base import Ambiguous, GatewayError, Retryable

_NOT_SENT = (NewConnectionError, ConnectTimeoutError, NameResolutionError)


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


def request_never_sent(exc: BaseException) -> bool:
    return any(
        isinstance(link, (*_NOT_SENT, requests.exceptions.ConnectTimeout))
        for link in exception_chain(exc)
    )


def transport_error(exc: BaseException, *, gateway: str) -> GatewayError:
    if request_never_sent(exc):
        return Retryable(f"{gateway}: could not connect", gateway_message=str(exc)[:300])
    return Ambiguous(
        f"{gateway}: no answer after the request was sent", gateway_message=str(exc)[:300]
    )


_sessions = threading.local()


def pooled_session() -> requests.Session:
    """This thread's `requests` session: connections to a gateway are kept alive and reused.

    The Mercado Pago and Efí SDKs open a new session (a new TCP and TLS handshake) for
    every call; they are handed this one instead. One per thread, since a Session is not
    documented as thread-safe. No retries are mounted: the processing engine owns them.
    """
    session = getattr(_sessions, "session", None)
    if session is None:
        session = _sessions.session = requests.Session()
    return session
