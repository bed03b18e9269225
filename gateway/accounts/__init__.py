"""Accounts: tenants, their API keys, credits and rate limits.

Owns the ``tenants`` and ``api_keys`` tables.
"""
