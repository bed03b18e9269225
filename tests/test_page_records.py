"""The pieces that make a page record: conversion, metadata, decoding, address policy, URL screening."""

from __future__ import annotations

import asyncio
import re

import pytest

from gateway.batches.urls import screen_urls, url_problem
from spiders_project.addresses import AddressPolicy, BlockedAddress
from spiders_project.conversion import convert_html
from spiders_project.decoding import decode_body
from spiders_project.metadata import head_metadata
from spiders_project.pages import ContentOptions

ARTICLE = """<!DOCTYPE html><html lang="en"><head><title>A guide</title></head><body>
<nav><a href="/home">Home</a> <a href="/about">About</a></nav>
<form action="/x"><article>
<h1>Spiders</h1>
<p>Spiders have <a href="/legs#eight">eight legs</a> and <strong>no</strong> wings.</p>
<ul><li>web</li><li>silk</li></ul>
<ol><li>first</li><li>second</li></ol>
<table><tr><th>Kind</th><th>Legs</th></tr><tr><td>spider</td><td>8</td></tr></table>
<pre><code class="language-python">print("hi")</code></pre>
<script>var tracking = 1;</script>
</article></form>
<footer>Copyright</footer></body></html>"""


def test_markdown_keeps_headings_lists_links_tables_and_code() -> None:
    markdown = convert_html(ARTICLE, "https://example.com/guide/", ContentOptions()).markdown

    assert "# Spiders" in markdown
    assert "[eight legs](https://example.com/legs#eight)" in markdown
    assert "**no**" in markdown
    assert "- web" in markdown
    assert "1. first" in markdown
    assert re.search(r"^\| Kind +\| Legs \|\n\| -+ \| -+ \|\n\| spider \| 8 +\|$", markdown, re.MULTILINE)
    assert '```python\nprint("hi")\n```' in markdown
    # A page wrapped in one big form (ASP.NET style) keeps its content; navigation stays too.
    assert "[Home](https://example.com/home)" in markdown
    assert "tracking" not in markdown


def test_xhtml_pages_with_an_xml_declaration_convert() -> None:
    page = (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        '<html><head><title>X</title></head><body><p>Body <a href="/a">a</a></p></body></html>'
    )

    content = convert_html(page, "https://e.com/", ContentOptions(want_links=True, only_main_content=True))

    assert "Body" in content.markdown
    assert content.links == ["https://e.com/a"]
    assert head_metadata(page, "https://e.com/")["title"] == "X"


def test_a_link_that_cannot_be_resolved_is_left_out() -> None:
    html = (
        '<head><link rel="canonical" href="http://[oops/"></head>'
        '<a href="http://[oops/">bad</a><a href="/ok">ok</a>'
    )

    assert convert_html(html, "https://e.com/", ContentOptions(want_links=True)).links == ["https://e.com/ok"]
    assert head_metadata(html, "https://e.com/")["canonical"] == "http://[oops/"


def test_links_are_absolute_unique_and_in_page_order() -> None:
    html = '<a href="/b">b</a><a href="a#x">a</a><a href="/b#y">b</a><a href="mailto:x@y">m</a><a href="https://o.org/">o</a>'

    links = convert_html(html, "https://example.com/dir/page", ContentOptions(want_links=True)).links

    assert links == ["https://example.com/b", "https://example.com/dir/a", "https://o.org/"]


def test_include_and_exclude_tags_select_what_is_converted() -> None:
    only_table = convert_html(ARTICLE, "https://e.com/", ContentOptions(include_tags=("table",))).markdown
    without = convert_html(
        ARTICLE, "https://e.com/", ContentOptions(exclude_tags=("nav", "footer", "table"))
    ).markdown

    assert re.match(r"\| Kind +\| Legs \|", only_table)
    assert "Spiders" not in only_table
    assert "Home" not in without
    assert "Copyright" not in without
    assert "Kind" not in without
    assert "eight legs" in without


