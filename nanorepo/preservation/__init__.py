"""Preservation: fixity verification of stored versions (and later, repair and export)."""

from __future__ import annotations

from nanorepo.preservation._verify import (
    CatalogVersion,
    Problem,
    VerifyReport,
    check_tree,
    verify_version,
)

__all__ = ["CatalogVersion", "Problem", "VerifyReport", "check_tree", "verify_version"]
