"""Request bodies are read into each dialect's models: a value of the wrong JSON type is a 400 that
names the field in the words every dialect shares, and nothing is started."""

from __future__ import annotations

import pytest

from gateway.api.models import firecrawl, geonode, opencx, schedules, scrapeless, scrapethis
from gateway.api.validation import parse
from gateway.errors import BadRequest
from tests.harness import Gateway
from tests.site import QuotesSite


@pytest.mark.parametrize(
    ("path", "body", "message"),
    [
        (
            "/v2/batch/scrape",
            {"urls": ["{site}"], "onlyMainContent": "false"},
            "onlyMainContent must be true or false",
        ),
        ("/v2/batch/scrape", {"urls": ["{site}"], "waitFor": "1000"}, "waitFor must be a whole number"),
        ("/v2/batch/scrape", {"urls": ["{site}"], "timeout": True}, "timeout must be a whole number"),
        (
            "/v2/batch/scrape",
            {"urls": ["{site}"], "location": {"country": "1!"}},
            "location.country must be a two-letter",
        ),
        ("/v2/crawl", {"url": "{site}", "limit": "10"}, "limit must be a whole number"),
        (
            "/v2/crawl",
            {"url": "{site}", "scrapeOptions": ["markdown"]},
            "scrapeOptions must be a JSON object",
        ),
        ("/v1/batch", {"urls": ["{site}"], "render_js": "yes"}, "render_js must be true or false"),
        (
            "/v1/batch",
            {"urls": ["{site}"], "proxy": {"type": "residential", "city": "Paris"}},
            "unknown fields: proxy.city",
        ),
        (
            "/api/v1/crawler/scrape/batch",
            {"urls": ["{site}"], "browserOptions": {"proxy_country": "USA"}},
            "browserOptions.proxy_country must be a two-letter",
        ),
        ("/api/v1/jobs", {"spider_name": 7}, "spider_name must be a string"),
        (
            "/api/v1/schedules",
            {"name": "n", "cron": "@daily", "spider_name": "quotes", "enabled": 1},
            "enabled must be true or false",
        ),
        ("/crawl", {"url": "{site}", "auto_start_crawl": "false"}, "auto_start_crawl must be true or false"),
        ("/crawl", {"url": "{site}", "page_limit": 2.5}, "page_limit must be a whole number"),
    ],
)
def test_a_value_of_the_wrong_type_is_a_400_naming_the_field(
    gateway: Gateway, site: QuotesSite, path: str, body: dict[str, object], message: str
) -> None:
    # "{site}" stands for the test website, whose address is known only when the tests run.
    filled = {**body, **{name: site.url for name in ("url",) if name in body}}
    if "urls" in filled:
        filled["urls"] = [site.url]
    with gateway.client(gateway.create_key("typed")) as client:
        response = client.post(path, json=filled)

        assert response.status_code == 400, response.text
        error = response.json()
        # Firecrawl's routes answer in Firecrawl's shape, with success false.
        assert error.pop("success", False) is False
        assert error == {"error": error["error"]}
        assert message in error["error"]
        # Nothing was started by the refused request.
        assert client.get("/v1/batch/jobs").json()["jobs"] == []
        assert client.get("/api/v1/jobs").json() == []
        assert client.get("/crawl").json()["total"] == 0
        assert client.get("/api/v1/schedules").json() == []


def refusal(model: type, body: dict[str, object]) -> str:
    with pytest.raises(BadRequest) as refused:
        parse(model, body)
    return refused.value.message


def test_one_country_rule_for_every_dialect() -> None:
    # Two letters, either case, read as upper case: Geonode, Firecrawl and Scrapeless alike.
    assert (
        geonode.StartBatchBody.model_validate({"urls": ["x"], "proxy": {"country": "de"}}).proxy.country
        == "DE"
    )  # type: ignore[union-attr]
    firecrawl_body = firecrawl.BatchScrapeBody.model_validate({"urls": ["x"], "location": {"country": "de"}})
    assert firecrawl_body.location.country == "DE"  # type: ignore[union-attr]
    browser = scrapeless.ScrapelessBatchBody.model_validate(
        {"urls": ["x"], "browserOptions": {"proxy_country": "de"}}
    )
    assert browser.browserOptions.proxy_country == "DE"  # type: ignore[union-attr]
    for bad in ("DEU", "1!", "", "d"):
        assert "two-letter country code" in refusal(
            geonode.StartBatchBody, {"urls": ["x"], "proxy": {"country": bad}}
        )
        assert "two-letter country code" in refusal(
            firecrawl.BatchScrapeBody, {"urls": ["x"], "location": {"country": bad}}
        )


def test_the_shared_checks_word_their_refusals_one_way() -> None:
    selectors = {"urls": ["x"], "includeTags": ["div[["]}
    assert refusal(firecrawl.BatchScrapeBody, selectors).startswith(
        "includeTags holds 'div[[', which is not a CSS"
    )
    assert refusal(
        geonode.StartBatchBody, {"urls": ["x"], "render_js": True, "wait_config": {"wait_for": "div[["}}
    ).startswith("wait_config.wait_for is 'div[[', which is not a CSS")
    long_wait = {"urls": ["x"], "render_js": True, "wait_config": {"wait_for": "p" * 501}}
    assert refusal(geonode.StartBatchBody, long_wait) == (
        "wait_config.wait_for is a selector longer than 500 characters"
    )
    assert refusal(firecrawl.CrawlBody, {"url": "   "}) == "url must not be empty"
    headers = {"urls": ["x"], "headers": {"Transfer-Encoding": "chunked"}}
    assert "headers may not include Transfer-Encoding" in refusal(firecrawl.BatchScrapeBody, headers)
    assert "headers may not include Transfer-Encoding" in refusal(geonode.StartBatchBody, headers)
    assert refusal(firecrawl.CrawlBody, {"url": "x", "excludePaths": ["("]}).startswith(
        "excludePaths holds '('"
    )
    assert refusal(opencx.NewDatasource, {"url": "x", "exclude_paths": ["("]}).startswith(
        "exclude_paths holds '('"
    )
    assert refusal(firecrawl.BatchScrapeBody, {"urls": ["x"], "includeTags": ["p"] * 101}) == (
        "includeTags may hold at most 100 selectors"
    )
    assert refusal(firecrawl.BatchScrapeBody, {"urls": ["x"], "formats": ["summary"]}) == (
        "formats holds 'summary': that format is not supported yet"
    )
    assert refusal(scrapethis.StartJobBody, {"spider_name": "q", "arguments": "a=1"}) == (
        "arguments must be a JSON object"
    )
    assert refusal(schedules.ScheduleBody, {"cron": "@daily", "when": "now"}).startswith(
        "unknown fields: when; this takes"
    )
    assert refusal(opencx.DatasourceChange, {"url": "http://elsewhere/"}) == (
        "url cannot change: create another datasource"
    )


def test_unknown_keys_the_sdks_send_are_accepted() -> None:
    # firecrawl-py sends its whole option set, nulls included; keys it adds later must not break it.
    body = firecrawl.BatchScrapeBody.model_validate(
        {
            "urls": ["x"],
            "formats": None,
            "maxAge": None,
            "storeInCache": True,
            "parsers": None,
            "zeroDataRetention": None,
        }
    )
    assert body.formats is None
