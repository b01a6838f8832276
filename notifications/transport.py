"""An httpx transport whose connections go to the addresses that were checked.

A plain client resolves the host name itself when it connects, after (and apart from)
any check made on the name: a resolver that answers a public address to the check and
127.0.0.1 to the connect would send the POST inside. Here the check is the resolution:
the network backend resolves the name once, checks every address, and opens the TCP
connection to a checked address. Only the TCP destination is pinned; TLS (server name
indication and the certificate check), the Host header and the pool's keep-alive
still use the host name. A kept-alive connection stays on the address it was opened to.
No proxy from the environment is used: it would do its own lookup, past the check.
"""

from collections.abc import Callable, Iterable

import httpcore
import httpx

from .addresses import UnsafeAddress, resolve_checked

__all__ = ["CheckedAddressTransport", "UnsafeAddress"]


class _CheckedBackend(httpcore.SyncBackend):
    def __init__(self, allow_private: Callable[[], bool]) -> None:
        self._allow_private = allow_private

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        addresses = resolve_checked(host, port, allow_private=self._allow_private())
        failure: Exception | None = None
        for address in addresses:  # like socket.create_connection: the first that answers
            try:
                return super().connect_tcp(address, port, timeout, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        assert failure is not None
        raise failure


class CheckedAddressTransport(httpx.HTTPTransport):
    """HTTPTransport (certificates verified) connecting through the check.

    `allow_private` is asked at every new connection, so the policy follows the settings.
    UnsafeAddress (not an httpx error) is raised for a refused host.
    """

    def __init__(self, *, limits: httpx.Limits, allow_private: Callable[[], bool]) -> None:
        super().__init__(limits=limits)
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(verify=True, trust_env=True),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=_CheckedBackend(allow_private),
        )
