"""The address ``usermgmt serve`` listens on: binding it, and saying plainly why it cannot.

``--port 0`` asks the kernel for a free port; a host with several addresses
(``localhost`` as 127.0.0.1 and ::1) gets that same port on each, so the one
port the banner prints reaches all of them. A port that is taken is
``PORT_IN_USE`` with exit code 1 (the command is right; the machine is busy),
not a validation error.
"""

from __future__ import annotations

import errno
import socket
import sys

EXIT_REFUSED = 1  # the address is taken or not ours to use
EXIT_INVALID = 2  # the host or port given is wrong
PORT_ZERO_ATTEMPTS = 5  # --port 0 on several addresses: tries to find a port free on all


class ListenError(Exception):
    """Why the server cannot listen: the CLI's error code, a message and the exit code."""

    def __init__(self, code: str, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.code = code
        self.exit_code = exit_code

    def report(self) -> int:
        """Say it on stderr (``error: <CODE>: <message>``); the exit code."""
        print(f"error: {self.code}: {self}", file=sys.stderr)
        return self.exit_code


def bind_sockets(
    host: str, port: int, *, listen: bool = True, reuse_port: bool = False
) -> list[socket.socket]:
    """Sockets bound to ``host``/``port`` (resolved the way waitress resolves them).

    ``listen=False`` only reserves the address (a bound socket that does not listen
    is given no connections); ``reuse_port`` lets each worker bind its own.
    Raises :class:`ListenError`.
    """
    from waitress.adjustments import Adjustments

    if not 0 <= port <= 65535:
        raise ListenError("VALIDATION_ERROR", "the port must be between 0 and 65535", EXIT_INVALID)
    try:
        adj = Adjustments(host=host, port=port)
    except ValueError:
        raise ListenError(
            "VALIDATION_ERROR",
            f"cannot listen on {host!r}: not an address or a known host name",
            EXIT_INVALID,
        ) from None
    addresses = [info[:4] for info in adj.listen]
    attempts = PORT_ZERO_ATTEMPTS if port == 0 and len(addresses) > 1 else 1
    for attempt in range(1, attempts + 1):
        try:
            if reuse_port:
                addresses = _unclaimed(addresses, adj.backlog)
            return _bind(addresses, adj.backlog, listen, reuse_port)
        except OSError as exc:
            # The port the first address got may be taken on another: try another.
            if exc.errno == errno.EADDRINUSE and attempt < attempts:
                addresses = [(*a[:3], (a[3][0], 0, *a[3][2:])) for a in addresses]
                continue
            raise refusal(exc, host, port) from None
    raise AssertionError("unreachable")


def _unclaimed(addresses, backlog: int) -> list:
    """``addresses`` (with the port a port 0 got), once no one else holds them.

    SO_REUSEPORT would let a second server run by the same user join the first
    one's sockets on the same port and take half its connections, silently.
    A bind without it fails if anyone listens there, so a probe goes first.
    """
    probes = _bind(addresses, backlog, listen=False, reuse_port=False)
    try:
        return [(s.family, s.type, s.proto, s.getsockname()) for s in probes]
    finally:
        for probe in probes:
            probe.close()


def _bind(addresses, backlog: int, listen: bool, reuse_port: bool) -> list[socket.socket]:
    sockets: list[socket.socket] = []
    try:
        for family, socktype, proto, sockaddr in addresses:
            if sockets and sockaddr[1] == 0:  # port 0: the port the first address got
                sockaddr = (sockaddr[0], sockets[0].getsockname()[1], *sockaddr[2:])
            sock = socket.socket(family, socktype, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if reuse_port:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(sockaddr)
            if listen:
                sock.listen(backlog)
            sock.setblocking(False)
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    return sockets


def own_listeners(reserved: list[socket.socket]) -> list[socket.socket]:
    """A worker's own listening sockets on the parent's reserved addresses (SO_REUSEPORT)."""
    from waitress.adjustments import Adjustments

    addresses = [(s.family, s.type, s.proto, s.getsockname()) for s in reserved]
    return _bind(addresses, Adjustments().backlog, listen=True, reuse_port=True)


def format_address(host: str, port: int | str) -> str:
    """``host:port`` for a URL (an IPv6 host in brackets)."""
    return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"


def display_address(sockets: list[socket.socket]) -> str:
    """``host:port`` of the first socket, with the port the kernel gave it."""
    flags = socket.NI_NUMERICHOST | socket.NI_NUMERICSERV
    return format_address(*socket.getnameinfo(sockets[0].getsockname(), flags))


def refusal(exc: OSError, host: str, port: int) -> ListenError:
    """The ListenError for an OSError from binding ``host``:``port``."""
    where = format_address(host, port)
    if exc.errno == errno.EADDRINUSE:
        return ListenError(
            "PORT_IN_USE",
            f"{where} is already in use; pick another with --port (or --port 0 for any free port)",
            EXIT_REFUSED,
        )
    if exc.errno == errno.EACCES:
        return ListenError(
            "PORT_NOT_PERMITTED",
            f"this user may not listen on {where} (ports below 1024 need privileges); "
            "pick another with --port",
            EXIT_REFUSED,
        )
    if exc.errno == errno.EADDRNOTAVAIL:
        return ListenError(
            "VALIDATION_ERROR",
            f"cannot listen on {where}: {host} is not an address of this machine",
            EXIT_INVALID,
        )
    return ListenError("OS_ERROR", f"cannot listen on {where}: {exc.strerror or exc}", EXIT_REFUSED)
