"""Batch scrapes in the Geonode, Firecrawl v2 and Scrapeless dialects, on the real batch spider."""

from __future__ import annotations

import os
import signal
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from firecrawl import Firecrawl
from firecrawl.v2.utils.error_handler import FirecrawlError

from tests.harness import Gateway, ScrapydNode, wait_for_status, wait_until
from tests.site import ENCODED_TEXT, PDF_TEXT, PDF_TITLE, QuotesSite


def wait_for_batch(client: httpx.Client, path: str, *statuses: str, timeout: float = 120.0) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        answer: dict[str, Any] = client.get(path).json()
        return answer if answer["status"] in statuses else None

    return wait_until(done, timeout=timeout, interval=0.3, what=f"{path} to be {' or '.join(statuses)}")


@pytest.fixture
def firecrawl(gateway: Gateway) -> Firecrawl:
    return Firecrawl(api_url=gateway.url, api_key=gateway.create_key("firecrawl user"))


# Firecrawl v2, through the unmodified firecrawl-py SDK


def test_firecrawl_sdk_batch_scrape_returns_documents(firecrawl: Firecrawl, site: QuotesSite) -> None:
    urls = [site.url, f"{site.url}page/2/", f"{site.url}_status/404"]

    job = firecrawl.batch_scrape(
        urls, formats=["markdown", "links"], only_main_content=False, poll_interval=1
    )

    assert job.status == "completed"
    assert (job.total, job.completed) == (3, 3)
    assert job.credits_used == 3
    assert [doc.metadata.source_url for doc in job.data] == urls[:2]
    first = job.data[0]
    assert "The secret of getting ahead is getting started." in first.markdown
    assert first.metadata.title == "Quotes to Scrape, page 1"
    assert first.metadata.status_code == 200
    assert f"{site.url}page/2/" in first.links
    assert all(link.startswith("http://") for link in first.links)


def test_firecrawl_sdk_start_status_errors_and_idempotency(firecrawl: Firecrawl, site: QuotesSite) -> None:
    urls = [site.url, f"{site.url}_status/500", "http://bad host/", "http://nonexistent.invalid/"]

    started = firecrawl.start_batch_scrape(urls, formats=["markdown"], idempotency_key="batch-42")
    again = firecrawl.start_batch_scrape(urls, formats=["markdown"], idempotency_key="batch-42")

    assert again.id == started.id
    assert started.invalid_urls == ["http://bad host/"]
    wait_until(lambda: firecrawl.get_batch_scrape_status(started.id).status == "completed", what="the batch")
    status = firecrawl.get_batch_scrape_status(started.id)
    assert (status.total, status.completed, len(status.data)) == (3, 3, 1)
    errors = {error.url: error for error in firecrawl.get_batch_scrape_errors(started.id).errors}
    assert set(errors) == {f"{site.url}_status/500", "http://nonexistent.invalid/"}
    assert "500" in errors[f"{site.url}_status/500"].error
    assert errors["http://nonexistent.invalid/"].code == "DNS_ERROR"


def test_firecrawl_sdk_cancels_a_running_batch(firecrawl: Firecrawl, site: QuotesSite) -> None:
    urls = [f"{site.url}_slow?seconds=30&n={n}" for n in range(5)]
    started = firecrawl.start_batch_scrape(urls, formats=["markdown"])
    wait_until(lambda: firecrawl.get_batch_scrape_status(started.id).status == "scraping", what="scraping")

    assert firecrawl.cancel_batch_scrape(started.id) is True

    status = wait_until(
        lambda: (answer := firecrawl.get_batch_scrape_status(started.id)).completed == 5 and answer,
        what="every page to end",
    )
    assert status.status == "cancelled"
    assert status.data == []
    with pytest.raises(FirecrawlError):
        firecrawl.cancel_batch_scrape(started.id)


def test_firecrawl_pages_follow_next_and_omit_it_on_the_last(gateway: Gateway, site: QuotesSite) -> None:
    with gateway.client(gateway.create_key("pager")) as client:
        urls = [f"{site.url}?n={n}" for n in range(5)]
        batch_id = client.post("/v2/batch/scrape", json={"urls": urls, "origin": "test"}).json()["id"]
        wait_for_batch(client, f"/v2/batch/scrape/{batch_id}", "completed")

        pages = [client.get(f"/v2/batch/scrape/{batch_id}", params={"limit": 2}).json()]
        while "next" in pages[-1]:
            pages.append(client.get(pages[-1]["next"]).json())

    assert [len(page["data"]) for page in pages] == [2, 2, 1]
    seen = [doc["metadata"]["sourceURL"] for page in pages for doc in page["data"]]
    assert sorted(seen) == sorted(urls)


