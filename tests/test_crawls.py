"""Site crawls: Firecrawl v2 crawls through the unmodified SDK, and open.cx website datasources
recrawled with exact change counts, on the real site spider against a website the tests edit."""

from __future__ import annotations

import itertools
import os
import signal
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from firecrawl import Firecrawl
from firecrawl.v2.types import ScrapeOptions
from firecrawl.v2.utils.error_handler import FirecrawlError

from tests.harness import Gateway, ScrapydNode, wait_until
from tests.site import JS_TEXT, QuotesSite
from tests.website import HOME, WELCOME, Website


@pytest.fixture(scope="module")
def crawl_gateway(tmp_path_factory: pytest.TempPathFactory, node: ScrapydNode) -> Iterator[Gateway]:
    # Each test serves its own website on some loopback port; recrawls may be due within seconds.
    env = {"GATEWAY_ALLOWED_ADDRESSES": "127.0.0.1/32", "GATEWAY_CRAWL_INTERVAL_MIN_HOURS": "0.0005"}
    started = Gateway(tmp_path_factory.mktemp("crawl-gateway"), node, env=env).start()
    yield started
    started.stop()


@pytest.fixture
def firecrawl(crawl_gateway: Gateway) -> Firecrawl:
    return Firecrawl(api_url=crawl_gateway.url, api_key=crawl_gateway.create_key("crawler"))


@pytest.fixture
def client(crawl_gateway: Gateway) -> Iterator[httpx.Client]:
    with crawl_gateway.client(crawl_gateway.create_key("knowledge base")) as opened:
        yield opened


def source_urls(job: Any) -> list[str]:
    return sorted(doc.metadata.source_url for doc in job.data)


# Firecrawl v2 crawl


def test_firecrawl_sdk_crawls_each_page_of_a_site_once(firecrawl: Firecrawl) -> None:
    with Website(pages=20) as site:
        job = firecrawl.crawl(f"{site.url}/", limit=100, poll_interval=1, timeout=120)

        # Home links /p/1?utm_source=... and /p/0#top too: one page is one page.
        assert job.status == "completed"
        assert source_urls(job) == sorted(f"{site.url}{path}" for path in site.live_pages())
        assert (job.total, job.completed) == (21, 21)
        home = next(doc for doc in job.data if doc.metadata.source_url == f"{site.url}/")
        assert WELCOME in home.markdown
        assert home.metadata.status_code == 200
        assert [path for path, _ in site.requests if path.split("?")[0] == "/p/1"] == ["/p/1"]


def test_firecrawl_crawl_keeps_to_its_limit_depth_and_paths(firecrawl: Firecrawl) -> None:
    with Website(pages=40) as site:
        limited = firecrawl.crawl(f"{site.url}/", limit=7, poll_interval=1, timeout=120)
        shallow = firecrawl.crawl(
            f"{site.url}/", max_discovery_depth=1, sitemap="skip", poll_interval=1, timeout=120
        )
        chosen = firecrawl.crawl(
            f"{site.url}/",
            include_paths=["^/p/1\\d$"],
            exclude_paths=["^/p/15$"],
            sitemap="only",
            poll_interval=1,
            timeout=120,
        )

    assert len(limited.data) == 7
    assert source_urls(shallow) == [f"{site.url}/", f"{site.url}/p/0", f"{site.url}/p/1"]
    expected = [f"{site.url}/"] + [f"{site.url}/p/{n}" for n in range(10, 20) if n != 15]
    assert source_urls(chosen) == sorted(expected)


def test_firecrawl_crawl_obeys_robots_txt_unless_told_not_to(firecrawl: Firecrawl) -> None:
    with Website(pages=4, robots_disallow=["/private"]) as site:
        polite = firecrawl.crawl(f"{site.url}/", poll_interval=1, timeout=120)
        rude = firecrawl.crawl(f"{site.url}/", ignore_robots_txt=True, poll_interval=1, timeout=120)

    assert f"{site.url}/private/1" not in source_urls(polite)
    assert f"{site.url}/private/1" in source_urls(rude)


