"""The repository facade shared by the CLI and the service."""

from __future__ import annotations

from nanorepo.repository._repository import Repository

__all__ = ["Repository"]