def test_a_status_page_of_megabytes_is_streamed_as_the_same_json(gateway: Gateway, site: QuotesSite) -> None:
    """Records of more than a megabyte are sent page by page, never built whole in the gateway's
    memory: the same documents as read one at a time, and the unmodified SDK reads them."""
    key = gateway.create_key("streamed")
    # Enough pages to be read in more than one chunk (32 pages a read).
    urls = [f"{site.url}_large?mib=0.03&n={n}" for n in range(40)]
    with gateway.client(key) as client:
        body = {"urls": urls, "formats": ["markdown", "rawHtml"]}
        batch_id = client.post("/v2/batch/scrape", json=body).json()["id"]
        wait_for_batch(client, f"/v2/batch/scrape/{batch_id}", "completed")
        whole = client.get(f"/v2/batch/scrape/{batch_id}")
        one_by_one = [
            client.get(f"/v2/batch/scrape/{batch_id}", params={"skip": n, "limit": 1}) for n in range(40)
        ]
    sdk = Firecrawl(api_url=gateway.url, api_key=key).get_batch_scrape_status(batch_id)

    assert "content-length" not in whole.headers
    assert whole.headers["content-type"] == "application/json"
    assert all("content-length" in answer.headers for answer in one_by_one)
    streamed = whole.json()
    assert streamed["data"] == [answer.json()["data"][0] for answer in one_by_one]
    assert sorted(doc["metadata"]["sourceURL"] for doc in streamed["data"]) == sorted(urls)
    assert all(len(doc["rawHtml"]) > 30_000 for doc in streamed["data"])
    last = one_by_one[-1].json()
    assert {name: value for name, value in streamed.items() if name != "data"} == {
        name: value for name, value in last.items() if name != "data"
    }
    assert [doc.metadata.source_url for doc in sdk.data] == [
        doc["metadata"]["sourceURL"] for doc in streamed["data"]
    ]


def test_firecrawl_options_shape_the_markdown(firecrawl: Firecrawl, site: QuotesSite) -> None:
    whole = firecrawl.batch_scrape(
        [site.url], formats=["markdown", "html", "rawHtml"], only_main_content=False
    )
    trimmed = firecrawl.batch_scrape(
        [site.url], formats=["markdown"], only_main_content=False, exclude_tags=["div.tags", "nav"]
    )
    only_authors = firecrawl.batch_scrape(
        [site.url], formats=["markdown"], only_main_content=False, include_tags=["small.author"]
    )

    page = whole.data[0]
    assert "Tags:" in page.markdown
    assert "<script" not in page.html
    assert 'href="http://' in page.html  # links made absolute
    assert page.raw_html.startswith("<!DOCTYPE html>")
    assert "Tags:" not in trimmed.data[0].markdown
    assert "Next" not in trimmed.data[0].markdown
    assert "Mark Twain" in only_authors.data[0].markdown
    assert "secret of getting ahead" not in only_authors.data[0].markdown


def test_firecrawl_refuses_what_it_cannot_honour(gateway: Gateway, site: QuotesSite) -> None:
    with gateway.client(gateway.create_key("picky")) as client:
        for body, message in [
            ({"urls": [site.url], "formats": ["json"]}, "not supported yet"),
            ({"urls": [site.url], "waitFor": -5}, "waitFor must be"),
            ({"urls": [site.url], "actions": [{"type": "click"}]}, "actions[0].click.selector is required"),
            ({"urls": [site.url], "actions": [{"type": "pdf"}]}, "actions[0]"),
            ({"urls": [site.url], "headers": {"Host": "evil"}}, "cannot be set"),
            ({"urls": [site.url], "includeTags": ["div[["]}, "not a CSS selector this platform can use"),
            ({"urls": []}, "1 to 1000 URLs"),
            ({"urls": "http://x"}, "urls must be a list"),
        ]:
            response = client.post("/v2/batch/scrape", json=body)
            assert response.status_code == 400, body
            assert message in response.json()["error"]


