"""Where the HTTP tool may connect: host allow-lists with ports, and IP address checks.

A host name on an allow-list says nothing about where it leads: ``localhost``, a name
whose DNS points at ``10.0.0.5`` or ``169.254.169.254`` (cloud metadata), or an IPv6 form
of ``127.0.0.1`` all reach internal services. So every address a name resolves to is
checked (:func:`address_problem`), and only the exact ``host:port`` entries and networks
of an :class:`InternalAllowList` may lead to a non-public address.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable, Iterable, Sequence

import attrs
import trio

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

Resolver = Callable[[str, int], Awaitable[Sequence[str]]]
"""Resolves ``(host, port)`` to IP address strings (the HTTP tool's DNS lookup)."""

DEFAULT_PORTS = {"http": 80, "https": 443}
"""The port a URL without one uses, by scheme."""

_SPECIAL = (
    ("is_unspecified", "unspecified"),
    ("is_loopback", "loopback"),
    ("is_link_local", "link-local"),
    ("is_multicast", "multicast"),
    ("is_private", "private"),
    ("is_reserved", "reserved"),
)


def parse_ip(text: str) -> IPAddress | None:
    """``text`` as an IP address (an IPv6 zone such as ``%eth0`` dropped), else ``None``."""
    try:
        return ipaddress.ip_address(text.split("%", 1)[0].strip("[]"))
    except ValueError:
        return None


def address_problem(ip: IPAddress) -> str | None:
    """Why ``ip`` is not a public address (``"loopback"``, ``"private"``, ...), or ``None``.

    Refused: unspecified, loopback, link-local, multicast, private, reserved, shared
    (carrier-grade NAT) and other non-global ranges, IPv6 site-local and Teredo, and
    IPv4-mapped or 6to4 IPv6 addresses whose embedded IPv4 address is any of those.
    """
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            inner = address_problem(ip.ipv4_mapped)
            return None if inner is None else f"IPv4-mapped {inner}"
        if ip.sixtofour is not None:
            inner = address_problem(ip.sixtofour)
            return None if inner is None else f"6to4 {inner}"
        if ip.teredo is not None:
            return "Teredo tunnel"
        if ip.is_site_local:
            return "site-local"
    for attribute, label in _SPECIAL:
        if getattr(ip, attribute):
            return label
    return None if ip.is_global else "not globally routable"


def normalise_host(host: str) -> str:
    """``host`` compared case-insensitively, without a trailing dot or IPv6 brackets."""
    return host.strip().rstrip(".").lower().removeprefix("[").removesuffix("]")


def split_host_port(entry: str) -> tuple[str, int | None]:
    """``"host"``, ``"host:port"``, ``"[v6]:port"`` or a bare IPv6 address, split.

    Raises:
        ValueError: an empty host or a port that is not in 1..65535.
    """
    entry = entry.strip()
    host, port = entry, None
    if entry.startswith("["):
        closing = entry.find("]")
        if closing < 0:
            raise ValueError(f"unclosed '[' in {entry!r}")
        host, rest = entry[1:closing], entry[closing + 1 :]
        if rest:
            if not rest.startswith(":"):
                raise ValueError(f"unexpected {rest!r} after the address in {entry!r}")
            port = _port(rest[1:], entry)
    elif entry.count(":") == 1:
        host, text = entry.split(":")
        port = _port(text, entry)
    host = normalise_host(host)
    if not host:
        raise ValueError(f"no host in {entry!r}")
    return host, port


def _port(text: str, entry: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise ValueError(f"port {text!r} in {entry!r} is not a number in 1..65535")
    return int(text)


@attrs.frozen
class HostAllowList:
    """Which ``host:port`` a URL may name.

    Entries are ``"api.example.com"`` (exactly that host), ``"*.example.com"`` (its
    subdomains, not itself), each optionally with ``":port"``. An entry without a port
    allows only the scheme's default port (80 for http, 443 for https), so a redirect to
    ``api.example.com:6379`` is refused unless that port is listed.
    """

    entries: tuple[tuple[str, int | None], ...]

    @classmethod
    def parse(cls, entries: Iterable[str]) -> HostAllowList:
        """Parse allow-list entries (see the class).

        Raises:
            ValueError: no entries, or an entry without a host or with a bad port.
        """
        parsed = tuple(split_host_port(entry) for entry in entries)
        if not parsed:
            raise ValueError("allowed_hosts must name at least one host")
        return cls(parsed)

    def allows(self, host: str, port: int, default_port: int) -> bool:
        """Whether ``host:port`` is allowed (``default_port``: the URL scheme's)."""
        host = normalise_host(host)
        for pattern, allowed_port in self.entries:
            if port != (default_port if allowed_port is None else allowed_port):
                continue
            if pattern.startswith("*."):
                suffix = pattern[1:]
                if host.endswith(suffix) and len(host) > len(suffix):
                    return True
            elif host == pattern:
                return True
        return False

    def describe(self) -> str:
        """The entries as written back (``host`` or ``host:port``)."""
        return ", ".join(
            host if port is None else f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
            for host, port in self.entries
        )


@attrs.frozen
class InternalAllowList:
    """The explicit exceptions to "public addresses only".

    Entries are exact ``"host:port"`` pairs (``"127.0.0.1:8080"``, ``"db.internal:5432"``,
    ``"[::1]:9000"``): whatever that host resolves to may be reached on that port; or
    networks in CIDR form (``"10.20.0.0/16"``): any address inside may be reached on an
    allowed ``host:port``.
    """

    exact: frozenset[tuple[str, int]] = frozenset()
    networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def parse(cls, entries: Iterable[str]) -> InternalAllowList:
        """Parse the entries (see the class).

        Raises:
            ValueError: an entry that is neither ``host:port`` nor a network.
        """
        exact: set[tuple[str, int]] = set()
        networks: list[IPNetwork] = []
        for entry in entries:
            if "/" in entry:
                try:
                    networks.append(ipaddress.ip_network(entry.strip()))
                except ValueError as exc:
                    raise ValueError(f"allow_internal entry {entry!r}: {exc}") from None
                continue
            host, port = split_host_port(entry)
            if port is None:
                raise ValueError(
                    f"allow_internal entry {entry!r} needs a port ('host:port') or must "
                    "be a network such as '10.0.0.0/8'"
                )
            exact.add((host, port))
        return cls(frozenset(exact), tuple(networks))

    def allows(self, host: str, port: int, ip: IPAddress) -> bool:
        """Whether ``host:port``, resolved to ``ip``, is explicitly allowed."""
        if (normalise_host(host), port) in self.exact:
            return True
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return any(ip.version == net.version and ip in net for net in self.networks)


async def resolve_host(host: str, port: int) -> list[str]:
    """The addresses ``host`` resolves to, in the system's preference order (DNS runs
    in a worker thread, abandoned on cancellation)."""
    infos = await trio.socket.getaddrinfo(host, port, type=trio.socket.SOCK_STREAM)
    addresses: list[str] = []
    for *_, sockaddr in infos:
        address = str(sockaddr[0])
        if address not in addresses:
            addresses.append(address)
    return addresses
