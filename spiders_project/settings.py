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
