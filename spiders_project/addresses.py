"""Which network addresses a scrape may reach: the public internet, and what an operator allows.

Loopback, private, link-local, cloud-metadata and other special addresses are refused unless
allowlisted, as ``host:port`` or a network (``10.1.0.0/16``). Denied ``host:port`` entries (the
platform's own scrapyd nodes and gateway) are refused even when an allowlisted network covers them.
The gateway checks inputs with this policy; the spider checks every request and redirect again.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# Cloud metadata services sit on link-local addresses (refused anyway), and these besides.
_METADATA = frozenset({ipaddress.ip_address("100.100.100.200"), ipaddress.ip_address("fd00:ec2::254")})


class BlockedAddress(Exception):
    """The URL's host is, or resolves to, an address the policy refuses."""


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

    @classmethod
    def from_entries(cls, allowed: Iterable[str] = (), denied: Iterable[str] = ()) -> AddressPolicy:
        """``allowed``: ``host:port`` or CIDR entries; ``denied``: ``host:port`` entries."""
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
        )

    def to_entries(self) -> dict[str, list[str]]:
        return {
            "allowed": [str(network) for network in self.allowed_networks]
            + [f"{host}:{port}" for host, port in sorted(self.allowed_endpoints)],
            "denied": [f"{host}:{port}" for host, port in sorted(self.denied_endpoints)],
        }

    def check(self, host: str, port: int, addresses: Iterable[str]) -> None:
        """Raise ``BlockedAddress`` unless every address ``host`` resolves to may be reached on ``port``."""
        host = normal_host(host)
        for text in addresses:
            address = _ipv4_inside(ipaddress.ip_address(text.split("%", 1)[0]))
            endpoints = {(host, port), (str(address), port)}
            if endpoints & self.denied_endpoints:
                raise BlockedAddress(f"{host}:{port} is the platform's own service")
            if _is_public(address):
                continue
            if endpoints & self.allowed_endpoints or any(
                address in network for network in self.allowed_networks
            ):
                continue
            raise BlockedAddress(f"{host} resolves to a non-public address ({address})")

    def check_resolving(self, host: str, port: int) -> None:
        """Resolve ``host`` and check each address; a name that does not resolve is left to the fetch."""
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError):
            return
        self.check(host, port, [str(info[4][0]) for info in infos])


# IPv6 prefixes that carry an IPv4 address a packet may end up at: NAT64 and 6to4.
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def _ipv4_inside(address: IPAddress) -> IPAddress:
    """The IPv4 address an IPv6 one stands for (mapped, compatible, NAT64, 6to4), else itself."""
    if not isinstance(address, ipaddress.IPv6Address):
        return address
    if address.ipv4_mapped:
        return address.ipv4_mapped
    if address.sixtofour:
        return address.sixtofour
    if address in _NAT64 or (int(address) >> 32 == 0 and int(address) > 1):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address


def _is_public(address: IPAddress) -> bool:
    if address in _METADATA:
        return False
    return address.is_global and not address.is_multicast