def test_firecrawl_sitemap_finds_pages_no_link_leads_to(firecrawl: Firecrawl) -> None:
    with Website(pages=4) as site:
        orphan = f"{site.url}/p/{site.orphan()}"
        with_sitemap = firecrawl.crawl(f"{site.url}/", poll_interval=1, timeout=120)
        without = firecrawl.crawl(f"{site.url}/", sitemap="skip", poll_interval=1, timeout=120)

    assert orphan in source_urls(with_sitemap)
    assert orphan not in source_urls(without)


def test_firecrawl_crawl_records_a_page_and_its_copy_once(firecrawl: Firecrawl) -> None:
    with Website(pages=6) as site:
        # Home links 0 and 1, 0 links 2 and 3, 1 links 4 and 5: seven pages, /p/5 a copy of /p/2.
        site.copy(5, of=2)
        # A canonical naming another page under another title is a site's mistake, not a copy.
        site.copy(3, of=HOME, content=False)
        crawled = firecrawl.crawl(f"{site.url}/", sitemap="skip", poll_interval=1, timeout=120)

    pages = source_urls(crawled)
    assert len({f"{site.url}/p/2", f"{site.url}/p/5"} & set(pages)) == 1
    assert {f"{site.url}/", f"{site.url}/p/3"} <= set(pages)
    assert len(pages) == 6
    assert (crawled.total, crawled.completed, crawled.credits_used) == (6, 6, 6)


def test_a_site_of_copies_cannot_keep_a_crawl_fetching(firecrawl: Firecrawl) -> None:
    with Website(pages=30) as site:
        # Every page a copy of home, linking more copies: as faceted shop URLs do.
        for n in range(30):
            site.copy(n, of=HOME)
        crawled = firecrawl.crawl(f"{site.url}/", limit=10, sitemap="skip", poll_interval=1, timeout=120)
        fetched = len(site.page_request_times)

    assert source_urls(crawled) == [f"{site.url}/"]
    # Home and the two copies it links: a copy is not followed, so its copies are never asked for.
    assert fetched == 3
    assert crawled.credits_used == 1


def test_firecrawl_crawl_total_counts_the_pages_waiting(firecrawl: Firecrawl) -> None:
    with Website(pages=14) as site:
        site.delay = 0.4
        started = firecrawl.start_crawl(f"{site.url}/", sitemap="skip", max_concurrency=1)
        seen = []
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            status = firecrawl.get_crawl_status(started.id)
            seen.append((status.status, status.completed, status.total))
            if status.status != "scraping":
                break
            time.sleep(0.2)

    running = [(completed, total) for state, completed, total in seen if state == "scraping" and completed]
    # While it runs, the pages it found and has yet to fetch count in its total.
    assert any(total > completed for completed, total in running), seen
    assert all(total <= 15 for _, total in running), seen
    assert seen[-1] == ("completed", 15, 15)


def test_firecrawl_change_tracking_calls_pages_only_a_sitemap_lists_hidden(firecrawl: Firecrawl) -> None:
    with Website(pages=4) as site:
        orphan = f"{site.url}/p/{site.orphan()}"
        crawled = firecrawl.crawl(
            f"{site.url}/",
            scrape_options=ScrapeOptions(formats=["markdown", {"type": "changeTracking"}]),
            poll_interval=1,
            timeout=120,
        )

    visibility = {
        doc.metadata.source_url: (doc.change_tracking or {}).get("visibility") for doc in crawled.data
    }
    assert visibility[orphan] == "hidden"
    assert visibility[f"{site.url}/"] == "visible"
    assert len(visibility) == 6


def test_firecrawl_crawl_reads_the_sitemaps_robots_txt_names(firecrawl: Firecrawl) -> None:
    with Website(pages=4, sitemap_path="/maps/pages.xml") as site:
        orphan = f"{site.url}/p/{site.orphan()}"
        crawled = firecrawl.crawl(f"{site.url}/", poll_interval=1, timeout=120)

    assert orphan in source_urls(crawled)


def test_firecrawl_crawl_lists_the_pages_robots_txt_forbids(firecrawl: Firecrawl) -> None:
    with Website(pages=10, robots_disallow=["/private"]) as site:
        crawled = firecrawl.crawl(f"{site.url}/", limit=5, sitemap="skip", poll_interval=1, timeout=120)
        errors = firecrawl.get_crawl_errors(crawled.id)
        private = [path for path, _ in site.requests if path.startswith("/private")]

    assert errors.robots_blocked == [f"{site.url}/private/1"]
    assert errors.errors == []
    assert private == []
    # A forbidden page takes no place under the limit: five pages were scraped.
    assert len(crawled.data) == 5


