"""Lazy access to dataset versions: ``nanorepo.open``."""

from __future__ import annotations

from nanorepo.access._open import Dataset, Image, open, open_version

__all__ = ["Dataset", "Image", "open", "open_version"]
