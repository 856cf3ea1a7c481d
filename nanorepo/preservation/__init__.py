"""Preservation: fixity verification of stored versions (and later, repair and export)."""

from __future__ import annotations

from nanorepo.preservation._verify import Problem, VerifyReport, verify_version

__all__ = ["Problem", "VerifyReport", "verify_version"]
