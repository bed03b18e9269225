"""The rules of site crawls on their own: which URLs are one page, which a crawl follows, and what
a recrawl counts as new, updated, unchanged or removed."""

from __future__ import annotations

from gateway.datasources.changes import Change, ChangeCounts, CrawledPage, changes, classify
from spiders_project.pipelines import content_hash
from spiders_project.site_scope import CrawlScope, ScopeRules, canonical_url


def test_one_page_has_one_canonical_url() -> None:
    scope = CrawlScope(url="https://example.com/")
    variants = [
        "HTTPS://Example.com:443/docs?b=2&a=1#intro",
        "https://example.com/docs?a=1&b=2&utm_source=mail&utm_campaign=x",
        "https://example.com/docs?gclid=abc&a=1&b=2",
    ]

    assert {canonical_url(url, scope) for url in variants} == {"https://example.com/docs?a=1&b=2"}
    assert canonical_url("http://example.com", scope) == "http://example.com/"
    assert canonical_url("http://example.com:8080/x", scope) == "http://example.com:8080/x"
    ignoring_query = CrawlScope(url="https://example.com/", ignore_query=True)
    assert canonical_url("https://example.com/docs?page=2", ignoring_query) == "https://example.com/docs"
    keeping_tracking = CrawlScope(url="https://example.com/", ignore_tracking_parameters=False)
    assert "utm_source" in canonical_url("https://example.com/?utm_source=x", keeping_tracking)


def test_a_crawl_follows_its_site_and_paths_only() -> None:
    rules = ScopeRules(CrawlScope(url="https://example.com/docs/", exclude_paths=("^/docs/private",)))

    assert rules.follows("https://example.com/docs/start")
    assert rules.follows("https://www.example.com/docs/start")
    assert not rules.follows("https://example.com/blog/")
    assert not rules.follows("https://example.com/docs/private/keys")
    assert not rules.follows("https://api.example.com/docs/")
    assert not rules.follows("https://other.org/docs/")
    assert not rules.follows("mailto:someone@example.com")


def test_subdomains_external_links_and_whole_site_are_opt_in() -> None:
    wide = ScopeRules(CrawlScope(url="https://example.com/docs", allow_subdomains=True, entire_site=True))
    assert wide.follows("https://api.example.com/anything")
    assert wide.follows("https://example.com/blog/")
    assert not wide.follows("https://example.org/")
    assert ScopeRules(CrawlScope(url="https://example.com/", allow_external_links=True)).follows(
        "https://example.org/"
    )
    full_url = ScopeRules(
        CrawlScope(url="https://example.com/", include_paths=(r"\?lang=en",), regex_on_full_url=True)
    )
    assert full_url.follows("https://example.com/a?lang=en")
    assert not full_url.follows("https://example.com/a?lang=de")


def test_a_redirected_start_moves_the_crawl_to_where_it_leads() -> None:
    rules = ScopeRules(CrawlScope(url="http://example.com/"))
    rules.rebase("https://docs.example.net/")

    assert rules.follows("https://docs.example.net/guide")
    assert not rules.follows("http://example.com/guide")


def page(
    url: str, status: int | None = 200, digest: str | None = "same", failed: bool = False
) -> CrawledPage:
    return CrawledPage(url=url, status_code=status, content_hash=digest, failed=failed)


def test_changes_are_counted_against_the_previous_crawl() -> None:
    previous = {"/a": "same", "/b": "old", "/c": "same", "/d": "same", "/e": "same", "/f": "same"}
    crawl = [
        page("/a"),  # same content
        page("/b", digest="new"),  # edited
        page("/c", status=304, digest=None),  # not modified
        page("/d", status=404, digest=None, failed=True),  # gone
        page("/e", status=503, digest=None, failed=True),  # failed: kept as it was
        page("/new"),
        page("/broken", status=404, digest=None, failed=True),  # never known: nothing
    ]

    decided, counts = changes(crawl, previous, finished=True)

    assert counts == ChangeCounts(new=1, updated=1, unchanged=2, removed=2)
    assert decided["/f"] == Change.REMOVED  # not reached any more
    assert decided["/e"] == Change.FAILED
    assert "/broken" not in decided
    _, live = changes(crawl, previous, finished=False)
    assert live == ChangeCounts(new=1, updated=1, unchanged=2, removed=1)
    assert classify(page("/x", status=410, failed=True), "h", known=True) == Change.REMOVED


def test_the_content_hash_ignores_whitespace_only() -> None:
    assert content_hash("# Title\n\nSome  text.\n") == content_hash("# Title\nSome text.")
    assert content_hash("# Title\n\nSome text.") != content_hash("# Title\n\nOther text.")