def test_main_content_drops_navigation_and_footer() -> None:
    paragraphs = "".join(
        f"<p>Paragraph {n} tells a long story about spiders and their silk webs.</p>" for n in range(12)
    )
    html = (
        f"<html><body><nav><a href='/'>Home</a></nav><article><h1>Story</h1>{paragraphs}</article>"
        "<footer>Cookie banner: accept all</footer></body></html>"
    )

    markdown = convert_html(html, "https://e.com/", ContentOptions(only_main_content=True)).markdown

    assert "Paragraph 11 tells a long story" in markdown
    assert "Home" not in markdown
    assert "Cookie banner" not in markdown


def test_clean_html_has_no_scripts_and_absolute_links() -> None:
    html = convert_html(ARTICLE, "https://example.com/guide/", ContentOptions(want_html=True)).html

    assert html is not None
    assert "<script" not in html
    assert 'href="https://example.com/legs#eight"' in html


def test_head_metadata_under_firecrawl_names() -> None:
    head = """<html lang="de"><head><title> Title  here </title>
    <meta name="description" content="About it"><meta name="keywords" content="a, b">
    <meta property="og:title" content="OG title"><meta property="og:image" content="/i.png">
    <meta property="og:locale:alternate" content="fr_FR"><meta property="og:locale:alternate" content="en_GB">
    <link rel="canonical" href="/canonical"></head><body>x</body></html>"""

    metadata = head_metadata(head, "https://example.com/page")

    assert metadata == {
        "language": "de",
        "title": "Title here",
        "description": "About it",
        "keywords": "a, b",
        "ogTitle": "OG title",
        "ogImage": "https://example.com/i.png",
        "ogLocaleAlternate": ["fr_FR", "en_GB"],
        "canonical": "https://example.com/canonical",
    }


def test_head_metadata_has_firecrawls_further_fields_and_lists_repeated_tags() -> None:
    head = """<html><head><title>Article</title>
    <meta name="robots" content="noindex, follow">
    <meta property="og:url" content="/story"><meta property="og:site_name" content="The Daily">
    <meta property="og:locale" content="en_US">
    <meta property="article:published_time" content="2026-11-02T08:00:00Z">
    <meta itemprop="dateModified" content="2026-11-03T09:30:00Z">
    <meta property="article:tag" content="spiders"><meta property="article:tag" content="scrapy">
    <meta name="DC.Title" content="A DC title"><meta name="dcterms.created" content="2026-11-01">
    <meta name="dc.date.created" content="2026-11-01">
    <meta name="keywords" content="web"><meta name="keywords" content="crawl">
    <meta name="author" content="Ann"><meta name="author" content="Bob">
    <meta name="twitter:card" content="summary">
    <meta name="sourceURL" content="http://evil.example/"><meta name="statusCode" content="200">
    <link rel="shortcut icon" href="/favicon.ico"><link rel="icon" href="/other.png">
    </head><body>x</body></html>"""

    metadata = head_metadata(head, "https://news.example/2026/story?id=1")

    assert metadata["robots"] == "noindex, follow"
    assert metadata["ogUrl"] == "https://news.example/story"
    assert (metadata["ogSiteName"], metadata["ogLocale"]) == ("The Daily", "en_US")
    assert metadata["publishedTime"] == "2026-11-02T08:00:00Z"
    assert metadata["modifiedTime"] == "2026-11-03T09:30:00Z"
    assert metadata["articleTag"] == "spiders, scrapy"
    assert metadata["dcTitle"] == "A DC title"
    assert metadata["dcTermsCreated"] == metadata["dcDateCreated"] == "2026-11-01"
    assert metadata["favicon"] == "https://news.example/favicon.ico"
    # A tag the page repeats is a list; one it gives once, a string.
    assert metadata["keywords"] == ["web", "crawl"]
    assert metadata["author"] == ["Ann", "Bob"]
    assert metadata["twitter:card"] == "summary"
    # The page cannot pass its own tags off as the record's fields.
    assert "sourceURL" not in metadata
    assert "statusCode" not in metadata


