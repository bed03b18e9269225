"""Text of documents that are not web pages (PDF), as markdown."""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PdfText:
    markdown: str
    # None when the PDF cannot be read.
    pages: int | None = None
    title: str | None = None


def pdf_text(body: bytes) -> PdfText:
    """The text of each page, pages separated by a rule, with the page count and the document's
    title; empty when the PDF cannot be read."""
    # Imported on the first PDF: most spiders never meet one, and pypdf holds 6.5 MiB.
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    try:
        reader = PdfReader(io.BytesIO(body))
        pages = [(page.extract_text() or "").strip() for page in reader.pages]
        info = reader.metadata
        title = str(info.title).strip() if info is not None and info.title else None
    except (PyPdfError, ValueError, KeyError, TypeError) as exc:
        log.warning("unreadable PDF: %s", exc)
        return PdfText("")
    text = "\n\n---\n\n".join(page for page in pages if page)
    return PdfText(f"{text}\n" if text else "", len(pages), title or None)
