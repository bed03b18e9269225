"""Firecrawl v2's map of a site (``POST /v2/map``): its URLs, with the titles and descriptions of
the pages read to find them, in the site crawl's scope rules."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from gateway.api import platform_of
from gateway.api.models import firecrawl as models
from gateway.api.operations import FIRECRAWL, Operation
from gateway.api.page_documents import proxy_choice
from gateway.api.validation import parse_body
from gateway.http import api_key_of
from spiders_project.site_scope import CrawlScope

DEFAULT_LIMIT = 5000


async def map_site(request: Request) -> JSONResponse:
    platform = platform_of(request)
    body = await parse_body(request, models.MapBody)
    scope = CrawlScope(
        url=body.url,
        page_limit=body.limit or DEFAULT_LIMIT,
        # The whole site, as Firecrawl maps it, not only what lies under the URL's path.
        entire_site=True,
        allow_subdomains=body.includeSubdomains is True,
        sitemap=body.sitemap or "include",
        ignore_query=body.ignoreQueryParameters is not False,
    )
    country = body.location.country if body.location else None
    mapped = await platform.maps.map_site(
        api_key_of(request),
        "firecrawl",
        scope,
        dict(body.headers or {}),
        proxy=proxy_choice(None, country),
        search=body.search,
        seconds=body.timeout / 1000 if body.timeout else None,
    )
    links: list[dict[str, Any]] = []
    for link in mapped.links:
        entry: dict[str, Any] = {"url": link.url}
        if link.title:
            entry["title"] = link.title
        if link.description:
            entry["description"] = link.description
        links.append(entry)
    return JSONResponse({"success": True, "links": links})


OPERATIONS = [
    Operation(
        "POST",
        "/v2/map",
        map_site,
        FIRECRAWL,
        "List a site's URLs from its sitemaps and links",
        body=models.MapBody,
        response=models.SiteMap,
    ),
]