def test_a_page_cannot_flood_its_metadata() -> None:
    tags = "".join(f'<meta name="custom-{n}" content="{"v" * 5000}">' for n in range(500))
    repeated = '<meta name="same" content="again">' * 500

    many = head_metadata(f"<html><head>{tags}</head><body></body></html>", "https://e.com/")
    again = head_metadata(f"<html><head>{repeated}</head><body></body></html>", "https://e.com/")

    custom = [name for name in many if name.startswith("custom-")]
    assert len(custom) == 50
    assert all(len(many[name]) == 2000 for name in custom)
    assert again["same"] == ["again"] * 20


@pytest.mark.parametrize(
    ("text", "encoding", "content_type"),
    [
        ("Съешь же ещё этих мягких французских булок, да выпей чаю.", "cp1251", "text/html"),
        ("いろはにほへと ちりぬるを わかよたれそ つねならむ。", "shift_jis", "text/html"),
        ("Grüße aus Köln", "utf-8", "text/html"),
        ("Café crème", "latin-1", "text/html; charset=ISO-8859-1"),
    ],
)
def test_bodies_decode_by_declaration_or_sniffing(text: str, encoding: str, content_type: str) -> None:
    body = f"<html><body><p>{text}</p></body></html>".encode(encoding)

    decoded, _ = decode_body(body, content_type)

    assert text in decoded


def test_address_policy_refuses_private_addresses_unless_allowed() -> None:
    policy = AddressPolicy.from_entries(allowed=["127.0.0.1:8080", "10.1.0.0/16"], denied=["10.1.2.3:6800"])

    policy.check("example.com", 443, ["93.184.215.14"])
    policy.check("localhost", 8080, ["127.0.0.1"])
    policy.check("intranet", 80, ["10.1.9.9"])
    policy.check("localhost.", 8080, ["127.0.0.1"])
    for host, port, address in [
        ("localhost", 8081, "127.0.0.1"),
        ("metadata", 80, "169.254.169.254"),
        ("router", 80, "192.168.1.1"),
        ("v6", 80, "::1"),
        ("mapped", 80, "::ffff:127.0.0.1"),
        ("node", 6800, "10.1.2.3"),
        ("nat64", 80, "64:ff9b::7f00:1"),
        ("sixtofour", 80, "2002:a00:1::"),
        ("compatible", 80, "::127.0.0.1"),
        ("translated", 80, "::ffff:0:7f00:1"),
        ("site-local", 80, "fec0::1"),
        ("local-nat64", 80, "64:ff9b:1::a00:1"),
        ("shared", 80, "100.64.0.1"),
        ("alibaba-metadata", 80, "100.100.100.200"),
        ("aws-metadata-v6", 80, "fd00:ec2::254"),
        ("azure-wireserver", 80, "168.63.129.16"),
        ("mixed", 80, "93.184.215.14"),
    ]:
        with pytest.raises(BlockedAddress):
            policy.check(host, port, [address] if host != "mixed" else ["93.184.215.14", "10.9.9.9"])


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("ftp://example.com/file", "only http and https"),
        ("http://", "no host"),
        ("http://exa mple.com/", "whitespace"),
        ("https://example.com/" + "x" * 2048, "longer than 2048"),
        (42, "not a string"),
        ("", "empty"),
        ("http://example.com:99999/", "malformed"),
    ],
)
def test_url_problems_are_named(url: object, problem: str) -> None:
    found = url_problem(url)

    assert found is not None
    assert problem in found


def test_screening_keeps_input_indexes_and_refuses_loopback() -> None:
    urls = [
        "https://93.184.215.14/a",
        "ftp://x",
        "http://127.0.0.1\\@example.com/",
        "https://93.184.215.14/a",
    ]

    screened = asyncio.run(screen_urls(urls, AddressPolicy()))

    assert screened.accepted == [(0, urls[0]), (3, urls[3])]
    assert [(item.index, item.url) for item in screened.invalid] == [
        (1, "ftp://x"),
        (2, urls[2]),
    ]
    assert "non-public" in screened.invalid[1].reason
