"""Firecrawl v2's one-page scrape through the unmodified firecrawl-py: the document of a page,
copies served within maxAge (never another tenant's), options it cannot honour refused."""

from __future__ import annotations

import pytest
from firecrawl import Firecrawl
from firecrawl.v2.types import ChangeTrackingFormat, CrawlJob, ScrapeOptions
from firecrawl.v2.utils.error_handler import FirecrawlError

from tests.forward_proxy import closed_port
from tests.harness import Gateway, ScrapydNode
from tests.site import INLINE_TEXT, QuotesSite


@pytest.fixture
def key(gateway: Gateway) -> str:
    return gateway.create_key("scrapes", credits=100)


def test_a_scrape_answers_with_the_pages_document(gateway: Gateway, site: QuotesSite, key: str) -> None:
    firecrawl = Firecrawl(api_url=gateway.url, api_key=key)

    doc = firecrawl.scrape(
        site.url, formats=["markdown", "links", "html"], only_main_content=False, max_age=0
    )

    assert "Mark Twain" in (doc.markdown or "")
    assert f"{site.url}page/2/" in (doc.links or "")
    assert "<" in (doc.html or "")
    # The SDK reads Firecrawl's camelCase metadata into snake_case.
    metadata = doc.metadata_dict
    assert metadata["source_url"] == site.url
    assert metadata["status_code"] == 200
    assert (metadata["cache_state"], metadata["proxy_used"], metadata["credits_used"]) == ("miss", "basic", 1)
    with gateway.client(key) as client:
        # Kept, and read back by its id, as Firecrawl's GET /v2/scrape/{id}.
        stored = client.get(f"/v2/scrape/{metadata['scrape_id']}").json()
        assert stored["success"] is True
        assert stored["data"]["markdown"] == doc.markdown
        # One credit, as a batch's page.
        assert client.get("/v2/team/credit-usage").json()["data"]["remainingCredits"] == 99


def test_the_documents_metadata_has_firecrawls_fields_and_lists_for_repeated_tags(
    gateway: Gateway, site: QuotesSite, key: str
) -> None:
    doc = Firecrawl(api_url=gateway.url, api_key=key).scrape(f"{site.url}_article", formats=["markdown"])

    typed = doc.metadata_typed
    assert typed.og_site_name == "Quotes Daily"
    assert typed.published_time == "2026-11-02T08:00:00Z"
    assert typed.favicon == f"{site.url}favicon.png"
    assert typed.keywords == ["quotes", "life"]
    assert doc.metadata_dict["author"] == ["Ann", "Bob"]


def test_a_copy_younger_than_max_age_is_served_and_an_older_one_is_not(
    gateway: Gateway, site: QuotesSite, key: str
) -> None:
    firecrawl = Firecrawl(api_url=gateway.url, api_key=key)
    page = f"{site.url}_visits"
    first = firecrawl.scrape(page, formats=["markdown"], max_age=0)
    assert "Visit number" in (first.markdown or "")

    copy = firecrawl.scrape(page, formats=["markdown"], max_age=600_000)
    fresh = firecrawl.scrape(page, formats=["markdown"], max_age=0)
    # Other options are another scrape: no copy of the markdown-only one serves it.
    other_options = firecrawl.scrape(page, formats=["markdown", "links"], max_age=600_000)

    assert copy.markdown == first.markdown
    assert copy.metadata_dict["cache_state"] == "hit"
    assert copy.metadata_dict["scrape_id"] == first.metadata_dict["scrape_id"]
    assert copy.metadata_dict["cached_at"] == first.metadata_dict["cached_at"]
    assert fresh.metadata_dict["cache_state"] == "miss"
    assert fresh.markdown != first.markdown
    assert other_options.metadata_dict["cache_state"] == "miss"


def test_a_scrape_stored_with_store_in_cache_false_serves_no_later_scrape(
    gateway: Gateway, site: QuotesSite, key: str
) -> None:
    firecrawl = Firecrawl(api_url=gateway.url, api_key=key)
    page = f"{site.url}_visits?uncached"
    firecrawl.scrape(page, formats=["markdown"], store_in_cache=False, max_age=0)
    assert firecrawl.scrape(page, formats=["markdown"]).metadata_dict["cache_state"] == "miss"


def test_another_tenants_scrapes_are_neither_served_nor_readable(
    gateway: Gateway, site: QuotesSite, key: str
) -> None:
    page = f"{site.url}_visits?tenants"
    mine = Firecrawl(api_url=gateway.url, api_key=key).scrape(page, formats=["markdown"], max_age=0)
    theirs_key = gateway.create_key("someone else")
    theirs = Firecrawl(api_url=gateway.url, api_key=theirs_key).scrape(page, formats=["markdown"])

    assert theirs.metadata_dict["cache_state"] == "miss"
    assert theirs.markdown != mine.markdown
    with gateway.client(theirs_key) as client:
        answer = client.get(f"/v2/scrape/{mine.metadata_dict['scrape_id']}")
        assert answer.status_code == 404
        assert answer.json() == {"success": False, "error": "Batch not found"}


