"""Which URLs a webhook may call.

http or https, no credentials in the URL, and (unless
``USERMGMT_WEBHOOK_ALLOW_PRIVATE`` is set) only hosts whose every address is a
public one: loopback, private, link-local (cloud metadata at 169.254.169.254),
shared, reserved and multicast addresses are refused. The check runs when a
subscription is saved and again at each delivery after resolving the name, and
the request then goes to the address that was checked, so a name that changes
its answer in between cannot redirect it.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

MAX_URL = 2000


class TargetRefused(Exception):
    """The URL may not be called; the message says why (no secrets in it)."""


@dataclass(frozen=True)
class Target:
    url: str
    host: str  # as written (for the Host header and TLS)
    address: str  # the checked address to connect to
    pinned_url: str  # the URL with the address in place of the host


def check_url(url: str) -> str:
    """The URL's shape (not its addresses): returns it stripped, or TargetRefused."""
    url = url.strip()
    if len(url) > MAX_URL:
        raise TargetRefused(f"must be at most {MAX_URL} characters")
    if any(c.isspace() or not c.isprintable() for c in url):
        raise TargetRefused("must not contain spaces or control characters (percent-encode them)")
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise TargetRefused("must be an absolute http:// or https:// URL")
    if parts.username or parts.password:
        raise TargetRefused("must not contain credentials: receivers check the signature")
    if parts.fragment:
        raise TargetRefused("must not contain a #fragment")
    try:
        parts.port  # noqa: B018 - raises for a bad port
    except ValueError:
        raise TargetRefused("has an invalid port") from None
    return url


def _public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def resolve(url: str, *, allow_private: bool) -> Target:
    """Resolve the URL's host and check its addresses; TargetRefused when it may not be called."""
    url = check_url(url)
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise TargetRefused(f"host {host} does not resolve") from None
    addresses = list(dict.fromkeys(info[4][0] for info in infos))
    if not addresses:
        raise TargetRefused(f"host {host} does not resolve")
    if not allow_private:
        refused = [a for a in addresses if not _public(a)]
        if refused:
            raise TargetRefused(
                f"host {host} resolves to a non-public address ({refused[0]}); "
                "set USERMGMT_WEBHOOK_ALLOW_PRIVATE=1 to allow it"
            )
    address = addresses[0]
    literal = f"[{address}]" if ":" in address else address
    netloc = f"{literal}:{parts.port}" if parts.port else literal
    pinned = parts._replace(netloc=netloc).geturl()
    return Target(url=url, host=host, address=address, pinned_url=pinned)
