"""Geonode batch scrapes."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, ConfigDict, Field, model_validator

from gateway.api.models.common import Model
from gateway.api.models.fields import Body, CountryCode, Query, RequestHeaders, css_selector_problem
from gateway.api.models.webhooks import Webhook

GeonodeFormat = Literal["markdown", "html", "screenshot"]
GeonodeStatus = Literal["queued", "processing", "completed", "failed", "cancelled"]


def _wait_selector(selector: str) -> str:
    problem = css_selector_problem(selector)
    if problem:
        raise ValueError(f"is {problem}")
    return selector


class WaitConfig(Body):
    model_config = ConfigDict(extra="forbid")

    wait_until: Literal["load", "domcontentloaded", "networkidle", "commit"] | None = None
    wait_for: Annotated[str, AfterValidator(_wait_selector)] | None = Field(
        None, description="A CSS selector to wait for"
    )
    wait_timeout: int | None = Field(None, ge=0, le=30000, description="Milliseconds")


class GeonodeProxy(Body):
    model_config = ConfigDict(extra="forbid")

    country: CountryCode | None = None
    type: Literal["datacenter", "residential", "mix"] = "residential"


class StartBatchBody(Body):
    # Entries that are not URLs are listed back as invalid (or refused, with ignore_invalid_urls false).
    urls: list[Any] = Field(json_schema_extra={"items": {"type": "string"}, "minItems": 1, "maxItems": 1000})
    formats: list[GeonodeFormat] = Field(["markdown"], min_length=1)
    render_js: bool = False
    ignore_invalid_urls: bool = True
    wait_config: WaitConfig | None = None
    headers: RequestHeaders | None = None
    proxy: GeonodeProxy | None = None
    webhook: Webhook | None = None

    @model_validator(mode="after")
    def _waits_in_a_browser(self) -> StartBatchBody:
        waits = self.wait_config and self.wait_config.model_dump(exclude_none=True)
        if waits and not (self.render_js or "screenshot" in self.formats):
            raise ValueError("wait_config needs render_js: true")
        return self


class StartedBatch(Model):
    job_id: str
    status: GeonodeStatus
    status_url: str
    accepted_urls: int
    invalid_urls: list[str]


class BatchPageQuery(Query):
    page: int = Field(1, ge=1, le=10**6)
    page_size: int = Field(10, ge=1, le=50)


class BatchListQuery(Query):
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
