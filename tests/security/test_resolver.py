"""The connect-time half of the egress guard on its own: with the resolver a spider process runs
under, a connection reaches only the addresses the policy allows, however the host is named."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.harness import REPO
from tests.security.servers import Canary


def _probe(host: str, port: int, *allowed: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "tests.security.resolver_probe", host, str(port), *allowed],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1", "127.1", "::ffff:127.0.0.1"])
def test_the_resolver_refuses_forbidden_addresses_at_connect_time(canary: Canary, host: str) -> None:
    before = canary.connections

    assert _probe(host, canary.port).startswith("refused")
    assert canary.connections == before


def test_the_resolver_lets_through_what_the_operator_allows(canary: Canary) -> None:
    before = canary.connections

    assert _probe("127.0.0.1", canary.port, f"127.0.0.1:{canary.port}") == "connected"
    assert _probe("localhost", canary.port, f"127.0.0.1:{canary.port + 1}").startswith("refused")
    assert canary.connections == before + 1


def test_a_project_cannot_swap_in_a_handler_that_escapes_the_guard() -> None:
    """httpx's or aiohttp's handler would look names up on its own, past the guarded resolver, and
    a stock scrapy-playwright handler would let its browser out unguarded."""
    from scrapy.settings import Settings

    from node.egress import EgressGuard

    settings = Settings()
    httpx_handler = "scrapy.core.downloader.handlers._httpx.HttpxDownloadHandler"
    playwright = "scrapy_playwright.handler.ScrapyPlaywrightDownloadHandler"
    settings.set("DOWNLOAD_HANDLERS", {"https": httpx_handler, "http": playwright}, priority="project")
    settings.set("TWISTED_REACTOR_ENABLED", False, priority="project")

    EgressGuard().update_settings(settings)

    handlers = settings.getwithbase("DOWNLOAD_HANDLERS")
    assert handlers["https"] == "scrapy.core.downloader.handlers.http11.HTTP11DownloadHandler"
    # A browser of the project's own would follow redirects and subresources unguarded.
    assert handlers["http"] == "spiders_project.rendering.GuardedPlaywrightHandler"
    assert settings.getbool("TWISTED_REACTOR_ENABLED")
    assert handlers["file"] is None
    assert handlers["data"] is None