def test_firecrawl_crawl_keeps_its_delay_and_concurrency(firecrawl: Firecrawl) -> None:
    with Website(pages=6) as site:
        site.delay = 0.3
        firecrawl.crawl(
            f"{site.url}/", limit=6, sitemap="skip", max_concurrency=2, poll_interval=1, timeout=120
        )
        concurrent = site.peak_in_flight
        site.delay, site.peak_in_flight = 0.0, 0
        site.page_request_times.clear()
        firecrawl.crawl(f"{site.url}/", limit=3, sitemap="skip", delay=1, poll_interval=1, timeout=120)
        times = site.page_request_times[:]
        site.delay, site.peak_in_flight = 0.3, 0
        firecrawl.crawl(f"{site.url}/", limit=6, sitemap="skip", poll_interval=1, timeout=120)
        unbounded = site.peak_in_flight

    assert concurrent <= 2
    # Without a bound, the same crawl has more pages in flight: the bound is what held it.
    assert unbounded > 2
    assert len(times) == 3
    assert min(later - earlier for earlier, later in itertools.pairwise(times)) >= 0.95


def test_firecrawl_crawl_renders_javascript_when_asked(firecrawl: Firecrawl, site: QuotesSite) -> None:
    rendered = firecrawl.crawl(
        f"{site.url}_js", limit=1, sitemap="skip", scrape_options=ScrapeOptions(wait_for=200), poll_interval=1
    )
    plain = firecrawl.crawl(f"{site.url}_js", limit=1, sitemap="skip", poll_interval=1)

    assert JS_TEXT in rendered.data[0].markdown
    assert JS_TEXT not in plain.data[0].markdown


def test_firecrawl_crawl_status_errors_and_cancel(firecrawl: Firecrawl) -> None:
    with Website(pages=200, paragraph_bytes=200) as site:
        site.delay = 1.0
        started = firecrawl.start_crawl(f"{site.url}/", limit=200)
        wait_until(
            lambda: firecrawl.get_crawl_status(started.id).completed >= 2, what="the crawl's first pages"
        )

        assert firecrawl.cancel_crawl(started.id) is True

        status = wait_until(
            lambda: (answer := firecrawl.get_crawl_status(started.id)).status == "cancelled" and answer,
            what="the crawl to be cancelled",
        )
    assert 2 <= status.completed < 200
    assert firecrawl.get_crawl_errors(started.id).robots_blocked == []


def test_firecrawl_crawl_refuses_what_it_cannot_do(firecrawl: Firecrawl, crawl_gateway: Gateway) -> None:
    with crawl_gateway.client(crawl_gateway.create_key("careless")) as careless:
        answers = {
            "limit": careless.post("/v2/crawl", json={"url": "http://example.com/", "limit": 6000}),
            "regex": careless.post("/v2/crawl", json={"url": "http://example.com/", "includePaths": ["(("]}),
            "sitemap": careless.post("/v2/crawl", json={"url": "http://example.com/", "sitemap": "maybe"}),
            "address": careless.post("/v2/crawl", json={"url": "http://169.254.169.254/"}),
            "unknown": careless.get("/v2/crawl/0a9a4cc2-7c9d-4b61-9a3e-3d1c0b1f4f00"),
        }
    assert {name: answer.status_code for name, answer in answers.items()} == {
        "limit": 400,
        "regex": 400,
        "sitemap": 400,
        "address": 400,
        "unknown": 404,
    }
    assert "includePaths" in answers["regex"].json()["error"]
    with pytest.raises(FirecrawlError):
        firecrawl.start_crawl("http://example.com/", prompt="find the pricing pages")


# open.cx website datasources


def wait_for_crawl(client: httpx.Client, datasource_id: str, crawl_id: str) -> dict[str, Any]:
    def over() -> dict[str, Any] | None:
        crawl: dict[str, Any] = client.get(f"/crawl/{datasource_id}/crawls/{crawl_id}").json()
        return crawl if crawl["status"] not in ("pending", "scraping") else None

    return wait_until(over, timeout=120, interval=0.3, what=f"crawl {crawl_id}")


