"""Connects to HOST:PORT the way Scrapy's downloader does (Twisted's HostnameEndpoint), with
``node.egress.GuardedResolver`` installed as a spider process has it; prints ``connected`` or
``refused <error>``. Arguments: HOST PORT [ALLOWED-ENTRY ...]."""

from __future__ import annotations

import sys
from typing import Any

from twisted.internet import endpoints, protocol
from twisted.internet.defer import ensureDeferred
from twisted.internet.task import react

from node.egress import GuardedResolver
from spiders_project.addresses import AddressPolicy


async def probe(reactor: Any, host: str, port: int, allowed: list[str]) -> None:
    GuardedResolver(reactor, AddressPolicy.from_entries(allowed)).install_on_reactor()
    endpoint = endpoints.HostnameEndpoint(reactor, host, port, timeout=5)
    try:
        connected = await endpoint.connect(protocol.Factory.forProtocol(protocol.Protocol))
    except Exception as exc:
        print("refused", type(exc).__name__)
        return
    connected.transport.loseConnection()
    print("connected")


if __name__ == "__main__":
    host, port, *allowed = sys.argv[1:]
    react(lambda reactor: ensureDeferred(probe(reactor, host, int(port), allowed)))