# Scrapeless, through the unmodified scrapeless SDK


def test_scrapeless_sdk_batch_scrape(gateway: Gateway, site: QuotesSite, tmp_path: Path) -> None:
    os.environ.setdefault("SCRAPELESS_LOG_ROOT_DIR", str(tmp_path))
    from scrapeless import Scrapeless
    from scrapeless.types import ScrapeParams

    client = Scrapeless(
        {"api_key": gateway.create_key("scrapeless user"), "scraping_crawl_api_url": gateway.url}
    )
    urls = [site.url, f"{site.url}_status/404"]

    result = client.scraping_crawl.scrape.batch_scrape_urls(
        urls, ScrapeParams(formats=["markdown", "links"], onlyMainContent=False), poll_interval=1
    )

    assert result["status"] == "completed"
    assert (result["total"], result["completed"]) == (2, 2)
    by_url = {doc["metadata"]["sourceURL"]: doc for doc in result["data"]}
    assert "Oscar Wilde" in by_url[site.url]["markdown"]
    assert by_url[f"{site.url}_status/404"]["metadata"]["statusCode"] == 404
    assert by_url[f"{site.url}_status/404"]["metadata"]["error"]

    scrape = client.scraping_crawl.scrape
    started = scrape.async_batch_scrape_urls([f"{site.url}page/3/"], ScrapeParams(formats=["markdown"]))
    assert started["success"] is True
    done = wait_until(
        lambda: (answer := scrape.check_batch_scrape_status(started["id"]))["status"] != "scraping" and answer
    )
    assert done["status"] == "completed"
    assert "Marcus Aurelius" in done["data"][0]["markdown"]


# Geonode


def test_geonode_batch_from_start_to_paged_results(gateway: Gateway, site: QuotesSite) -> None:
    with gateway.client(gateway.create_key("geonode user"), header="x-api-key") as client:
        urls = [f"{site.url}page/{n}/" for n in (2, 3)] + ["mailto:someone@example.com", site.url]
        started = client.post("/v1/batch", json={"urls": urls, "formats": ["markdown", "html"]})

        assert started.status_code == 202
        body = started.json()
        assert body["status"] == "queued"
        assert body["accepted_urls"] == 3
        assert body["invalid_urls"] == ["mailto:someone@example.com"]
        assert body["status_url"] == f"/v1/batch/{body['job_id']}"
        status = wait_for_batch(client, body["status_url"], "completed")
        assert (status["total_urls"], status["completed_urls"], status["failed_urls"]) == (3, 3, 0)
        assert status["pending_urls"] == 0
        assert [result["input_index"] for result in status["results"]] == [0, 1, 3]
        result = status["results"][0]
        assert result["status"] == "completed"
        assert result["metadata"]["http_status"] == 200
        assert result["metadata"]["duration_ms"] >= 0
        assert "Benjamin Franklin" in result["data"]["markdown"]
        assert "<p>" in result["data"]["html"] or "<div" in result["data"]["html"]
        assert status["batch_config"]["formats"] == ["html", "markdown"]

        second_page = client.get(body["status_url"], params={"page": 2, "page_size": 2}).json()
        assert [result["input_index"] for result in second_page["results"]] == [3]
        assert client.get(body["status_url"], params={"page_size": 51}).status_code == 400
        listed = client.get("/v1/batch/jobs").json()
        assert body["job_id"] in [job["job_id"] for job in listed["jobs"]]


def test_geonode_refuses_invalid_urls_when_asked_and_options_it_cannot_honour(
    gateway: Gateway, site: QuotesSite
) -> None:
    with gateway.client(gateway.create_key("strict"), header="x-api-key") as client:
        strict = client.post(
            "/v1/batch", json={"urls": [site.url, "ftp://files"], "ignore_invalid_urls": False}
        )
        assert strict.status_code == 400
        assert "ftp://files" in strict.json()["error"]
        for option, message in (
            ({"proxy": {"country": "US", "type": "residential"}}, "no proxy pool offers residential in US"),
            ({"wait_config": {"wait_for": "#x"}}, "wait_config needs render_js"),
            ({"render_js": True, "wait_config": {"wait_until": "whenever"}}, "wait_until must be one of"),
        ):
            response = client.post("/v1/batch", json={"urls": [site.url], **option})
            assert response.status_code == 400
            assert message in response.json()["error"]
        assert client.post("/v1/batch", json={"urls": [site.url], "formats": ["pdf"]}).status_code == 400
        assert client.post("/v1/batch", json={"urls": ["x"] * 1001}).status_code == 400