def first_crawl(client: httpx.Client, body: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    created = client.post("/crawl", json=body)
    assert created.status_code == 201, created.text
    datasource_id = created.json()["id"]
    crawls = client.get(f"/crawl/{datasource_id}/crawls").json()["data"]
    return datasource_id, wait_for_crawl(client, datasource_id, crawls[0]["id"])


def recrawl(client: httpx.Client, datasource_id: str) -> dict[str, Any]:
    started = client.post(f"/crawl/{datasource_id}/crawls")
    assert started.status_code == 201, started.text
    return wait_for_crawl(client, datasource_id, started.json()["id"])


COUNTS = ("total_pages", "new_pages", "updated_pages", "removed_pages", "unchanged_pages")


def counts(crawl: dict[str, Any]) -> dict[str, int]:
    return {name: crawl[name] for name in COUNTS}


def test_recrawl_counts_exactly_what_changed_and_skips_unchanged_downloads(client: httpx.Client) -> None:
    with Website(pages=30) as site:
        datasource_id, first = first_crawl(client, {"url": f"{site.url}/", "display_name": "docs"})
        assert first["status"] == "completed"
        assert counts(first) == dict(zip(COUNTS, (31, 31, 0, 0, 0), strict=True))

        site.edit(4)
        site.edit(17)
        added = site.add()
        site.delete(29)
        site.delete(28, status=410)
        site.reset_counts()
        second = recrawl(client, datasource_id)

        assert second["status"] == "completed"
        assert counts(second) == dict(zip(COUNTS, (30, 1, 2, 2, 27), strict=True))
        assert set(second) == {
            "id",
            "datasource_id",
            "status",
            "started_at",
            "completed_at",
            "total_pages",
            "completed_pages",
            "new_pages",
            "updated_pages",
            "removed_pages",
            "unchanged_pages",
            "error_message",
            "created_at",
            "updated_at",
        }
        page_answers = [status for path, status in site.requests if path == "/" or path.startswith("/p/")]
        # The 25 pages whose HTML did not change at all (all but the edited ones and the parents of
        # the added and deleted ones) answered 304, without a body.
        assert page_answers.count(304) == 25

        updated = client.get(f"/crawl/{datasource_id}/pages", params={"change": "updated", "content": "true"})
        assert [page["url"] for page in updated.json()["data"]] == [f"{site.url}/p/17", f"{site.url}/p/4"]
        assert "Page 17" in updated.json()["data"][0]["markdown"]
        new = client.get(f"/crawl/{datasource_id}/pages", params={"change": "new"}).json()["data"]
        assert [page["url"] for page in new] == [f"{site.url}/p/{added}"]
        removed = client.get(f"/crawl/{datasource_id}/pages", params={"change": "removed"}).json()["data"]
        assert sorted(page["url"] for page in removed) == [f"{site.url}/p/28", f"{site.url}/p/29"]

        third = recrawl(client, datasource_id)
        assert counts(third) == dict(zip(COUNTS, (30, 0, 0, 0, 30), strict=True))


def test_a_footer_clock_does_not_make_a_page_updated(client: httpx.Client) -> None:
    # No validators: every page is downloaded again, and compared by its main content.
    with Website(pages=6, validators=False) as site:
        datasource_id, _ = first_crawl(client, {"url": f"{site.url}/"})
        site.edit(2)
        site.reset_counts()
        second = recrawl(client, datasource_id)

    assert counts(second) == dict(zip(COUNTS, (7, 0, 1, 0, 6), strict=True))
    assert 304 not in [status for _, status in site.requests]


def test_one_crawl_at_a_time_and_a_cancelled_crawl_changes_nothing(client: httpx.Client) -> None:
    with Website(pages=60, paragraph_bytes=200) as site:
        datasource_id, _ = first_crawl(client, {"url": f"{site.url}/", "page_limit": 500})
        site.delay = 0.5
        started = client.post(f"/crawl/{datasource_id}/crawls").json()

        assert client.post(f"/crawl/{datasource_id}/crawls").status_code == 409
        wait_until(
            lambda: client.get(f"/crawl/{datasource_id}").json()["active_crawl_job"]["status"] == "scraping",
            what="the recrawl to run",
        )
        cancelled = client.delete(f"/crawl/{datasource_id}/crawls/{started['id']}")

        assert cancelled.status_code == 200
        assert cancelled.json()["status"] == "cancelled"
        datasource = client.get(f"/crawl/{datasource_id}").json()
        assert datasource["active_crawl_job"] is None
        assert datasource["page_stats"]["total"] == 61
        # The removed pages of a cancelled crawl are not removed: it never saw the whole site.
        assert client.get(f"/crawl/{datasource_id}/pages", params={"change": "removed"}).json()["total"] == 0


def test_a_site_that_does_not_answer_keeps_its_pages(client: httpx.Client) -> None:
    with Website(pages=3) as site:
        datasource_id, _ = first_crawl(client, {"url": f"{site.url}/"})
    # The website is gone: the recrawl fails, and the datasource still has every page.
    failed = recrawl(client, datasource_id)

    assert failed["status"] == "failed"
    assert failed["error_message"]
    datasource = client.get(f"/crawl/{datasource_id}").json()
    assert datasource["page_stats"]["total"] == 4
    assert datasource["error_message"] == failed["error_message"]


def test_a_crawl_whose_spider_dies_changes_nothing(client: httpx.Client, node: ScrapydNode) -> None:
    with Website(pages=60, paragraph_bytes=200) as site:
        datasource_id, _ = first_crawl(client, {"url": f"{site.url}/", "page_limit": 500})
        site.delay = 0.5
        started = client.post(f"/crawl/{datasource_id}/crawls").json()

        def spider_pid() -> int | None:
            running = httpx.get(f"{node.url}listjobs.json").json()["running"]
            return next((job["pid"] for job in running if job["spider"] == "site"), None)

        os.kill(wait_until(spider_pid, what="the recrawl's spider to run"), signal.SIGKILL)
        crawl = wait_for_crawl(client, datasource_id, started["id"])

    assert crawl["status"] == "failed"
    assert "ended before it was over" in crawl["error_message"]
    assert crawl["removed_pages"] == 0
    assert client.get(f"/crawl/{datasource_id}").json()["page_stats"]["total"] == 61
    assert client.get(f"/crawl/{datasource_id}/pages", params={"change": "new"}).json()["total"] == 61


def test_datasources_are_listed_changed_paused_and_deleted(
    client: httpx.Client, crawl_gateway: Gateway
) -> None:
    with Website(pages=10) as site:
        created = client.post(
            "/crawl",
            json={"url": f"{site.url}/", "include_paths": ["^/p/[0-4]$"], "auto_start_crawl": False},
        ).json()
        assert created["crawl_interval_hours"] == 168
        assert client.get(f"/crawl/{created['id']}/crawls").json()["data"] == []

        changed = client.patch(
            f"/crawl/{created['id']}", json={"status": "paused", "page_limit": 3, "display_name": "five"}
        )
        assert changed.status_code == 200
        assert (changed.json()["status"], changed.json()["page_limit"]) == ("paused", 3)
        assert changed.json()["next_crawl_at"] is None
        crawl = recrawl(client, created["id"])
        assert counts(crawl) == dict(zip(COUNTS, (3, 3, 0, 0, 0), strict=True))

        listed = client.get("/crawl").json()
        assert [entry["id"] for entry in listed["data"]] == [created["id"]]
        with crawl_gateway.client(crawl_gateway.create_key("stranger")) as stranger:
            assert stranger.get(f"/crawl/{created['id']}").status_code == 404
            assert stranger.delete(f"/crawl/{created['id']}").status_code == 404

        assert client.delete(f"/crawl/{created['id']}").status_code == 200
        assert client.get(f"/crawl/{created['id']}").status_code == 404
        assert client.get(f"/crawl/{created['id']}/pages").status_code == 404


def test_datasource_input_is_checked(client: httpx.Client) -> None:
    bodies = {
        "no url": {"display_name": "x"},
        "limit": {"url": "http://example.com/", "page_limit": 0},
        "regex": {"url": "http://example.com/", "exclude_paths": ["[a-"]},
        "interval": {"url": "http://example.com/", "crawl_interval_hours": 0.0001},
        "status": {"url": "http://example.com/", "status": "sleeping"},
        "address": {"url": "http://169.254.169.254/latest/meta-data/"},
    }
    answers = {name: client.post("/crawl", json=body) for name, body in bodies.items()}

    assert {name: answer.status_code for name, answer in answers.items()} == dict.fromkeys(bodies, 400)
    assert "exclude_paths" in answers["regex"].json()["error"]
    assert "crawl_interval_hours" in answers["interval"].json()["error"]
    assert client.get("/crawl").json()["total"] == 0


def test_crawl_interval_recrawls_on_its_own(client: httpx.Client) -> None:
    with Website(pages=3) as site:
        created = client.post("/crawl", json={"url": f"{site.url}/", "crawl_interval_hours": 0.001}).json()

        def completed() -> list[dict[str, Any]] | None:
            crawls = client.get(f"/crawl/{created['id']}/crawls").json()["data"]
            done = [crawl for crawl in crawls if crawl["status"] == "completed"]
            return done if len(done) >= 2 else None

        second, first = wait_until(completed, timeout=60, interval=0.5, what="a crawl the schedule started")[
            -2:
        ]

    assert counts(first) == dict(zip(COUNTS, (4, 4, 0, 0, 0), strict=True))
    assert counts(second) == dict(zip(COUNTS, (4, 0, 0, 0, 4), strict=True))


# Firecrawl v2 map


def test_firecrawl_map_lists_a_sites_urls_from_its_sitemap_and_links(firecrawl: Firecrawl) -> None:
    with Website(pages=10) as site:
        orphan = f"{site.url}/p/{site.orphan()}"
        mapped = firecrawl.map(f"{site.url}/")
        fetched = [path for path, _ in site.requests if path.startswith("/p/") or path == "/"]

    urls = [link.url for link in mapped.links]
    assert sorted(urls) == sorted([f"{site.url}/", *(f"{site.url}/p/{n}" for n in range(10)), orphan])
    assert len(set(urls)) == len(urls)
    titles = {link.url: link.title for link in mapped.links}
    assert titles[f"{site.url}/"] == "Home"
    # A small site is read whole (up to 100 pages) for links and titles, each page once.
    assert titles[orphan] == f"Page {orphan.rsplit('/', 1)[1]}"
    assert len(fetched) == len(set(fetched)) == 12


def test_firecrawl_map_of_the_sitemap_alone_fetches_no_page(firecrawl: Firecrawl) -> None:
    with Website(pages=6, sitemap_path="/maps/pages.xml") as site:
        orphan = f"{site.url}/p/{site.orphan()}"
        before = firecrawl.get_credit_usage().remaining_credits
        mapped = firecrawl.map(f"{site.url}/", sitemap="only")
        pages = [path for path, _ in site.requests if path.startswith("/p/") or path == "/"]
        skipped = firecrawl.map(f"{site.url}/", sitemap="skip")

    assert orphan in [link.url for link in mapped.links]
    assert len(mapped.links) == 8
    assert pages == []
    assert firecrawl.get_credit_usage().remaining_credits == before
    # Without the sitemap, only links lead to pages: the orphan is not among them.
    assert orphan not in [link.url for link in skipped.links]
    assert len(skipped.links) == 7


def test_firecrawl_map_orders_by_the_search_and_keeps_its_limit(firecrawl: Firecrawl) -> None:
    with Website(pages=10) as site:
        searched = firecrawl.map(f"{site.url}/", search="page 7")
        limited = firecrawl.map(f"{site.url}/", limit=3)

    assert searched.links[0].url == f"{site.url}/p/7"
    assert len(limited.links) == 3


def test_firecrawl_map_refuses_what_it_cannot_map(crawl_gateway: Gateway) -> None:
    with crawl_gateway.client(crawl_gateway.create_key("mapper")) as client:
        answers = {
            "address": client.post("/v2/map", json={"url": "http://169.254.169.254/"}),
            "limit": client.post("/v2/map", json={"url": "http://127.0.0.1:9/", "limit": 100_001}),
            "sitemap": client.post("/v2/map", json={"url": "http://127.0.0.1:9/", "sitemap": "maybe"}),
        }
    assert {name: answer.status_code for name, answer in answers.items()} == {
        "address": 400,
        "limit": 400,
        "sitemap": 400,
    }
    assert all(answer.json()["success"] is False for answer in answers.values())
