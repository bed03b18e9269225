"""Nodes: the scrapyd daemons jobs run on: their HTTP client, the pool and its pickers, and the
embedded local node.

Owns no table: a node's own state lives on the node.
"""
