"""Scrapy settings of the platform's built-in project."""

import os

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

# Page records: content, metadata, change hash, then the record itself (spiders_project/pipelines.py).
ITEM_PIPELINES = {
    "spiders_project.pipelines.PageContentPipeline": 100,
    "spiders_project.pipelines.PageMetadataPipeline": 200,
    "spiders_project.pipelines.PageChangePipeline": 250,
    "spiders_project.pipelines.PageRecordPipeline": 300,
}

# JavaScript rendering, for batches that ask for it: the system's Chromium driven by Playwright
# (scrapy-playwright). `make browser` installs it from the OS packages; CHROMIUM_PATH moves it.
PLAYWRIGHT_BROWSER_TYPE = "chromium"
PLAYWRIGHT_LAUNCH_OPTIONS = {
    "executable_path": os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"),
    "headless": True,
    "args": [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        # Chromium never sends loopback traffic through a proxy unless told to; a batch's proxy
        # applies to every address it may reach, an operator's allowlisted loopback hosts too.
        "--proxy-bypass-list=<-loopback>",
        # The browser's traffic leaves only through its proxy, the guard (guard_proxy.py): no
        # UDP of its own (WebRTC, QUIC).
        "--force-webrtc-ip-handling-policy=disable_non_proxied_udp",
        "--webrtc-ip-handling-policy=disable_non_proxied_udp",
        "--disable-quic",
    ],
}
# Concurrent browser pages of one spider process.
BROWSER_PAGES = 4
