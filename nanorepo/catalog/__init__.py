"""The catalog: datasets, versions, images, files, metadata, users and grants.

SQLModel tables live in :mod:`nanorepo.catalog.models`; Alembic migrations in
``migrations/`` are applied automatically when a :class:`Catalog` opens.
"""

from __future__ import annotations

import nanorepo._server_extra  # noqa: F401  (a clear error if the extra is missing)
from nanorepo.catalog import models
from nanorepo.catalog._catalog import MUTABLE_FIELDS, Catalog, ImageRecord, VersionRecord
from nanorepo.catalog._db import make_engine, migrate

__all__ = [
    "MUTABLE_FIELDS",
    "Catalog",
    "ImageRecord",
    "VersionRecord",
    "make_engine",
    "migrate",
    "models",
]
