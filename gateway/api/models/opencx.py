"""open.cx-style website datasources and their recrawls."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, Field
from pydantic.json_schema import SkipJsonSchema

from gateway.api.models.common import Model
from gateway.api.models.fields import Body, NotSupportedYet, PathPatterns, Query
from gateway.api.models.webhooks import Webhook
from gateway.datasources.changes import Change
from gateway.datasources.service import CrawlStatus, DatasourceStatus
from spiders_project.site_scope import MAX_PAGE_LIMIT


class DatasourceFields(Body):
    display_name: str | None = Field(None, max_length=200)
    crawl_interval_hours: float | None = Field(
        None, gt=0, description="Hours between recrawls; null: recrawled by hand only"
    )
    status: DatasourceStatus | None = Field(None, strict=False)
    page_limit: int | None = Field(None, ge=1, le=MAX_PAGE_LIMIT)
    include_paths: PathPatterns | None = None
    exclude_paths: PathPatterns | None = None


def _website(url: str) -> str:
    if not url.strip():
        raise ValueError("is required: the website to crawl")
    return url.strip()


class NewDatasource(DatasourceFields):
    url: Annotated[str, AfterValidator(_website)] = Field(description="The website to crawl")
    auto_start_crawl: bool = True
    webhook: Webhook | None = Field(None, description="crawl.completed (with what changed), crawl.failed")


def _unchangeable(url: Any) -> None:
    if url is not None:
        raise ValueError("cannot change: create another datasource")


class DatasourceChange(DatasourceFields):
    url: SkipJsonSchema[Annotated[Any, AfterValidator(_unchangeable)]] = None
    webhook: NotSupportedYet = None


class Datasource(Model):
    id: str
    url: str
    display_name: str | None
    status: DatasourceStatus
    page_limit: int
    exclude_paths: list[str]
    include_paths: list[str]
    crawl_interval_hours: float | None
    next_crawl_at: str | None
    last_crawl_started_at: str | None
    last_crawl_completed_at: str | None
    error_message: str | None
    created_at: str | None
    updated_at: str | None


class PageStats(Model):
    total: int
    synced: int
    pending: int
    error: int
    excluded: int


class Crawl(Model):
    id: str
    datasource_id: str
    status: CrawlStatus
    started_at: str | None
    completed_at: str | None
    total_pages: int
    completed_pages: int
    new_pages: int
    updated_pages: int
    removed_pages: int
    unchanged_pages: int
    error_message: str | None
    created_at: str | None
    updated_at: str | None


class ActiveCrawl(Model):
    id: str
    status: CrawlStatus


class DatasourceDetail(Datasource):
    page_stats: PageStats
    active_crawl_job: ActiveCrawl | None


class ListQuery(Query):
    limit: int = Field(50, ge=1, le=200)
    offset: int = Field(0, ge=0, le=10**6)


class DatasourceList(Model):
    data: list[Datasource]
    total: int
    limit: int
    offset: int


class CrawlList(Model):
    data: list[Crawl]
    total: int


class PagesQuery(Query):
    change: Change | None = None
    content: str | None = Field(None, description="true (or 1, yes): each page with its markdown")
    limit: int = Field(100, ge=1, le=1000)
    offset: int = Field(0, ge=0, le=10**6)


class Page(Model):
    url: str
    title: str | None
    change: Change
    status_code: int | None
    content_hash: str | None
    error_message: str | None
    first_seen_at: str | None
    changed_at: str | None
    crawled_at: str | None
    markdown: str | None = None


class PageList(Model):
    data: list[Page]
    total: int
    limit: int
    offset: int
