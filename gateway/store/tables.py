"""The gateway's tables. Changes to them come with a migration under ``migrations/versions``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.types import TypeDecorator

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out, whatever the database keeps."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored: give a time zone")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if isinstance(value, datetime) else None


tenants = Table(
    "tenants",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("tenant_id", String(36), ForeignKey("tenants.id"), nullable=False, index=True),
    Column("name", String(200), nullable=False),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("key_prefix", String(16), nullable=False),
    Column("is_admin", Boolean, nullable=False),
    Column("rate_limit_per_minute", Integer, nullable=True),
    Column("credits_limit", BigInteger, nullable=True),
    Column("credits_used", BigInteger, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("revoked_at", UTCDateTime, nullable=True),
)

eggs = Table(
    "eggs",
    metadata,
    Column("project", String(200), primary_key=True),
    Column("version", String(200), primary_key=True),
    Column("sha256", String(64), nullable=False),
    Column("size", BigInteger, nullable=False),
    # Module path of each spider found in the egg, by spider name.
    Column("spider_paths", JSON, nullable=False),
    Column("uploaded_at", UTCDateTime, nullable=False),
)

spiders = Table(
    "spiders",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("project", String(200), nullable=False),
    Column("name", String(200), nullable=False),
    Column("version", String(200), nullable=True),
    Column("repo_path", String(500), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    UniqueConstraint("project", "name"),
)

batches = Table(
    "batches",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("tenant_id", String(36), ForeignKey("tenants.id"), nullable=False),
    Column("api_key_id", String(36), ForeignKey("api_keys.id"), nullable=True),
    # Which API started it (geonode, firecrawl, scrapeless, opencx): status pages render in its shape.
    Column("dialect", String(20), nullable=False),
    # "urls": the pages were given; "crawl": the site spider discovers them within ``crawl``;
    # "scrape": one page, answered synchronously (Firecrawl's /v2/scrape).
    Column("kind", String(10), nullable=False, server_default="urls"),
    Column("crawl", JSON, nullable=True),
    Column("status", String(16), nullable=False),
    # What every page of the batch is scraped with: formats, main content only, tags, headers, timeout.
    Column("options", JSON, nullable=False),
    # The pages given; for a crawl, the pages found so far (recorded, and waiting in its spider's
    # frontier as the spider's last record said).
    Column("total_urls", Integer, nullable=False),
    Column("invalid_urls", JSON, nullable=False),
    # Credits held for the batch's pages at the start; those not fetched are given back at the end.
    Column("credits_reserved", Integer, nullable=False),
    # Jobs started again for pages whose spider process died with them.
    Column("restarts", Integer, nullable=False),
    Column("credits_used", Integer, nullable=False),
    # Shown once to the batch's spider processes, which read their inputs with it.
    Column("inputs_token", String(64), nullable=False),
    Column("idempotency_key", String(200), nullable=True),
    # A scrape's page and options, hashed: a later scrape asking for a copy no older than its
    # maxAge finds it by this (null: not to be served to another scrape).
    Column("cache_key", String(64), nullable=True),
    Column("error", Text, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("started_at", UTCDateTime, nullable=True),
    Column("completed_at", UTCDateTime, nullable=True),
    Column("expires_at", UTCDateTime, nullable=False),
    Index(None, "tenant_id", "created_at"),
    Index(None, "status"),
    Index(None, "expires_at"),
    Index(None, "tenant_id", "cache_key"),
    UniqueConstraint("tenant_id", "idempotency_key"),
)

batch_pages = Table(
    "batch_pages",
    metadata,
    Column("batch_id", String(36), ForeignKey("batches.id", ondelete="CASCADE"), primary_key=True),
    Column("input_index", Integer, primary_key=True),
    Column("url", Text, nullable=False),
    # pending, completed, failed or cancelled
    Column("status", String(16), nullable=False),
    Column("status_code", Integer, nullable=True),
    Column("error_code", String(40), nullable=True),
    Column("error_message", Text, nullable=True),
    Column("duration_ms", Integer, nullable=True),
    Column("retry_count", Integer, nullable=True),
    # Site crawls that track changes: the hash of the page's main content.
    Column("content_hash", String(64), nullable=True),
    # Size of the page's record (in batch_records), so a status page can stop before a limit.
    Column("record_bytes", Integer, nullable=False),
    # When a batch spider took the page to fetch; the batch's processes share its pages this way.
    Column("claimed_at", UTCDateTime, nullable=True),
    Column("claimed_by", String(64), nullable=True),
    Column("finished_at", UTCDateTime, nullable=True),
    Index(None, "batch_id", "status"),
)

# Apart from batch_pages, so counting and paging pages never reads through the records.
batch_records = Table(
    "batch_records",
    metadata,
    Column("batch_id", String(36), ForeignKey("batches.id", ondelete="CASCADE"), primary_key=True),
    Column("input_index", Integer, primary_key=True),
    # The page record (markdown, html, rawHtml, links, metadata) as one JSON document.
    Column("record", Text, nullable=False),
)

# PNG screenshots of a batch's rendered pages, served to the batch's owner until it expires.
batch_screenshots = Table(
    "batch_screenshots",
    metadata,
    Column("batch_id", String(36), ForeignKey("batches.id", ondelete="CASCADE"), primary_key=True),
    Column("input_index", Integer, primary_key=True),
    # 0: the page's screenshot format; 1, 2, ...: its screenshot actions, in order.
    Column("position", Integer, primary_key=True, server_default="0"),
    # A PNG, or a JPEG for a screenshot with a quality.
    Column("png", LargeBinary, nullable=False),
)

# A website kept in sync: crawled once, then recrawled by hand or every ``crawl_interval_hours``.
datasources = Table(
    "datasources",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("tenant_id", String(36), ForeignKey("tenants.id"), nullable=False),
    Column("api_key_id", String(36), ForeignKey("api_keys.id"), nullable=True),
    Column("url", Text, nullable=False),
    Column("display_name", String(200), nullable=False),
    # active or paused (a paused datasource is not recrawled on its own)
    Column("status", String(16), nullable=False),
    Column("page_limit", Integer, nullable=False),
    Column("include_paths", JSON, nullable=False),
    Column("exclude_paths", JSON, nullable=False),
    Column("crawl_interval_hours", Float, nullable=True),
    # When the scheduler starts its next crawl; moved on by whoever starts it, so it fires once.
    Column("next_crawl_at", UTCDateTime, nullable=True),
    Column("error_message", Text, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Index(None, "tenant_id", "created_at"),
    Index(None, "next_crawl_at"),
)

# Each crawl of a datasource, with its change counts once it is over.
datasource_crawls = Table(
    "datasource_crawls",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("datasource_id", String(36), ForeignKey("datasources.id", ondelete="CASCADE"), nullable=False),
    # The site crawl (a batch of kind "crawl") that fetches its pages; gone once that expires.
    Column("batch_id", String(36), ForeignKey("batches.id", ondelete="SET NULL"), nullable=True),
    # pending, scraping, completed, failed or cancelled
    Column("status", String(16), nullable=False),
    Column("total_pages", Integer, nullable=True),
    Column("completed_pages", Integer, nullable=False),
    Column("new_pages", Integer, nullable=False),
    Column("updated_pages", Integer, nullable=False),
    Column("removed_pages", Integer, nullable=False),
    Column("unchanged_pages", Integer, nullable=False),
    Column("error_message", Text, nullable=True),
    Column("started_at", UTCDateTime, nullable=True),
    Column("completed_at", UTCDateTime, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Index(None, "datasource_id", "created_at"),
    Index(None, "status"),
)

# A tenant's last scrape of each page under each change-tracking tag (Firecrawl's changeTracking):
# what the next scrape of the page with that tag compares with.
page_versions = Table(
    "page_versions",
    metadata,
    Column("tenant_id", String(36), ForeignKey("tenants.id"), primary_key=True),
    Column("tag", String(200), primary_key=True),
    # sha256 of the URL: URLs run to 2,048 characters, too long for an index on every store.
    Column("url_hash", String(64), primary_key=True),
    Column("content_hash", String(64), nullable=False),
    # The page's markdown as that scrape returned it, for a git-diff.
    Column("markdown", Text, nullable=False),
    Column("scraped_at", UTCDateTime, nullable=False),
)

# A datasource's pages as its latest crawl left them: content, validators, links, and what changed.
datasource_pages = Table(
    "datasource_pages",
    metadata,
    Column("datasource_id", String(36), ForeignKey("datasources.id", ondelete="CASCADE"), primary_key=True),
    Column("url", Text, primary_key=True),
    # new, updated, unchanged, removed, or failed (kept as it was: the page did not answer this time)
    Column("change", String(16), nullable=False),
    Column("content_hash", String(64), nullable=True),
    Column("etag", Text, nullable=True),
    Column("last_modified", Text, nullable=True),
    Column("links", JSON, nullable=False),
    Column("status_code", Integer, nullable=True),
    Column("error_message", Text, nullable=True),
    Column("title", Text, nullable=True),
    # The page record (markdown, metadata) of its last download.
    Column("record", Text, nullable=True),
    Column("crawl_id", String(36), nullable=False),
    Column("first_seen_at", UTCDateTime, nullable=False),
    Column("changed_at", UTCDateTime, nullable=False),
    Column("crawled_at", UTCDateTime, nullable=False),
    Column("removed_at", UTCDateTime, nullable=True),
    Index(None, "datasource_id", "change"),
)

jobs = Table(
    "jobs",
    metadata,
    # The id on the store and on the node (scrapyd's jobid, the feed's and the log's name).
    Column("id", String(64), primary_key=True),
    # The id the job's tenant knows it by, unique per tenant. A client may choose it (scrapyd's
    # ``jobid``, a schedule run's id); otherwise it is ``id``.
    Column("public_id", String(64), nullable=False),
    Column("tenant_id", String(36), ForeignKey("tenants.id"), nullable=False),
    Column("api_key_id", String(36), ForeignKey("api_keys.id"), nullable=True),
    Column("spider_id", String(36), nullable=False),
    Column("project", String(200), nullable=False),
    Column("spider_name", String(200), nullable=False),
    Column("version", String(200), nullable=True),
    Column("arguments", JSON, nullable=False),
    Column("settings", JSON, nullable=False),
    Column("priority", Float, nullable=False),
    Column("node", String(200), nullable=True),
    # When the job was last sent to its node's queue; None while it waits for a node.
    Column("dispatched_at", UTCDateTime, nullable=True),
    Column("status", String(16), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("started_at", UTCDateTime, nullable=True),
    Column("finished_at", UTCDateTime, nullable=True),
    Column("items_scraped", BigInteger, nullable=False),
    Column("feed_offset", BigInteger, nullable=False),
    Column("pid", Integer, nullable=True),
    Column("close_reason", String(100), nullable=True),
    Column("exit_code", Integer, nullable=True),
    Column("error", Text, nullable=True),
    Column("cancel_requested_at", UTCDateTime, nullable=True),
    # When the graceful signal, then the forced one, reached a cancelled job's process.
    Column("term_sent_at", UTCDateTime, nullable=True),
    Column("kill_sent_at", UTCDateTime, nullable=True),
    # True once the process is gone and its feed fully ingested: nothing about the job changes after.
    Column("settled", Boolean, nullable=False),
    # Set for the jobs that scrape a batch's pages; their feed fills batch_pages, not items.
    Column("batch_id", String(36), ForeignKey("batches.id", ondelete="CASCADE"), nullable=True),
    # The schedule that started the job; kept after the schedule is deleted, to find its jobs.
    Column("schedule_id", String(36), nullable=True),
    Index(None, "tenant_id", "created_at"),
    Index(None, "tenant_id", "public_id", unique=True),
    Index(None, "settled"),
    Index(None, "batch_id"),
    Index(None, "schedule_id"),
)

items = Table(
    "items",
    metadata,
    Column("job_id", String(64), ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True),
    Column("seq", BigInteger, primary_key=True),
    # The item exactly as the feed exported it: one JSON document.
    Column("data", Text, nullable=False),
)

# A cron schedule: starts a spider's job, a batch or a datasource recrawl at each cron time.
schedules = Table(
    "schedules",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("tenant_id", String(36), ForeignKey("tenants.id"), nullable=False),
    # The key the schedule's runs start as: revoking it disables the schedule.
    Column("api_key_id", String(36), ForeignKey("api_keys.id"), nullable=True),
    Column("name", String(200), nullable=False),
    Column("cron", String(200), nullable=False),
    Column("timezone", String(100), nullable=False),
    # spider, batch or datasource
    Column("target", String(16), nullable=False),
    # A spider target, by name: a spider deployed again (under a new id) is still the one meant.
    Column("project", String(200), nullable=True),
    Column("spider_name", String(200), nullable=True),
    Column("spider_id", String(36), nullable=True),
    Column("arguments", JSON, nullable=False),
    # A batch target: the Firecrawl batch scrape body (urls and scrape options) each run starts.
    Column("batch", JSON, nullable=True),
    Column("datasource_id", String(36), nullable=True),
    Column("enabled", Boolean, nullable=False),
    # Why the scheduler disabled it (its spider or datasource is gone, its key was revoked).
    Column("disabled_reason", Text, nullable=True),
    # skip: no run while the previous one is still going; allow: runs may overlap.
    Column("overlap", String(8), nullable=False),
    # The cron time the schedule fires at next; moved on by whoever fires it, so it fires once.
    Column("next_run_at", UTCDateTime, nullable=True),
    Column("last_run_at", UTCDateTime, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Index(None, "tenant_id", "created_at"),
    Index(None, "next_run_at"),
)

# Each time a schedule fired (or was run by hand), and what it started.
schedule_runs = Table(
    "schedule_runs",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("schedule_id", String(36), ForeignKey("schedules.id", ondelete="CASCADE"), nullable=False),
    # cron or manual
    Column("trigger", String(8), nullable=False),
    # The cron time the run is for; one run per cron time, whichever scheduler fires it.
    Column("due_at", UTCDateTime, nullable=True),
    Column("fired_at", UTCDateTime, nullable=False),
    # starting (claimed, target not started yet), started, skipped or failed
    Column("outcome", String(10), nullable=False),
    Column("job_id", String(64), nullable=True),
    Column("batch_id", String(36), nullable=True),
    Column("crawl_id", String(36), nullable=True),
    Column("message", Text, nullable=True),
    UniqueConstraint("schedule_id", "due_at"),
    Index(None, "schedule_id", "fired_at"),
    Index(None, "outcome"),
)

# The key each tenant's webhooks are signed with (HMAC-SHA256 of the body), made on first use.
webhook_secrets = Table(
    "webhook_secrets",
    metadata,
    Column("tenant_id", String(36), ForeignKey("tenants.id"), primary_key=True),
    Column("secret", String(100), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

# Where a resource's events go (a batch's, a crawl's, a job's): what its client asked for.
webhook_subscriptions = Table(
    "webhook_subscriptions",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("tenant_id", String(36), ForeignKey("tenants.id"), nullable=False),
    # The resource's id on the store (events are emitted by it) and the one its tenant knows.
    Column("resource_id", String(64), nullable=False, unique=True),
    Column("public_id", String(64), nullable=False),
    # The event types' prefix ("batch_scrape", "crawl", "job") and the body's shape (firecrawl, platform).
    Column("resource_type", String(32), nullable=False),
    Column("dialect", String(16), nullable=False),
    Column("url", Text, nullable=False),
    Column("headers", JSON, nullable=False),
    Column("metadata", JSON, nullable=False),
    # The events asked for (their names without the prefix); null: every one.
    Column("events", JSON, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    # When the resource's first event (started) and its last (its end) were emitted: nothing comes
    # before the one or after the other.
    Column("started_at", UTCDateTime, nullable=True),
    Column("ended_at", UTCDateTime, nullable=True),
    Index(None, "tenant_id"),
    Index(None, "ended_at"),
)

# The outbox: each event, written with the state change that caused it, and its delivery.
webhook_events = Table(
    "webhook_events",
    metadata,
    # The order events were emitted in: a resource's are delivered in it.
    Column("seq", Integer, primary_key=True, autoincrement=True),
    # The webhookId receivers drop duplicates by.
    Column("id", String(36), nullable=False, unique=True),
    Column("tenant_id", String(36), nullable=False),
    Column(
        "subscription_id",
        String(36),
        ForeignKey("webhook_subscriptions.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("resource_id", String(64), nullable=False),
    # The event's name without its prefix (started, page, completed...) and its full type.
    Column("event", String(32), nullable=False),
    Column("type", String(64), nullable=False),
    # The exact body that is signed and sent, every attempt the same.
    Column("body", Text, nullable=False),
    # pending, delivered or failed
    Column("status", String(10), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", UTCDateTime, nullable=True),
    Column("last_status_code", Integer, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("delivered_at", UTCDateTime, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Index(None, "status", "next_attempt_at"),
    Index(None, "subscription_id", "status", "seq"),
    Index(None, "subscription_id", "status", "event", "seq"),
    Index(None, "tenant_id", "resource_id", "seq"),
    # The sweep of events delivered or failed a week ago.
    Index(None, "created_at"),
)