def test_a_page_with_an_error_status_is_a_document_saying_so(
    gateway: Gateway, site: QuotesSite, key: str
) -> None:
    doc = Firecrawl(api_url=gateway.url, api_key=key).scrape(f"{site.url}_status/404", formats=["markdown"])

    assert doc.metadata_dict["status_code"] == 404
    assert "404" in doc.metadata_dict["error"]


def test_a_page_that_gets_no_answer_is_a_502_with_the_reason(gateway: Gateway, key: str) -> None:
    # Allowed by no policy: refused at the door, before any spider runs.
    with gateway.client(key) as client:
        refused = client.post("/v2/scrape", json={"url": f"http://127.0.0.1:{closed_port()}/"})
        assert refused.status_code == 400
        assert refused.json()["success"] is False
        # A name that resolves nowhere: the spider tries, and finds no answer.
        unanswered = client.post("/v2/scrape", json={"url": "http://no-such-host.invalid/", "maxAge": 0})
        assert unanswered.status_code in (400, 502), unanswered.text
        assert unanswered.json()["success"] is False


def test_inlined_images_lose_their_data_in_the_markdown(gateway: Gateway, site: QuotesSite, key: str) -> None:
    doc = Firecrawl(api_url=gateway.url, api_key=key).scrape(
        f"{site.url}_inline", formats=["markdown"], only_main_content=False, max_age=0
    )

    assert INLINE_TEXT in (doc.markdown or "")
    assert "logo" in (doc.markdown or "")
    assert "base64," not in (doc.markdown or "")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"formats": ["json"]}, "'json': that format is not supported yet"),
        ({"formats": ["summary"]}, "'summary': that format is not supported yet"),
        ({"formats": ["pdfs"]}, "the unknown format 'pdfs'"),
        ({"skipTlsVerification": False}, "skipTlsVerification cannot be false"),
        ({"removeBase64Images": False}, "removeBase64Images cannot be false"),
        ({"mobile": True}, "mobile is not supported yet"),
        ({"maxAge": -1}, "maxAge"),
    ],
)
def test_options_the_platform_cannot_honour_are_refused_in_firecrawls_shape(
    gateway: Gateway, site: QuotesSite, options: dict[str, object], message: str
) -> None:
    with gateway.client(gateway.create_key("refused")) as client:
        answer = client.post("/v2/scrape", json={"url": site.url, **options})

        assert answer.status_code == 400, answer.text
        assert answer.json()["success"] is False
        assert message in answer.json()["error"]
        # Nothing ran for it.
        assert client.get("/v2/team/queue-status").json()["jobsInQueue"] == 0


def test_the_sdk_raises_the_platforms_message_for_a_refused_scrape(
    gateway: Gateway, site: QuotesSite, key: str
) -> None:
    with pytest.raises(FirecrawlError, match="not supported yet"):
        Firecrawl(api_url=gateway.url, api_key=key).scrape(site.url, formats=["summary"])


def test_a_scrape_needs_credits_left(gateway: Gateway, site: QuotesSite) -> None:
    with gateway.client(gateway.create_key("spent", credits=0)) as client:
        answer = client.post("/v2/scrape", json={"url": site.url})
        assert answer.status_code == 402
        assert answer.json()["success"] is False


def test_a_scrape_answers_without_waiting_for_the_sync_interval(
    tmp_path_factory: pytest.TempPathFactory, site: QuotesSite
) -> None:
    # A sync that runs a pass a minute: the scrape wakes it rather than waiting a pass or two.
    node = ScrapydNode(tmp_path_factory.mktemp("slow-sync-node")).start()
    env = {"GATEWAY_ALLOWED_ADDRESSES": f"127.0.0.1:{site.port}", "GATEWAY_SYNC_INTERVAL": "60"}
    slow = Gateway(tmp_path_factory.mktemp("slow-sync"), node, env=env)
    try:
        slow.start()
        with slow.client(slow.admin_key()) as client:
            answer = client.post("/v2/scrape", json={"url": site.url}, timeout=120)
            assert answer.status_code == 200, answer.text
            assert answer.elapsed.total_seconds() < 30
    finally:
        slow.stop()
        node.stop()


def tracked(tag: str | None = None, *modes: str) -> list[object]:
    return ["markdown", ChangeTrackingFormat(modes=list(modes), tag=tag)]


