"""Batches: URL lists (and site crawls) scraped into page records by the built-in spiders.

Owns the ``batches``, ``batch_pages``, ``batch_records`` and ``batch_screenshots`` tables.
"""
