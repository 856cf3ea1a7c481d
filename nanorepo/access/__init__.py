"""Lazy access to dataset versions (what ``nanorepo.open`` returns), from storage or over
HTTP through a service client it is given; what a run read: the run journal.

This layer reads; it does not decide where the repository is. :mod:`nanorepo.connection`
(the front door) decides and calls :func:`open_from_storage` or :func:`open_remote`.
"""

from __future__ import annotations

from nanorepo.access._journal import JournalContents, journal_for, read_journal, record
from nanorepo.access._open import (
    Dataset,
    Image,
    open_from_storage,
    open_version,
    pinned,
    read_version,
)
from nanorepo.access._remote import (
    NotOnThisMachine,
    RemoteDataset,
    RemoteImage,
    ServiceClient,
    open_remote,
)

__all__ = [
    "Dataset",
    "Image",
    "JournalContents",
    "NotOnThisMachine",
    "RemoteDataset",
    "RemoteImage",
    "ServiceClient",
    "journal_for",
    "open_from_storage",
    "open_remote",
    "open_version",
    "pinned",
    "read_journal",
    "read_version",
    "record",
]
