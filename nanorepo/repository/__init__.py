"""The repository facade shared by the CLI and the service."""

from __future__ import annotations

import nanorepo._server_extra  # noqa: F401  (a clear error if the extra is missing)
from nanorepo.repository._repository import Repository, catalog_exists, no_repository

__all__ = ["Repository", "catalog_exists", "no_repository"]
