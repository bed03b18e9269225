"""Pieces that decide behaviour on their own: eggs, outcomes, rate limits, settings, arguments."""

from __future__ import annotations

import asyncio
import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import sqlalchemy
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from scrapy import Request
from scrapy.http import HtmlResponse
from scrapy.utils.test import get_crawler

import spiders_project
from gateway.accounts.ratelimit import RateLimiter
from gateway.catalog.eggs import build_egg, read_egg
from gateway.clock import utc_now
from gateway.config import ConfigError, load_settings
from gateway.errors import BadRequest
from gateway.jobs.feeds import feed_documents
from gateway.jobs.service import encode_arguments
from gateway.store import Store
from gateway.store.tables import metadata, tenants
from node.outcome import outcome_line, parse_outcome
from spiders_project.middlewares import HeadMetaRefreshMiddleware


def egg_of(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as egg:
        for name, text in files.items():
            egg.writestr(name, text)
    return buffer.getvalue()


def test_migrations_build_exactly_the_schema_the_code_declares(tmp_path: Path) -> None:
    database = tmp_path / "schema.sqlite3"

    async def migrate() -> None:
        store = Store(f"sqlite+aiosqlite:///{database}")
        await store.migrate()
        await store.close()

    asyncio.run(migrate())

    with sqlalchemy.create_engine(f"sqlite:///{database}").connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), metadata) == []


def test_a_store_read_sees_one_snapshot_and_cannot_write(tmp_path: Path) -> None:
    """A read holds one snapshot for its block, however many writes commit meanwhile; a statement
    that would write through it fails instead of taking the write lock."""

    async def scenario() -> tuple[int, int, int, str]:
        store = Store(f"sqlite+aiosqlite:///{tmp_path / 'snapshot.sqlite3'}")
        await store.migrate()
        add = sqlalchemy.insert(tenants)
        count = sqlalchemy.select(sqlalchemy.func.count()).select_from(tenants)
        try:
            async with store.read() as db:
                before = (await db.execute(count)).scalar_one()
                async with store.write() as writer:
                    await writer.execute(add.values(id="t1", name="one", created_at=utc_now()))
                during = (await db.execute(count)).scalar_one()
                try:
                    await db.execute(add.values(id="t2", name="two", created_at=utc_now()))
                    refused = ""
                except sqlalchemy.exc.OperationalError as error:
                    refused = str(error.orig)
            async with store.read() as db:
                after = (await db.execute(count)).scalar_one()
        finally:
            await store.close()
        return before, during, after, refused

    before, during, after, refused = asyncio.run(scenario())

    assert (before, during, after) == (0, 0, 1)
    assert "readonly" in refused


def test_a_store_scan_reads_beside_an_open_write(tmp_path: Path) -> None:
    """A scan (the reads that run off the event loop) takes no lock: it reads the last commit
    while a write transaction is open, instead of waiting for the writer to finish."""

    async def scenario() -> int:
        store = Store(f"sqlite+aiosqlite:///{tmp_path / 'scan.sqlite3'}")
        await store.migrate()
        count = sqlalchemy.select(sqlalchemy.func.count()).select_from(tenants)
        try:
            async with store.write() as writer:
                await writer.execute(
                    sqlalchemy.insert(tenants).values(id="t1", name="one", created_at=utc_now())
                )

                async def scanned() -> int:
                    async with store.scan() as db:
                        return int((await db.execute(count)).scalar_one())

                return await asyncio.wait_for(scanned(), timeout=10)
        finally:
            await store.close()

    assert asyncio.run(scenario()) == 0


def test_the_builtin_egg_is_deterministic_and_finds_its_spiders() -> None:
    package = Path(spiders_project.__file__).parent

    first, second = (
        build_egg(package, "spiders_project.settings"),
        build_egg(package, "spiders_project.settings"),
    )

    assert first == second
    contents = read_egg(first)
    assert contents.settings_module == "spiders_project.settings"
    assert contents.spider_paths["quotes"] == "spiders/quotes.py"
    assert not any("__pycache__" in name for name in zipfile.ZipFile(io.BytesIO(first)).namelist())


def test_spider_paths_follow_spider_modules_and_ignore_other_classes() -> None:
    egg = egg_of(
        {
            "EGG-INFO/entry_points.txt": "[scrapy]\nsettings = shop.settings\n",
            "shop/settings.py": "SPIDER_MODULES = ['shop.crawlers']\n",
            "shop/crawlers/__init__.py": "",
            "shop/crawlers/deep/books.py": "class Books(Spider):\n    name = 'books'\n",
            "shop/crawlers/music.py": "class Music(Spider):\n    name: str = 'music'\n",
            "shop/helpers.py": "class NotASpider:\n    name = 'helper'\n",
        }
    )

    assert read_egg(egg).spider_paths == {"books": "crawlers/deep/books.py", "music": "crawlers/music.py"}


def test_an_egg_with_broken_sources_still_reads() -> None:
    egg = egg_of(
        {
            "EGG-INFO/entry_points.txt": "[scrapy]\nsettings = p.settings\n",
            "p/settings.py": "SPIDER_MODULES = [compute()]\n",
            "p/spiders/a.py": "class A(:\n",
            "p/spiders/b.py": "class B:\n    name = 'b'\n",
        }
    )

    assert read_egg(egg).spider_paths == {"b": "spiders/b.py"}


def test_a_file_that_is_not_a_zip_is_not_an_egg() -> None:
    with pytest.raises(BadRequest, match="not a ZIP file"):
        read_egg(b"PK? no")


