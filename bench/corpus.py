"""The article corpus (../shared/corpus/article-extraction-benchmark) served on loopback, and its measure.

Each of the 181 pages is served, as fetched, under any number of distinct URLs
(``/page/<id>/<copy>``), without a declared charset. Quality is token precision, recall and F1 of a
page's markdown text against its ``articleBody``: lower-cased, split on whitespace and punctuation,
multiset overlap, averaged over pages (the corpus README's measure).
"""

from __future__ import annotations

import gzip
import json
import re
import threading
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

CORPUS = Path(__file__).resolve().parent.parent.parent / "shared" / "corpus" / "article-extraction-benchmark"


@dataclass(frozen=True)
class Article:
    id: str
    html: bytes
    body: str


def load_articles() -> list[Article]:
    truth = json.loads((CORPUS / "ground-truth.json").read_text(encoding="utf-8"))
    return [
        Article(
            id=path.name.split(".")[0],
            html=gzip.decompress(path.read_bytes()),
            body=truth[path.name.split(".")[0]]["articleBody"],
        )
        for path in sorted((CORPUS / "html").glob("*.html.gz"))
    ]


class CorpusSite:
    """``with CorpusSite(articles) as site: site.url_of(article, copy)``."""

    def __init__(self, articles: list[Article]) -> None:
        pages = {article.id: article.html for article in articles}

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                parts = self.path.split("/")
                body = pages.get(parts[2]) if len(parts) > 2 and parts[1] == "page" else None
                self.send_response(200 if body is not None else 404)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(body or b"")))
                self.end_headers()
                self.wfile.write(body or b"")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            request_queue_size = 256

        self._server = Server(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def url_of(self, article: Article, copy: int = 0) -> str:
        return f"http://127.0.0.1:{self.port}/page/{article.id}/{copy}"

    def __enter__(self) -> CorpusSite:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._server.server_close()


# Markdown syntax is not text: link targets, emphasis marks, table rules and fences are dropped.
_IMAGE = re.compile(r"!\[([^\]]*)\]\([^)]*\)")
_LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")
_AUTOLINK = re.compile(r"<(?:https?|mailto):[^>]+>")
_FENCE = re.compile(r"^\s*(```|~~~).*$", re.MULTILINE)
_TABLE_RULE = re.compile(r"^\s*\|?\s*:?-{2,}:?\s*(\|\s*:?-{2,}:?\s*)*\|?\s*$", re.MULTILINE)
_HTML_TAG = re.compile(r"</?[a-zA-Z][^>]*>")
_SYNTAX = re.compile(r"(^\s{0,3}#{1,6}\s+|^\s*>+\s?|^\s*[-*+]\s+|^\s*\d+[.)]\s+|[*_~`|]+)", re.MULTILINE)
_TOKEN = re.compile(r"\w+")


def markdown_text(markdown: str) -> str:
    text = _IMAGE.sub("", markdown)
    text = _LINK.sub(r"\1", text)
    for pattern in (_AUTOLINK, _FENCE, _TABLE_RULE, _HTML_TAG, _SYNTAX):
        text = pattern.sub(" ", text)
    return text


def precision_recall_f1(predicted: str, truth: str) -> tuple[float, float, float]:
    found, wanted = Counter(_TOKEN.findall(predicted.lower())), Counter(_TOKEN.findall(truth.lower()))
    overlap = sum((found & wanted).values())
    if not overlap:
        return 0.0, 0.0, 0.0
    precision, recall = overlap / sum(found.values()), overlap / sum(wanted.values())
    return precision, recall, 2 * precision * recall / (precision + recall)
