"""The platform's built-in Scrapy project: example and built-in spiders, items and pipelines."""
