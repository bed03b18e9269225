"""Webhooks: a resource's events (a batch's, a crawl's, a job's) sent to the URL its client gave.

Events are written to an outbox (``outbox.py``) in the transaction of the state change that causes
them, signed with the tenant's secret (``secrets.py``) and delivered by a background loop
(``delivery.py``): at least once, in order per resource, retried with backoff for about a day, to
addresses the platform's address policy allows at connect time.
"""
