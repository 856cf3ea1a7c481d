"""Shared pytest fixtures for nanorepo (registered as the ``nanorepo`` pytest plugin)."""
