"""Lazy access to dataset versions: ``nanorepo.open``; what a run read: the run journal."""

from __future__ import annotations

from nanorepo.access._journal import JournalContents, read_journal, record
from nanorepo.access._open import Dataset, Image, open, open_version

__all__ = ["Dataset", "Image", "JournalContents", "open", "open_version", "read_journal", "record"]
