"""Scrapy settings of the platform's built-in project."""

BOT_NAME = "spiders_project"

SPIDER_MODULES = ["spiders_project.spiders"]
NEWSPIDER_MODULE = "spiders_project.spiders"

ROBOTSTXT_OBEY = True
USER_AGENT = "spider-platform (+https://github.com/spider-platform)"

# A job is one process; Scrapy's defaults are tuned for long crawls, these for short jobs too.
CONCURRENT_REQUESTS = 16
CONCURRENT_ITEMS = 1
TELNETCONSOLE_ENABLED = False

FEED_EXPORT_ENCODING = "utf-8"

# Batch page records: content, then metadata, then the record itself (spiders_project/pipelines.py).
ITEM_PIPELINES = {
    "spiders_project.pipelines.PageContentPipeline": 100,
    "spiders_project.pipelines.PageMetadataPipeline": 200,
    "spiders_project.pipelines.PageRecordPipeline": 300,
}
