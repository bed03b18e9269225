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


def _host_port(entry: str) -> tuple[str, int]:
    host, _, port = entry.strip().rpartition(":")
    return host.strip("[]").lower(), int(port)


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
        host = host.strip("[]").lower()
        for text in addresses:
            address = ipaddress.ip_address(text.split("%", 1)[0])
            if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
                address = address.ipv4_mapped
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


def _is_public(address: IPAddress) -> bool:
    if address in _METADATA:
        return False
    return address.is_global and not address.is_multicast
