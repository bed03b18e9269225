"""Jobs: one run of one spider on one node: starting, reading and cancelling them, keeping them in
step with their nodes, and taking in their item feeds.

Owns the ``jobs`` and ``items`` tables.
"""
