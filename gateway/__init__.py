"""The gateway: a Starlette app that speaks hosted scraping APIs and drives scrapyd nodes."""
