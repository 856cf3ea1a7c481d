"""The ``nanorepo`` command line interface."""

from __future__ import annotations

from nanorepo.cli._main import cli, main

__all__ = ["cli", "main"]
