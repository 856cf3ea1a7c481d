"""Imported first by the parts that need the ``[server]`` extra (the catalog, the repository,
the service): importing them without it raises :class:`~nanorepo.errors.MissingExtra`."""

from __future__ import annotations

from nanorepo._extras import require

require(
    "nanorepo's catalog and service (nanorepo.catalog, .repository, .service)",
    "server",
    "sqlalchemy",
    "sqlmodel",
    "alembic",
)