def test_geonode_cancel_ends_unfetched_pages_as_cancelled(gateway: Gateway, site: QuotesSite) -> None:
    with gateway.client(gateway.create_key("canceller"), header="x-api-key") as client:
        urls = [site.url] + [f"{site.url}_slow?seconds=30&n={n}" for n in range(3)]
        job_id = client.post("/v1/batch", json={"urls": urls}).json()["job_id"]
        wait_until(
            lambda: client.get(f"/v1/batch/{job_id}").json()["completed_urls"] == 1, what="the fast page"
        )

        cancelled = client.delete(f"/v1/batch/{job_id}")

        assert cancelled.status_code == 202
        assert cancelled.json()["status"] == "cancelled"
        assert cancelled.json()["in_flight_urls"] == 3
        status = wait_until(
            lambda: (answer := client.get(f"/v1/batch/{job_id}").json())["completed_at"] and answer,
            what="the batch to end",
        )
        assert status["status"] == "cancelled"
        assert (status["completed_urls"], status["cancelled_urls"], status["pending_urls"]) == (1, 3, 0)
        assert client.delete(f"/v1/batch/{job_id}").status_code == 409


# Pages of every kind


def test_failed_fetches_become_records_and_never_stop_the_batch(gateway: Gateway, site: QuotesSite) -> None:
    with gateway.client(gateway.create_key("failures")) as client:
        urls = [
            f"{site.url}_status/404",
            f"{site.url}_status/503",
            "http://nonexistent.invalid/",
            f"{site.url}_slow?seconds=10",
            f"{site.url}_large?mib=11",
            site.url,
        ]
        batch_id = client.post("/v2/batch/scrape", json={"urls": urls, "timeout": 2000}).json()["id"]
        status = wait_for_batch(client, f"/v2/batch/scrape/{batch_id}", "completed")
        errors = {
            error["url"]: error
            for error in client.get(f"/v2/batch/scrape/{batch_id}/errors").json()["errors"]
        }

    assert [doc["metadata"]["sourceURL"] for doc in status["data"]] == [site.url]
    assert {url: error["code"] for url, error in errors.items()} == {
        urls[0]: "HTTP_404",
        urls[1]: "HTTP_503",
        urls[2]: "DNS_ERROR",
        urls[3]: "TIMEOUT",
        urls[4]: "TOO_LARGE",
    }


def test_a_meta_refresh_in_the_head_of_a_page_is_followed(gateway: Gateway, site: QuotesSite) -> None:
    """As Scrapy follows them: small pages and large ones (whose head alone is read for it)."""
    urls = [f"{site.url}_refresh?to=/page/2/&kb={kb}" for kb in (1, 200)]
    with gateway.client(gateway.create_key("refreshed")) as client:
        batch_id = client.post("/v2/batch/scrape", json={"urls": urls, "onlyMainContent": False}).json()["id"]
        status = wait_for_batch(client, f"/v2/batch/scrape/{batch_id}", "completed")

    assert sorted(doc["metadata"]["sourceURL"] for doc in status["data"]) == sorted(urls)
    for doc in status["data"]:
        assert doc["metadata"]["title"] == "Quotes to Scrape, page 2"
        assert "has moved" not in doc["markdown"]
    assert site.requests.count("/page/2/") >= 2


def test_pages_in_undeclared_charsets_decode_correctly(gateway: Gateway, site: QuotesSite) -> None:
    with gateway.client(gateway.create_key("charsets")) as client:
        urls = [f"{site.url}_encoded/{codec}" for codec in ENCODED_TEXT]
        batch_id = client.post("/v2/batch/scrape", json={"urls": urls, "onlyMainContent": False}).json()["id"]
        status = wait_for_batch(client, f"/v2/batch/scrape/{batch_id}", "completed")

    markdown = {doc["metadata"]["sourceURL"]: doc["markdown"] for doc in status["data"]}
    for codec, text in ENCODED_TEXT.items():
        assert text in markdown[f"{site.url}_encoded/{codec}"], codec


