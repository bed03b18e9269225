"""HTML → GitHub-flavoured markdown, optionally of the main content only, plus links and clean HTML.

html-to-markdown (Rust) converts; trafilatura finds the main content (an article without navigation,
headers, footers, ads or cookie banners). Both were chosen by token F1 and pages/s on the article
corpus: ``bench/batch_quality.py`` prints the figures.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from copy import deepcopy
from dataclasses import dataclass
from typing import Any
from urllib.parse import urldefrag, urljoin

import html_to_markdown
import lxml.etree
import lxml.html
from html_to_markdown import ConversionOptions, PreprocessingOptions
from lxml.cssselect import CSSSelector
from lxml.etree import ParserError
from selectolax.lexbor import LexborHTMLParser

from spiders_project.pages import ContentOptions

# The page converter a spider uses, by Scrapy's PAGE_CONVERTER setting (a dotted path).
DEFAULT_CONVERTER = "spiders_project.conversion.convert_html"

# A whole page: keep forms (ASP.NET pages wrap everything in one) and navigation (its links count).
_WHOLE_PAGE_PREPROCESSING = PreprocessingOptions(remove_forms=False, remove_navigation=False)
# A fragment that is already clean (trafilatura's main content): convert it as it is.
_FRAGMENT = ConversionOptions(extract_metadata=False, preprocessing=PreprocessingOptions(enabled=False))
_UNWANTED = ("script", "style", "noscript", "template", "iframe", "object", "embed")


@dataclass(frozen=True)
class PageContent:
    markdown: str
    html: str | None
    links: list[str] | None
    images: list[str] | None = None


# What a page converter is: (HTML, the page's URL, options) → markdown, clean HTML and links.
HtmlConverter = Callable[[str, str, ContentOptions], "PageContent"]


def convert_html(text: str, url: str, options: ContentOptions) -> PageContent:
    """Markdown (and, when asked, clean HTML and the page's links) of one HTML page."""
    selecting = bool(options.include_tags or options.exclude_tags)
    tree = None
    # The links come from a parse of their own (page_outline): a whole page's markdown and links
    # need no lxml tree.
    if selecting or options.only_main_content or options.want_html or options.want_images:
        tree = parse_html(text)
        if tree is None:
            return PageContent(
                markdown="",
                html="" if options.want_html else None,
                links=[] if options.want_links else None,
                images=[] if options.want_images else None,
            )
    links = page_outline(text, url).links if options.want_links else None
    images = page_images(tree, url) if options.want_images else None
    if selecting:
        tree = _select(tree, options.include_tags, options.exclude_tags)
        text = lxml.html.tostring(tree, encoding="unicode")
    clean = _clean_html(tree, url) if options.want_html and not options.only_main_content else None
    # trafilatura prunes the tree it is given: it comes last.
    main_html = _main_content_html(tree, url) if options.only_main_content else None
    if main_html is not None:
        markdown = html_to_markdown.convert(main_html, _FRAGMENT).content or ""
        clean = main_html if options.want_html else None
    else:
        markdown = html_to_markdown.convert(text, _page_options(url)).content or ""
        if options.want_html and clean is None:
            clean = _clean_html(parse_html(text), url)
    markdown = markdown.strip()
    return PageContent(markdown=f"{markdown}\n" if markdown else "", html=clean, links=links, images=images)


@dataclass(frozen=True)
class PageOutline:
    """What a page says of other pages: its links, its title ("" for a page without one), and the
    URL it names canonical."""

    links: list[str]
    title: str
    canonical: str | None


# Pages with more tags than this are outlined with lxml: lexbor's tree building slows with the
# square of the nesting depth (20,000 nested <div>s take 0.34 s, 200,000 take minutes), and a page
# this size can nest no deeper than costs it 0.05 s. The corpus' largest page has 3,229 tags.
LEXBOR_MAX_TAGS = 8_000
_SKIPPED_SCHEMES = ("#", "javascript:", "mailto:", "tel:", "data:")


def page_outline(text: str, base_url: str) -> PageOutline:
    """The page's absolute http(s) links (without fragments, de-duplicated, in page order), its
    title and its ``<link rel="canonical">``, from one parse: with lexbor (selectolax), in a third
    of lxml's time, but for pages of very many tags. Like a browser's, the tree leaves
    ``<template>`` contents out."""
    if text.count("<") > LEXBOR_MAX_TAGS:
        return _lxml_outline(text, base_url)
    tree = LexborHTMLParser(text)
    base_node = tree.css_first("head base[href]")
    base = _base(base_url, base_node.attributes.get("href") if base_node else None)
    hrefs = (node.attributes.get("href") for node in tree.css("a[href]"))
    canonical = None
    for link in tree.css("head link[rel][href]"):
        if "canonical" in (link.attributes.get("rel") or "").lower().split():
            canonical = _absolute_http(base_url, link.attributes.get("href") or "")
            break
    title_node = tree.css_first("title")
    title = title_node.text().strip() if title_node is not None else ""
    return PageOutline(_links(base, hrefs), title, canonical)


def _lxml_outline(text: str, base_url: str) -> PageOutline:
    tree = parse_html(text)
    if tree is None:
        return PageOutline([], "", None)
    for template in tree.iter("template"):
        template.drop_tree()
    base = _base(base_url, tree.xpath("string(//head/base/@href)"))
    canonical = None
    for link in tree.xpath("//head/link[@rel][@href]"):
        if "canonical" in (link.get("rel") or "").lower().split():
            canonical = _absolute_http(base_url, link.get("href") or "")
            break
    return PageOutline(
        _links(base, tree.xpath("//a/@href")), (tree.findtext(".//title") or "").strip(), canonical
    )


def _base(page_url: str, href: str | None) -> str:
    return (absolute_url(page_url, href) if href else None) or page_url


def _links(base: str, hrefs: Iterable[str | None]) -> list[str]:
    seen: dict[str, None] = {}
    # A page repeats many of its hrefs (30 % on the corpus): each is resolved once.
    resolved: set[str] = set()
    for href in hrefs:
        if not href or href in resolved:
            continue
        resolved.add(href)
        href = href.strip()
        if not href or href.startswith(_SKIPPED_SCHEMES):
            continue
        absolute = _absolute_http(base, href)
        if absolute:
            seen.setdefault(absolute, None)
    return list(seen)


def _absolute_http(base: str, href: str) -> str | None:
    """``href`` resolved against ``base``, without its fragment, if it is an http(s) URL."""
    absolute = absolute_url(base, href)
    if absolute and absolute.startswith(("http://", "https://")):
        return urldefrag(absolute)[0]
    return None


def page_images(tree: Any, base_url: str) -> list[str]:
    """Absolute http(s) URLs of the page's images (``img`` and ``picture`` sources, every
    ``srcset`` candidate), de-duplicated, in page order; inlined (``data:``) ones are left out."""
    base = _base(base_url, tree.xpath("string(//head/base/@href)"))
    seen: dict[str, None] = {}
    for element in tree.xpath("//img | //picture/source"):
        candidates = [element.get("src") or ""]
        candidates += [entry.strip().split(" ")[0] for entry in (element.get("srcset") or "").split(",")]
        for source in candidates:
            source = source.strip()
            if not source or source.startswith("data:"):
                continue
            absolute = absolute_url(base, source)
            if absolute and absolute.startswith(("http://", "https://")):
                seen.setdefault(absolute, None)
    return list(seen)


def absolute_url(base: str, href: str) -> str | None:
    """``href`` resolved against ``base``, or None when it cannot be (``http://[oops/``)."""
    try:
        return urljoin(base, href.strip())
    except ValueError:
        return None


def parse_html(text: str) -> Any:
    """An lxml tree of the page, or None when there is nothing to parse."""
    # lxml refuses text that starts with an XML declaration (XHTML pages served as text/html).
    text = _XML_DECLARATION.sub("", text, count=1)
    try:
        return lxml.html.document_fromstring(text)
    except (ParserError, ValueError):
        return None


_XML_DECLARATION = re.compile(r"\A\s*<\?xml[^>]*\?>")


def _page_options(url: str) -> ConversionOptions:
    return ConversionOptions(
        extract_metadata=False,
        inline_data_media="alt_text_only",
        base_url=url,
        preprocessing=_WHOLE_PAGE_PREPROCESSING,
    )


def _select(tree: Any, include: tuple[str, ...], exclude: tuple[str, ...]) -> Any:
    """The page without elements matching ``exclude``, reduced to those matching ``include``."""
    for selector in exclude:
        for element in CSSSelector(selector)(tree):
            if element.getparent() is not None:
                element.drop_tree()
    if not include:
        return tree
    matched = [element for selector in include for element in CSSSelector(selector)(tree)]
    chosen = {
        element for element in matched if not any(ancestor in matched for ancestor in element.iterancestors())
    }
    page = lxml.html.document_fromstring("<html><head></head><body></body></html>")
    head, body = page.find("head"), page.find("body")
    for element in tree.iter("title", "base"):
        head.append(deepcopy(element))
    for element in tree.iter():
        if element in chosen:
            body.append(deepcopy(element))
    return page


def _main_content_html(tree: Any, url: str) -> str | None:
    """The main content as clean HTML, or None when trafilatura finds none."""
    # Imported on first use: it is the slowest import of all, and whole-page batches never need it.
    import trafilatura

    document = trafilatura.bare_extraction(
        tree,
        url=url,
        favor_precision=True,
        include_comments=False,
        include_links=True,
        include_formatting=True,
        include_tables=True,
    )
    body = getattr(document, "body", None)
    if body is None or not len(body):
        return None
    return _xml_to_html(body, url)


# trafilatura's XML vocabulary → HTML. Its own HTML output turns every list into <ul> and every
# code block into a doubled <pre>, so the body is translated here instead.
_INLINE_STYLES = {"#i": "em", "#b": "strong", "#u": "u", "#t": "code", "#sub": "sub", "#sup": "sup"}
_RENAMED = {"item": "li", "quote": "blockquote", "lb": "br", "row": "tr", "ref": "a", "graphic": "img"}
_BLOCK_PARENTS = frozenset({"body", "doc", "main", "item", "quote", "cell", "div", "list"})


def _xml_to_html(body: Any, url: str) -> str:
    tree = deepcopy(body)
    for element in list(tree.iter()):
        if not isinstance(element.tag, str):
            continue
        attributes = dict(element.attrib)
        element.attrib.clear()
        tag = element.tag
        if tag == "list":
            element.tag = "ol" if attributes.get("rend") == "ol" else "ul"
        elif tag == "head":
            rend = attributes.get("rend", "h3")
            element.tag = rend if rend in ("h1", "h2", "h3", "h4", "h5", "h6") else "h3"
        elif tag == "hi":
            element.tag = _INLINE_STYLES.get(attributes.get("rend", "#i"), "em")
        elif tag == "cell":
            element.tag = "th" if attributes.get("role") == "head" else "td"
        elif tag == "code":
            _code_element(element, attributes)
        elif tag in _RENAMED:
            element.tag = _RENAMED[tag]
        if element.tag == "a" and attributes.get("target"):
            element.set("href", absolute_url(url, attributes["target"]) or attributes["target"])
        elif element.tag == "img":
            for name in ("src", "alt", "title"):
                if attributes.get(name):
                    value = attributes[name]
                    element.set(name, (absolute_url(url, value) or value) if name == "src" else value)
    tree.tag = "body"
    # No pretty printing: it would add whitespace inside <pre>.
    return str(lxml.etree.tostring(tree, encoding="unicode"))


def _code_element(element: Any, attributes: dict[str, str]) -> None:
    parent = element.getparent()
    is_block = (
        parent is None or parent.tag in _BLOCK_PARENTS or (len(element) == 1 and element[0].tag == "code")
    )
    language = attributes.get("class", "")
    if not is_block or (parent is not None and parent.tag == "pre"):
        if language.startswith("language-"):
            element.set("class", language)
        return
    element.tag = "pre"
    if len(element) == 1 and element[0].tag == "code" and not (element.text or "").strip():
        element.text = None
        return
    inner = lxml.etree.Element("code")
    if language.startswith("language-"):
        inner.set("class", language)
    inner.text, element.text = element.text, None
    for child in list(element):
        inner.append(child)
    element.append(inner)


def _clean_html(tree: Any, url: str) -> str:
    """The page's body without scripts, styles, frames and comments, its links made absolute."""
    if tree is None:
        return ""
    page = deepcopy(tree)
    for element in page.iter(*_UNWANTED, lxml.etree.Comment):
        if element.getparent() is not None:
            element.drop_tree()
    page.make_links_absolute(url, resolve_base_href=True, handle_failures="ignore")
    body = page.find("body")
    return str(lxml.html.tostring(body if body is not None else page, encoding="unicode"))