def test_change_tracking_tells_new_same_and_changed_with_a_diff(
    gateway: Gateway, site: QuotesSite, key: str
) -> None:
    firecrawl = Firecrawl(api_url=gateway.url, api_key=key)
    changing = f"{site.url}_visits?tracked"

    first = firecrawl.scrape(changing, formats=tracked("t", "git-diff"))
    second = firecrawl.scrape(changing, formats=tracked("t", "git-diff"))
    steady = [firecrawl.scrape(site.url, formats=tracked("t")) for _ in range(2)]

    assert first.change_tracking is not None
    assert (first.change_tracking["changeStatus"], first.change_tracking["previousScrapeAt"]) == ("new", None)
    assert second.change_tracking is not None
    assert second.change_tracking["changeStatus"] == "changed"
    assert second.change_tracking["previousScrapeAt"] is not None
    assert second.change_tracking["visibility"] == "visible"
    diff = second.change_tracking["diff"]["text"]
    assert "--- previous" in diff
    assert any(line.startswith("-") and "Visit number" in line for line in diff.splitlines())
    assert any(line.startswith("+") and "Visit number" in line for line in diff.splitlines())
    # A page that did not change is the same, and without git-diff there is no diff.
    assert [doc.change_tracking["changeStatus"] for doc in steady if doc.change_tracking] == ["new", "same"]
    assert "diff" not in (steady[1].change_tracking or {})


def test_change_histories_are_per_tag_and_per_tenant(gateway: Gateway, site: QuotesSite, key: str) -> None:
    page = f"{site.url}page/2/"
    mine = Firecrawl(api_url=gateway.url, api_key=key)
    theirs = Firecrawl(api_url=gateway.url, api_key=gateway.create_key("another tracker"))
    mine.scrape(page, formats=tracked("prices"))

    again = mine.scrape(page, formats=tracked("prices"))
    other_tag = mine.scrape(page, formats=tracked("news"))
    other_tenant = theirs.scrape(page, formats=tracked("prices"))

    assert (again.change_tracking or {})["changeStatus"] == "same"
    assert (other_tag.change_tracking or {})["changeStatus"] == "new"
    assert (other_tenant.change_tracking or {})["changeStatus"] == "new"


def test_a_page_gone_is_removed_and_a_batch_tracks_changes_too(
    gateway: Gateway, site: QuotesSite, key: str
) -> None:
    firecrawl = Firecrawl(api_url=gateway.url, api_key=key)
    gone = firecrawl.scrape(f"{site.url}_status/410", formats=tracked())
    batch = firecrawl.batch_scrape([f"{site.url}page/3/"] * 1, formats=tracked("batch"), poll_interval=1)
    again = firecrawl.batch_scrape([f"{site.url}page/3/"], formats=tracked("batch"), poll_interval=1)

    assert (gone.change_tracking or {})["changeStatus"] == "removed"
    assert [(doc.change_tracking or {}).get("changeStatus") for doc in batch.data] == ["new"]
    assert [(doc.change_tracking or {}).get("changeStatus") for doc in again.data] == ["same"]


@pytest.mark.parametrize(
    ("formats", "message"),
    [
        ([{"type": "changeTracking"}], "ask for 'markdown' too"),
        (["markdown", {"type": "changeTracking", "modes": ["json"]}], "only 'git-diff' is supported"),
        (["markdown", {"type": "changeTracking", "prompt": "what changed?"}], "needs a model"),
    ],
)
def test_change_tracking_it_cannot_do_is_refused(
    gateway: Gateway, site: QuotesSite, formats: list[object], message: str
) -> None:
    with gateway.client(gateway.create_key("tracking refused")) as client:
        answer = client.post("/v2/scrape", json={"url": site.url, "formats": formats})
        assert answer.status_code == 400, answer.text
        assert message in answer.json()["error"]


def test_a_crawl_tracks_changes_of_every_page_it_reaches(
    gateway: Gateway, site: QuotesSite, key: str
) -> None:
    firecrawl = Firecrawl(api_url=gateway.url, api_key=key)
    options = ScrapeOptions(formats=tracked("crawl"))

    # The home page and its next pages (its tag links answer 404).
    crawl = {"limit": 3, "include_paths": ["^/page/"], "scrape_options": options, "poll_interval": 1}
    first = firecrawl.crawl(site.url, **crawl)
    second = firecrawl.crawl(site.url, **crawl)

    def statuses(job: CrawlJob) -> dict[str, str]:
        return {
            str(doc.metadata.source_url if doc.metadata else ""): (doc.change_tracking or {}).get(
                "changeStatus", ""
            )
            for doc in job.data
        }

    assert first.status == second.status == "completed"
    assert len(statuses(first)) == 3
    assert set(statuses(first).values()) == {"new"}
    # The same pages again: unchanged ones are the same, and each was compared with its own history.
    assert statuses(second).keys() == statuses(first).keys()
    assert set(statuses(second).values()) == {"same"}


def test_the_images_format_lists_the_pages_images_as_absolute_urls(
    gateway: Gateway, site: QuotesSite, key: str
) -> None:
    doc = Firecrawl(api_url=gateway.url, api_key=key).scrape(f"{site.url}_gallery", formats=["images"])

    assert doc.images == [
        f"{site.url}img/cat.png",
        f"{site.url}dog.jpg",
        f"{site.url}dog-2x.jpg",
        f"{site.url}img/dog-3x.jpg",
        "https://cdn.example/bird.webp",
        f"{site.url}img/bird.png",
    ]
    assert doc.markdown is None
