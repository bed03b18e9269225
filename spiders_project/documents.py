"""Text of documents that are not web pages (PDF), as markdown."""

from __future__ import annotations

import io
import logging

log = logging.getLogger(__name__)


def pdf_markdown(body: bytes) -> str:
    """The text of each page, pages separated by a rule; empty when the PDF cannot be read."""
    # Imported on the first PDF: most spiders never meet one, and pypdf holds 6.5 MiB.
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    try:
        reader = PdfReader(io.BytesIO(body))
        pages = [(page.extract_text() or "").strip() for page in reader.pages]
    except (PyPdfError, ValueError, KeyError, TypeError) as exc:
        log.warning("unreadable PDF: %s", exc)
        return ""
    text = "\n\n---\n\n".join(page for page in pages if page)
    return f"{text}\n" if text else ""
