"""What every dialect shares: the error shapes, and the base of every model."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict


class Model(BaseModel):
    """An answer or body that may carry keys beyond those listed."""

    model_config = ConfigDict(extra="allow")


class ErrorBody(Model):
    """Every dialect's error but scrapyd's: ``{"error": "what went wrong"}``."""

    error: str


class FirecrawlErrorBody(ErrorBody):
    """Firecrawl's error shape, which its SDKs read: success false, and a code for some errors."""

    success: Literal[False]
    code: str | None = None


class ScrapydErrorBody(Model):
    """scrapyd's error shape, which its clients read."""

    status: str
    message: str
    node_name: str


class Ok(Model):
    ok: bool
    message: str


class Success(Model):
    success: bool
