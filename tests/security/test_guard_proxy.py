"""The guard proxy on its own: what a client of it (the browser, or a spider's request through a
pool's proxy) can make it send upstream."""

from __future__ import annotations

import asyncio
import socket
import threading

from spiders_project.addresses import AddressPolicy
from spiders_project.guard_proxy import GuardProxy, Upstream
from tests.security.servers import AttackerSite, Canary


class KeepAliveProxy:
    """An upstream proxy that keeps every connection open and records every byte it is sent:
    a request pipelined behind a checked one would reach it unchecked."""

    def __init__(self) -> None:
        self._socket = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._socket.getsockname()[1]
        self.received = b""
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        connection, _ = self._socket.accept()
        connection.settimeout(3)
        answered = False
        with connection:
            while True:
                try:
                    data = connection.recv(65536)
                except OSError:
                    return
                if not data:
                    return
                self.received += data
                if not answered and b"\r\n\r\n" in self.received:
                    answered = True
                    connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")


def test_a_request_pipelined_behind_a_checked_one_never_reaches_the_upstream(
    attacker: AttackerSite, canary: Canary
) -> None:
    upstream = KeepAliveProxy()
    policy = AddressPolicy.from_entries([f"127.0.0.1:{attacker.port}"])
    allowed = f"GET {attacker.url}ok HTTP/1.1\r\nHost: 127.0.0.1:{attacker.port}\r\n\r\n"
    smuggled = f"GET {canary.url}secret HTTP/1.1\r\nHost: 127.0.0.1:{canary.port}\r\n\r\n"

    async def send_both() -> bytes:
        guard = await GuardProxy(policy, Upstream("127.0.0.1", upstream.port)).start()
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", guard.port)
            writer.write((allowed + smuggled).encode())
            await writer.drain()
            answer = await asyncio.wait_for(reader.read(), 10)  # until the guard closes
            writer.close()
            return answer
        finally:
            await guard.close()

    answer = asyncio.run(send_both())

    assert answer.startswith(b"HTTP/1.1 200 OK")
    assert b"connection: close" in answer.lower()
    # The upstream was asked for the checked one alone, by address.
    assert upstream.received.count(b" HTTP/1.1\r\n") == 1
    assert upstream.received.startswith(f"GET http://127.0.0.1:{attacker.port}/ok HTTP/1.1".encode())
    assert f":{canary.port}".encode() not in upstream.received
