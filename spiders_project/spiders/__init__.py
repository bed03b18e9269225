"""Spiders deployed with the platform."""