def test_documents_that_are_not_html_give_sensible_records(gateway: Gateway, site: QuotesSite) -> None:
    with gateway.client(gateway.create_key("documents")) as client:
        urls = [f"{site.url}_type/{kind}" for kind in ("pdf", "json", "text", "png")]
        batch_id = client.post("/v2/batch/scrape", json={"urls": urls}).json()["id"]
        status = wait_for_batch(client, f"/v2/batch/scrape/{batch_id}", "completed")

    docs = {doc["metadata"]["sourceURL"].rsplit("/", 1)[1]: doc for doc in status["data"]}
    assert PDF_TEXT in docs["pdf"]["markdown"]
    assert docs["pdf"]["metadata"]["numPages"] == 1
    assert docs["pdf"]["metadata"]["title"] == PDF_TITLE
    assert "numPages" not in docs["json"]["metadata"]
    assert docs["json"]["markdown"].startswith("```json\n{\n")
    assert '"legs": 8' in docs["json"]["markdown"]
    assert docs["text"]["markdown"] == "Just some plain text.\nOn two lines.\n"
    assert docs["png"]["markdown"] == f"![]({site.url}_type/png)\n"
    assert docs["png"]["metadata"]["contentType"] == "image/png"


# Safety and limits


def test_private_addresses_and_the_platforms_own_services_are_refused(
    gateway: Gateway, node: ScrapydNode, site: QuotesSite
) -> None:
    scrapyd = node.url.split("@")[1]
    own = [
        f"http://{scrapyd}listjobs.json",
        f"{gateway.url}/healthz",
        "http://169.254.169.254/latest/meta-data/",
    ]
    with gateway.client(gateway.create_key("prober")) as client:
        refused = client.post("/v2/batch/scrape", json={"urls": [*own, "http://localhost:1/"]})
        assert refused.status_code == 400
        redirected = f"{site.url}_redirect?to=http://{scrapyd}daemonstatus.json"
        # A meta refresh is a redirect too, read from the page's head however large the page.
        refreshed = f"{site.url}_refresh?to=http://{scrapyd}daemonstatus.json&kb=64"
        body = {"urls": [*own, redirected, refreshed]}
        batch_id = client.post("/v2/batch/scrape", json=body).json()["id"]
        wait_for_batch(client, f"/v2/batch/scrape/{batch_id}", "completed")
        errors = client.get(f"/v2/batch/scrape/{batch_id}/errors").json()["errors"]

    assert [(error["url"], error["code"]) for error in errors] == [
        (redirected, "BLOCKED_ADDRESS"),
        (refreshed, "BLOCKED_ADDRESS"),
    ]


def test_custom_headers_reach_every_request(gateway: Gateway, site: QuotesSite) -> None:
    with gateway.client(gateway.create_key("headers")) as client:
        url = f"{site.url}?headers-test"
        batch_id = client.post(
            "/v2/batch/scrape", json={"urls": [url], "headers": {"X-Trace": "t-123"}}
        ).json()["id"]
        wait_for_batch(client, f"/v2/batch/scrape/{batch_id}", "completed")

    sent = [
        headers for path, headers in zip(site.requests, site.headers, strict=True) if path == "/?headers-test"
    ]
    assert sent
    assert sent[-1].get("X-Trace") == "t-123"


def test_credits_are_held_for_a_batch_and_only_fetched_pages_are_charged(
    gateway: Gateway, site: QuotesSite
) -> None:
    with gateway.client(gateway.create_key("metered", credits=3)) as client:
        too_big = client.post("/v2/batch/scrape", json={"urls": [site.url] * 4})
        assert too_big.status_code == 402
        urls = [site.url, f"{site.url}page/2/", "http://nonexistent.invalid/"]
        batch_id = client.post("/v2/batch/scrape", json={"urls": urls}).json()["id"]
        status = wait_for_batch(client, f"/v2/batch/scrape/{batch_id}", "completed")
        assert status["creditsUsed"] == 2
        # The unfetched page's credit came back: one credit is left.
        assert client.post("/v2/batch/scrape", json={"urls": [site.url] * 2}).status_code == 402
        assert client.post("/v2/batch/scrape", json={"urls": [site.url]}).status_code == 200


