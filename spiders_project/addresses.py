"""Which network addresses a scrape may reach: the public internet, and what an operator allows.

Only ``http`` and ``https`` URLs with a host. Loopback, private, link-local, cloud-metadata and
other special addresses are refused unless allowlisted, as ``host:port`` or a network
(``10.1.0.0/16``). Denied ``host:port`` entries (the platform's own scrapyd nodes and gateway) are
refused even when an allowlisted network covers them. The policy fails closed: a host that resolves
to no address, or whose lookup fails, is refused.

The gateway screens inputs with this policy for early, friendly errors. It is enforced where
connections are made: in every spider process by the resolver of ``node.egress`` (the address
checked is the address connected to), and for the browser by ``spiders_project.guard_proxy``.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# Cloud metadata services sit on link-local addresses (refused anyway), and these besides: Alibaba's,
# AWS's over IPv6, and Azure's WireServer (a public address only its VMs reach).
_METADATA = frozenset(
    ipaddress.ip_address(address) for address in ("100.100.100.200", "fd00:ec2::254", "168.63.129.16")
)


WEB_SCHEMES = ("http", "https")


class BlockedAddress(Exception):
    """The URL's host is, or resolves to, an address the policy refuses."""


class UnresolvedHost(BlockedAddress):
    """The URL's host has no address: refused, as every host the policy cannot check."""


def url_endpoint(url: str) -> tuple[str, int]:
    """The host and port a URL leads to; ``BlockedAddress`` unless it is an http(s) URL with a host."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in WEB_SCHEMES:
        raise BlockedAddress(f"only http and https URLs may be fetched, not {scheme or 'no scheme'}:")
    try:
        port = parts.port or default_port(scheme)
    except ValueError:
        raise BlockedAddress("the URL's port is not valid") from None
    if not parts.hostname:
        raise BlockedAddress("the URL has no host")
    return parts.hostname, port


def default_port(scheme: str) -> int:
    return 443 if scheme == "https" else 80


def normal_host(host: str) -> str:
    """A host name as the policy compares them: no brackets, no trailing dot, lower case."""
    return host.strip("[]").rstrip(".").lower()


def _host_port(entry: str) -> tuple[str, int]:
    host, _, port = entry.strip().rpartition(":")
    return normal_host(host), int(port)


@dataclass(frozen=True)
class AddressPolicy:
    allowed_networks: tuple[Network, ...] = ()
    allowed_endpoints: frozenset[tuple[str, int]] = field(default_factory=frozenset)
    denied_endpoints: frozenset[tuple[str, int]] = field(default_factory=frozenset)
    # The pools' proxies: spiders connect to them, but no tenant's URL may lead there.
    proxy_endpoints: frozenset[tuple[str, int]] = field(default_factory=frozenset)

    @classmethod
    def from_entries(
        cls, allowed: Iterable[str] = (), denied: Iterable[str] = (), proxies: Iterable[str] = ()
    ) -> AddressPolicy:
        """``allowed``: ``host:port`` or CIDR entries; ``denied`` and ``proxies``: ``host:port`` entries."""
        networks: list[Network] = []
        endpoints: set[tuple[str, int]] = set()
        for entry in allowed:
            entry = entry.strip()
            if not entry:
                continue
            if "/" in entry:
                networks.append(ipaddress.ip_network(entry, strict=False))
            else:
                endpoints.add(_host_port(entry))
        return cls(
            allowed_networks=tuple(networks),
            allowed_endpoints=frozenset(endpoints),
            denied_endpoints=frozenset(_host_port(entry) for entry in denied if entry.strip()),
            proxy_endpoints=frozenset(_host_port(entry) for entry in proxies if entry.strip()),
        )

    def to_entries(self) -> dict[str, list[str]]:
        return {
            "allowed": [str(network) for network in self.allowed_networks]
            + [f"{host}:{port}" for host, port in sorted(self.allowed_endpoints)],
            "denied": [f"{host}:{port}" for host, port in sorted(self.denied_endpoints)],
            "proxies": [f"{host}:{port}" for host, port in sorted(self.proxy_endpoints)],
        }

    def check(self, host: str, port: int, addresses: Iterable[str]) -> None:
        """Raise ``BlockedAddress`` unless ``host`` has addresses and every one may be reached on ``port``."""
        host = normal_host(host)
        addresses = list(addresses)
        if not addresses:
            raise UnresolvedHost(f"{host} does not resolve")
        for text in addresses:
            self.check_address(host, port, text)

    def check_address(self, host: str, port: int, text: str) -> None:
        """Raise ``BlockedAddress`` unless the address ``text`` (of ``host``) may be reached on ``port``."""
        host = normal_host(host)
        try:
            address = _ipv4_inside(ipaddress.ip_address(text.split("%", 1)[0]))
        except ValueError:
            raise BlockedAddress(f"{host} resolves to something that is not an address") from None
        endpoints = {(host, port), (str(address), port)}
        if endpoints & (self.denied_endpoints | self.proxy_endpoints):
            raise BlockedAddress(f"{host}:{port} is the platform's own service")
        if _is_public(address):
            return
        if endpoints & self.allowed_endpoints or any(address in network for network in self.allowed_networks):
            return
        raise BlockedAddress(f"{host} resolves to a non-public address ({address})")

    def allows(self, host: str, port: int, text: str) -> bool:
        try:
            self.check_address(host, port, text)
        except BlockedAddress:
            return False
        return True


def resolve(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (none when the lookup fails), in the resolver's order."""
    try:
        infos = socket.getaddrinfo(normal_host(host), port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, OSError):
        return []
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


# IPv6 prefixes that carry an IPv4 address a packet may end up at: NAT64 (RFC 6052, and the local-use
# 64:ff9b:1::/48 of RFC 8215), SIIT's IPv4-translated ::ffff:0:a.b.c.d, and 6to4.
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_TRANSLATED = ipaddress.ip_network("::ffff:0:0:0/96")
# Never public whatever ipaddress says: the deprecated site-local range and the local-use NAT64 one.
_NEVER_PUBLIC = (ipaddress.ip_network("fec0::/10"), ipaddress.ip_network("64:ff9b:1::/48"))


def _ipv4_inside(address: IPAddress) -> IPAddress:
    """The IPv4 address an IPv6 one stands for (mapped, compatible, NAT64, 6to4), else itself."""
    if not isinstance(address, ipaddress.IPv6Address):
        return address
    if address.ipv4_mapped:
        return address.ipv4_mapped
    if address.sixtofour:
        return address.sixtofour
    if address in _NAT64 or address in _TRANSLATED or (int(address) >> 32 == 0 and int(address) > 1):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address


def _is_public(address: IPAddress) -> bool:
    if address in _METADATA or any(address in network for network in _NEVER_PUBLIC):
        return False
    return address.is_global and not address.is_multicast
