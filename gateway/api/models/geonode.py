"""Geonode batch scrapes."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from gateway.api.models.common import Model

GeonodeFormat = Literal["markdown", "html", "screenshot"]
GeonodeStatus = Literal["queued", "processing", "completed", "failed", "cancelled"]


class WaitConfig(Model):
    wait_until: Literal["load", "domcontentloaded", "networkidle", "commit"] | None = None
    wait_for: str | None = Field(None, description="A CSS selector to wait for", max_length=4096)
    wait_timeout: int | None = Field(None, ge=0, le=30000)


class GeonodeProxy(Model):
    country: str | None = Field(None, pattern=r"^[A-Z]{2}$")
    type: Literal["datacenter", "residential", "mix"] = "residential"


class StartBatchBody(Model):
    urls: list[str] = Field(min_length=1, max_length=1000)
    formats: list[GeonodeFormat] = Field(["markdown"], min_length=1)
    render_js: bool = False
    ignore_invalid_urls: bool = True
    wait_config: WaitConfig | None = None
    headers: dict[str, str] | None = None
    proxy: GeonodeProxy | None = None


class StartedBatch(Model):
    job_id: str
    status: GeonodeStatus
    status_url: str
    accepted_urls: int
    invalid_urls: list[str]


class BatchPageQuery(Model):
    page: int = Field(1, ge=1, le=10**6)
    page_size: int = Field(10, ge=1, le=50)


class BatchListQuery(Model):
    page: int = Field(1, ge=1, le=10**6)
    page_size: int = Field(10, ge=1, le=100)
    status: GeonodeStatus | None = None


class BatchSummary(Model):
    job_id: str
    status: GeonodeStatus
    completed_urls: int
    failed_urls: int
    cancelled_urls: int
    pending_urls: int
    spider_restarts: int
    created_at: str | None
    completed_at: str | None


class BatchConfig(Model):
    render_js: bool
    formats: list[str]
    proxy: dict[str, Any] | None
    headers: dict[str, str] | None
    wait_config: dict[str, Any] | None


class PageMetadata(Model):
    http_status: int | None
    duration_ms: int | None
    retry_count: int | None


class PageResult(Model):
    input_index: int
    url: str
    status: str
    error_code: str | None
    error_message: str | None
    data: dict[str, Any] | None
    metadata: PageMetadata | None


class BatchStatusAnswer(BatchSummary):
    batch_config: BatchConfig
    total_urls: int
    invalid_urls: list[str]
    page: int
    page_size: int
    results: list[PageResult]


class ListedBatch(BatchSummary):
    accepted_urls: int
    config: BatchConfig


class BatchList(Model):
    jobs: list[ListedBatch]
    page: int
    page_size: int
    page_count: int


class CancelledBatch(Model):
    job_id: str
    status: GeonodeStatus
    status_url: str
    in_flight_urls: int
