"""The page spiders' channel to the gateway: their inputs (URLs, options, proxies), read out of band.

These requests do not go through Scrapy's downloader, whose every connection the egress guard
holds to the address policy (which refuses the gateway to anything a tenant names). They go only
to the URL the gateway gave the spider, never through a proxy, and follow no redirect.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from scrapy.utils.defer import maybe_deferred_to_future
from twisted.internet.defer import Deferred
from twisted.internet.threads import deferToThread

from spiders_project.contract import Inputs

TIMEOUT_SECONDS = 30.0


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirects())


class InputsUnavailable(Exception):
    """The gateway did not answer, or answered with an error (``status``; 0 when it did not answer)."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


def read_inputs(url: str) -> Deferred[Inputs]:
    """The gateway's answer, in a thread; fails with ``InputsUnavailable``."""
    return deferToThread(_get, url)


async def read_inputs_now(url: str) -> Inputs:
    return await maybe_deferred_to_future(read_inputs(url))


def _get(url: str) -> Inputs:
    try:
        with _OPENER.open(url, timeout=TIMEOUT_SECONDS) as response:
            return Inputs.from_json(json.loads(response.read()))
    except urllib.error.HTTPError as exc:
        raise InputsUnavailable(f"the gateway answered HTTP {exc.code}", exc.code) from None
    except (OSError, ValueError) as exc:
        raise InputsUnavailable(f"the gateway did not answer: {type(exc).__name__}") from None
    except (KeyError, TypeError) as exc:
        raise InputsUnavailable(f"the gateway's answer is not a batch's inputs: {exc!r}") from None
