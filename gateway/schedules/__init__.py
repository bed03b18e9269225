"""Schedules: cron times that start jobs, batches or recrawls, and the record of each run.

Owns the ``schedules`` and ``schedule_runs`` tables.
"""
