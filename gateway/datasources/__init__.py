"""Datasources: websites recrawled on a cadence, with what changed between crawls.

Owns the ``datasources``, ``datasource_crawls`` and ``datasource_pages`` tables.
"""
