"""Where webhooks may go: no internal addresses, unless PAYWAVE_WEBHOOK_ALLOW_PRIVATE.

A wallet app chooses the URL the workers POST to, so without a rule it could
point them at PayWave's own network (server-side request forgery). The URL is
checked when the endpoint is created (scheme, literal addresses, local names;
no DNS lookup in the API request) and every address its host resolves to is
checked again before each send, which also catches a name re-pointed later.
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


def check_resolves_public(url: str) -> None:
    """Raise UnsafeAddress unless every address of the URL's host is public."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise UnsafeAddress(f"cannot resolve {host}: {exc}") from exc
    for info in infos:
        address = ipaddress.ip_address(info[4][0].split("%", 1)[0])
        if not _is_public(address):
            raise UnsafeAddress(f"{host} resolves to {address}, which is not a public address")
