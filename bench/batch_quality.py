"""Main-content quality of batch markdown on the article corpus (181 real pages with ground truth).

    .venv/bin/python -m bench.batch_quality

Serves the corpus on loopback, runs every page as one Firecrawl v2 batch through the gateway with
`onlyMainContent`, and prints token precision, recall and F1 of each page's markdown text (markdown
syntax removed) against its `articleBody`, averaged over pages; the raw markdown's figures too.
Published on this corpus: trafilatura 0.958 F1, readability.js 0.947. Target: F1 >= 0.95.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.corpus import Article, CorpusSite, load_articles, markdown_text, precision_recall_f1
from tests.harness import Gateway, ScrapydNode


def scrape(articles: list[Article], only_main_content: bool = True) -> tuple[dict[str, str], float]:
    """Markdown of every article through a real gateway and node, and the seconds it took."""
    with tempfile.TemporaryDirectory() as workdir, CorpusSite(articles) as site:
        node = ScrapydNode(Path(workdir) / "node").start()
        env = {"GATEWAY_ALLOWED_ADDRESSES": f"127.0.0.1:{site.port}", "GATEWAY_LOG_LEVEL": "warning"}
        gateway = Gateway(Path(workdir) / "gateway", node, env=env).start()
        try:
            with gateway.client(gateway.admin_key()) as client:
                urls = {site.url_of(article): article.id for article in articles}
                started = time.perf_counter()
                batch = client.post(
                    "/v2/batch/scrape",
                    json={"urls": list(urls), "formats": ["markdown"], "onlyMainContent": only_main_content},
                ).json()
                while client.get(f"/v2/batch/scrape/{batch['id']}?limit=1").json()["status"] == "scraping":
                    time.sleep(0.2)
                elapsed = time.perf_counter() - started
                markdown: dict[str, str] = {}
                page: dict[str, Any] = client.get(f"/v2/batch/scrape/{batch['id']}").json()
                while True:
                    for doc in page["data"]:
                        markdown[urls[doc["metadata"]["sourceURL"]]] = doc.get("markdown") or ""
                    if "next" not in page:
                        break
                    page = client.get(page["next"]).json()
        finally:
            gateway.stop()
            node.stop()
    return markdown, elapsed


def main() -> None:
    articles = load_articles()
    markdown, elapsed = scrape(articles)
    text_scores = [precision_recall_f1(markdown_text(markdown.get(a.id, "")), a.body) for a in articles]
    raw_scores = [precision_recall_f1(markdown.get(a.id, ""), a.body) for a in articles]
    empty = sum(1 for article in articles if not markdown.get(article.id, "").strip())

    def mean(scores: list[tuple[float, float, float]], which: int) -> float:
        return statistics.fmean(score[which] for score in scores)

    print(f"main-content markdown of {len(articles)} corpus pages, one batch, {elapsed:.1f} s")
    print(f"  pages with no markdown: {empty}")
    print(
        f"  markdown text  precision {mean(text_scores, 0):.3f}  recall {mean(text_scores, 1):.3f}  "
        f"F1 {mean(text_scores, 2):.3f}  (target >= 0.950; trafilatura published 0.958)"
    )
    print(
        f"  raw markdown   precision {mean(raw_scores, 0):.3f}  recall {mean(raw_scores, 1):.3f}  "
        f"F1 {mean(raw_scores, 2):.3f}"
    )
    worst = sorted(zip(text_scores, articles, strict=True), key=lambda pair: pair[0][2])[:5]
    print("  lowest F1: " + ", ".join(f"{article.id[:8]} {score[2]:.2f}" for score, article in worst))


if __name__ == "__main__":
    main()
