"""Where webhooks may go: no internal addresses, unless PAYWAVE_WEBHOOK_ALLOW_PRIVATE.

A wallet app chooses the URL the workers POST to, so without a rule it could
point them at PayWave's own network (server-side request forgery). The URL is
checked when the endpoint is created (scheme, literal addresses, local names;
no DNS lookup in the API request), and every address its host resolves to is
checked whenever a connection to it is opened (`notifications.transport`). The
connection then goes to one of those checked addresses, never to the result of
a second lookup: a name that answers a public address to the check and a
private one a moment later (DNS rebinding) cannot send a webhook inside.
"""

import ipaddress
import socket
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator

LOCAL_SUFFIXES = (".localhost", ".local", ".internal", ".localdomain", ".home.arpa")

_url_validator = URLValidator(schemes=["http", "https"])


class UnsafeAddress(Exception):
    """The URL's host is, or resolves to, an address webhooks may not reach."""


def _is_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


def webhook_url_problem(url: str, *, allow_private: bool) -> str | None:
    """Why this URL cannot receive webhooks, or None."""
    try:
        _url_validator(url)
    except ValidationError:
        return "Enter a valid http:// or https:// URL."
    parts = urlsplit(url)
    if parts.username is not None or parts.password is not None:
        return "Credentials in the URL are not allowed; authenticate with the signature."
    if allow_private:
        return None
    if parts.scheme != "https":
        return "The URL must use https."
    host = (parts.hostname or "").rstrip(".").lower()
    single_label = "." not in host and ":" not in host
    if host == "localhost" or host.endswith(LOCAL_SUFFIXES) or single_label:
        return "The URL must point to a public host."
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        return None
    return None if _is_public(literal) else "The URL must point to a public address."


def resolve_checked(host: str, port: int, *, allow_private: bool) -> list[str]:
    """The addresses to connect to for `host`, in the resolver's order, all checked.

    Raises UnsafeAddress if the name does not resolve or, unless `allow_private`, if any
    of its addresses is not public (one bad answer makes the whole name suspect).
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise UnsafeAddress(f"cannot resolve {host}: {exc}") from exc
    addresses: list[str] = []
    for info in infos:
        raw = str(info[4][0])
        if not allow_private:
            address = ipaddress.ip_address(raw.split("%", 1)[0])
            if not _is_public(address):
                raise UnsafeAddress(f"{host} resolves to {address}, which is not a public address")
        if raw not in addresses:
            addresses.append(raw)
    if not addresses:
        raise UnsafeAddress(f"cannot resolve {host}: no address")
    return addresses
