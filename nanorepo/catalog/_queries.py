"""The catalog's read queries the service's routers ask (issue 16 item 3).

Routers decide who may see what and shape the answer; what a question means in SQL lives
here, next to the tables (:mod:`nanorepo.catalog.models`), so a query is written once and
the routers hold no ``select``. Each function takes the caller's open ``Session`` and reads
only: it neither checks visibility (the caller has, through :mod:`nanorepo.policy`) nor
commits.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlmodel import Session, col, select

from nanorepo.catalog.models import File, Grant, Image, MutableRevision, Version

__all__ = [
    "file_named",
    "grants_of",
    "image_named",
    "revisions_after",
    "version_numbered",
    "versions_of",
]


def version_numbered(s: Session, dataset_id: int | None, number: int) -> Version | None:
    """Version ``number`` of the dataset, or ``None`` if it has none such."""
    return s.exec(
        select(Version).where(Version.dataset_id == dataset_id, Version.number == number)
    ).first()


def versions_of(s: Session, dataset_id: int | None) -> Sequence[Version]:
    """Every version of the dataset, oldest first."""
    return s.exec(
        select(Version).where(Version.dataset_id == dataset_id).order_by(col(Version.number))
    ).all()


def image_named(s: Session, version_id: int | None, name: str) -> Image | None:
    """The image called ``name`` in the version, or ``None``."""
    return s.exec(select(Image).where(Image.version_id == version_id, Image.name == name)).first()


def file_named(s: Session, version_id: int | None, name: str) -> File | None:
    """The stored file called ``name`` in the version, or ``None``."""
    return s.exec(select(File).where(File.version_id == version_id, File.name == name)).first()


def grants_of(s: Session, dataset_id: int | None) -> Sequence[Grant]:
    """The dataset's access grants, in the order they were given."""
    return s.exec(select(Grant).where(Grant.dataset_id == dataset_id).order_by(col(Grant.id))).all()


def revisions_after(
    s: Session, dataset_id: int | None, after: int, limit: int
) -> Sequence[MutableRevision]:
    """Up to ``limit`` changes of the dataset's mutable metadata whose id follows ``after``,
    oldest first (keyset paging: ask for one more than a page to learn if another follows)."""
    return s.exec(
        select(MutableRevision)
        .where(MutableRevision.dataset_id == dataset_id, col(MutableRevision.id) > after)
        .order_by(col(MutableRevision.id))
        .limit(limit)
    ).all()