def test_a_damaged_egg_is_refused_as_bad_input() -> None:
    egg = bytearray(egg_of({"EGG-INFO/entry_points.txt": "[scrapy]\nsettings = p.settings\n"}))
    egg[egg.find(b"[scrapy]")] = ord("X")  # the stored CRC no longer matches

    with pytest.raises(BadRequest, match="not a readable ZIP file"):
        read_egg(bytes(egg))


def test_outcome_lines_are_read_back_and_the_last_value_wins() -> None:
    log = (
        "2026-01-01 00:00:00 [scrapy.core.engine] INFO: Closing spider (finished)\n"
        + outcome_line(close_reason="finished")
        + "{'item_scraped_count': 3}\n"
        + outcome_line(exit_code=0)
        + "garbage [spider-platform] INFO: Job outcome: {not json}\n"
    )

    outcome = parse_outcome(log)

    assert outcome.close_reason == "finished"
    assert outcome.exit_code == 0
    assert outcome.process_ended
    assert not parse_outcome("no outcome here").process_ended


def test_rate_limiter_allows_a_burst_then_refills_over_time() -> None:
    now = [0.0]
    limiter = RateLimiter(clock=lambda: now[0])

    assert [limiter.acquire("key", per_minute=3) for _ in range(3)] == [None, None, None]
    wait = limiter.acquire("key", per_minute=3)
    assert wait == pytest.approx(20.0)
    now[0] += 20.0
    assert limiter.acquire("key", per_minute=3) is None
    assert limiter.acquire("other", per_minute=3) is None


def test_settings_come_from_flags_then_environment_then_file(tmp_path: Path) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text('port = 9000\nhost = "0.0.0.0"\nscrapyd_urls = ["http://a:1"]\n', encoding="utf-8")

    settings = load_settings(
        config, flags={"port": 9100}, environ={"GATEWAY_HOST": "127.0.0.2", "GATEWAY_PORT": "9200"}
    )

    assert settings.port == 9100
    assert settings.host == "127.0.0.2"
    assert settings.scrapyd_urls == ("http://a:1",)
    assert not settings.embedded_node
    assert load_settings(environ={"GATEWAY_SCRAPYD_URLS": "http://a:1, http://b:2"}).scrapyd_urls == (
        "http://a:1",
        "http://b:2",
    )


@pytest.mark.parametrize(
    ("environ", "message"),
    [({"GATEWAY_PORT": "eighty"}, "port"), ({"GATEWAY_SYNC_INTERVAL": "0"}, "sync_interval")],
)
def test_bad_settings_say_which_and_why(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(environ=environ)


def test_unknown_settings_in_the_file_are_refused(tmp_path: Path) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text("prot = 1\n", encoding="utf-8")

    with pytest.raises(ConfigError, match="prot"):
        load_settings(config, environ={})


def test_arguments_are_passed_as_strings_or_compact_json() -> None:
    assert encode_arguments({"a": "x", "b": 2, "c": True, "d": None, "e": [1, "2"]}) == {
        "a": "x",
        "b": "2",
        "c": "true",
        "d": "null",
        "e": '[1,"2"]',
    }


def test_arguments_that_would_not_survive_the_trip_are_refused() -> None:
    with pytest.raises(BadRequest, match="reserved"):
        encode_arguments({"jobid": "1"})
    with pytest.raises(BadRequest, match="larger than 64 KiB"):
        encode_arguments({"big": "x" * 70_000})


def test_a_meta_refresh_is_found_in_the_head_without_decoding_the_page() -> None:
    """Scrapy's own middleware decodes a page whole (and keeps the text while the page waits for
    conversion); the page spiders' reads its head, follows a refresh there, and decodes nothing."""
    middleware = HeadMetaRefreshMiddleware.from_crawler(get_crawler(settings_dict={}))
    filler = "<p>café, no charset declared</p>".encode() * 8000

    def page(head: bytes) -> HtmlResponse:
        body = b"<html><head>" + head + b"</head><body>" + filler + b"</body></html>"
        return HtmlResponse(url="http://site.example/a", body=body, request=Request("http://site.example/a"))

    moved, still = page(b'<meta http-equiv="refresh" content="0; url=/b">'), page(b"<title>Here</title>")
    redirect = middleware.process_response(Request("http://site.example/a"), moved)
    answer = middleware.process_response(Request("http://site.example/a"), still)

    assert isinstance(redirect, Request)
    assert redirect.url == "http://site.example/b"
    assert answer is still
    # Neither page was decoded (TextResponse caches the text it decodes).
    assert moved._cached_ubody is None
    assert still._cached_ubody is None


def test_a_feed_line_with_nan_is_kept_as_json_can_carry_it() -> None:
    block = b'{"price": NaN, "range": [Infinity, -Infinity], "name": "x\\ud83d"}\n{"ok": 1}\n'

    first, second = feed_documents(block, "job")

    assert first.value == {"price": None, "range": [None, None], "name": "x\ud83d"}
    assert json.loads(first.text) == first.value
    assert "NaN" not in first.text
    # Still storable: the lone surrogate stays escaped (a raw one cannot be encoded as UTF-8).
    first.text.encode("utf-8")
    assert second.text == '{"ok": 1}'


def test_a_page_nested_a_hundred_thousand_deep_is_outlined_at_once() -> None:
    deep = '<html><body><a href="/top">x</a>' + "<div>" * 200_000 + "</body></html>"
    script = (
        "import sys; from spiders_project.conversion import page_outline;"
        "print(page_outline(sys.stdin.read(), 'http://site.example/').links)"
    )
    # In a process of its own: a parse that takes minutes (lexbor's, on this page) is stopped.
    done = subprocess.run(
        [sys.executable, "-c", script], input=deep, capture_output=True, text=True, timeout=30, check=True
    )
    assert done.stdout.strip() == "['http://site.example/top']"