def test_pages_of_a_killed_spider_process_are_fetched_all_the_same(
    gateway: Gateway, site: QuotesSite, node_pids: Callable[[str], int]
) -> None:
    with gateway.client(gateway.create_key("survivor")) as client:
        urls = [f"{site.url}_slow?seconds=1&n={n}" for n in range(60)]
        batch_id = client.post("/v2/batch/scrape", json={"urls": urls, "onlyMainContent": False}).json()["id"]
        wait_until(lambda: client.get(f"/v2/batch/scrape/{batch_id}?limit=1").json()["completed"] >= 5)
        (job,) = [job for job in client.get("/api/v1/jobs").json() if job["spider"]["name"] == "batch"]

        os.kill(node_pids(job["id"]), signal.SIGKILL)

        status = wait_for_batch(client, f"/v2/batch/scrape/{batch_id}", "completed", "failed")
        assert (
            wait_for_status(client, job["id"], "error")["error"]
            == "the spider process was killed by signal 9"
        )
        assert status["status"] == "completed"
        assert status["completed"] == 60
        assert client.get(f"/v2/batch/scrape/{batch_id}/errors").json()["errors"] == []


def test_another_tenants_batch_answers_404(gateway: Gateway, site: QuotesSite) -> None:
    with (
        gateway.client(gateway.create_key("owner")) as owner,
        gateway.client(gateway.create_key("other")) as other,
    ):
        batch_id = owner.post("/v2/batch/scrape", json={"urls": [site.url]}).json()["id"]
        for path in (
            f"/v2/batch/scrape/{batch_id}",
            f"/v1/batch/{batch_id}",
            f"/api/v1/crawler/scrape/batch/{batch_id}",
        ):
            assert other.get(path).status_code == 404
        assert other.delete(f"/v1/batch/{batch_id}").status_code == 404
        assert owner.get(f"/v1/batch/{batch_id}").status_code == 200


def test_a_thousand_urls_of_2048_characters_work_end_to_end(gateway: Gateway, site: QuotesSite) -> None:
    def padded(n: int) -> str:
        prefix = f"{site.url}?n={n}&pad="
        return prefix + "x" * (2048 - len(prefix))

    urls = [padded(n) for n in range(1000)]
    assert {len(url) for url in urls} == {2048}
    with gateway.client(gateway.create_key("bulk"), header="x-api-key") as client:
        started = client.post("/v1/batch", json={"urls": urls})
        assert started.status_code == 202
        assert started.json()["accepted_urls"] == 1000
        status = wait_for_batch(client, started.json()["status_url"], "completed", timeout=300)
        assert status["completed_urls"] == 1000
        last = client.get(started.json()["status_url"], params={"page": 100, "page_size": 10}).json()
        assert [result["url"] for result in last["results"]] == urls[990:]
        assert all("Mark Twain" in result["data"]["markdown"] for result in last["results"])


@pytest.fixture
def short_lived(tmp_path: Path, site: QuotesSite) -> Iterator[Gateway]:
    node = ScrapydNode(tmp_path / "node").start()
    env = {"GATEWAY_ALLOWED_ADDRESSES": f"127.0.0.1:{site.port}", "GATEWAY_BATCH_RETENTION_HOURS": "0.001"}
    gateway = Gateway(tmp_path / "gateway", node, env=env).start()
    yield gateway
    gateway.stop()
    node.stop()


def test_results_expire_after_the_retention(short_lived: Gateway, site: QuotesSite) -> None:
    with short_lived.client(short_lived.create_key("forgetful")) as client:
        batch_id = client.post("/v2/batch/scrape", json={"urls": [site.url]}).json()["id"]
        status = wait_for_batch(client, f"/v2/batch/scrape/{batch_id}", "completed")
        assert status["expiresAt"]
        # Retention is 3.6 s here; the sweep runs as often.
        wait_until(lambda: client.get(f"/v2/batch/scrape/{batch_id}").status_code == 404, what="expiry")

    def rows() -> int:
        with sqlite3.connect(short_lived.data_dir / "gateway.sqlite3") as db:
            return (
                sum(
                    db.execute(f"SELECT count(*) FROM {table} WHERE batch_id = ?", (batch_id,)).fetchone()[0]
                    for table in ("batch_pages", "jobs")
                )
                + db.execute("SELECT count(*) FROM batches WHERE id = ?", (batch_id,)).fetchone()[0]
            )

    wait_until(lambda: rows() == 0, what="the batch's rows to be deleted")
