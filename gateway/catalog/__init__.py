"""Catalog: what can run: deployed projects (eggs), their spiders, and the built-in project.

Owns the ``eggs`` and ``spiders`` tables.
"""
