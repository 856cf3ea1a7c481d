"""The catalog's read queries the service's routers ask (issue 16 item 3).

Routers decide who may see what and shape the answer; what a question means in SQL lives
here, next to the tables (:mod:`nanorepo.catalog.models`), so a query is written once and
the routers hold no ``select``. Each function takes the caller's open ``Session`` and reads
only: it neither checks visibility (the caller has, through :mod:`nanorepo.policy`) nor
commits.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, and_, func, intersect, tuple_, union_all
from sqlalchemy import select as sa_select
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, select

from nanorepo.catalog.models import (
    Dataset,
    File,
    Grant,
    Image,
    ImageKeyValue,
    MutableRevision,
    Post,
    Version,
)

__all__ = [
    "active_post_counts",
    "catalog_answers",
    "count_datasets",
    "count_where",
    "dataset_ids",
    "file_named",
    "files_by_name",
    "first_images",
    "grants_of",
    "image_conditions",
    "image_named",
    "image_page",
    "images_matching",
    "images_of_versions",
    "latest_images_by_technique",
    "newest_datasets",
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


def images_of_versions(s: Session, version_ids: Sequence[int | None]) -> Sequence[Image]:
    """Every image of the given versions."""
    return s.exec(select(Image).where(col(Image.version_id).in_(list(version_ids)))).all()


def active_post_counts(s: Session, thread_ids: Sequence[int]) -> dict[int, int]:
    """How many posts of each thread are active (not removed); threads without any are
    absent."""
    if not thread_ids:
        return {}
    rows = s.exec(
        select(Post.thread_id, func.count())
        .where(col(Post.thread_id).in_(list(thread_ids)), Post.state == "active")
        .group_by(col(Post.thread_id))
    ).all()
    return {tid: int(n) for tid, n in rows}


def count_datasets(s: Session, where: Any) -> int:
    """How many datasets match ``where`` (a visibility clause of :mod:`nanorepo.policy`)."""
    return int(s.exec(select(func.count()).select_from(Dataset).where(where)).one())


def latest_images_by_technique(s: Session, where: Any) -> list[tuple[str | None, int, int]]:
    """``(technique, images, bytes)`` over the latest version of each dataset matching
    ``where``."""
    latest = (
        select(Image.technique, func.count(), func.coalesce(func.sum(Image.size_bytes), 0))
        .join(Version, col(Version.id) == col(Image.version_id))
        .join(Dataset, col(Dataset.id) == col(Version.dataset_id))
        .where(where, col(Version.number) == col(Dataset.latest_version))
        .group_by(col(Image.technique))
    )
    return [(t, int(n), int(size)) for t, n, size in s.exec(latest).all()]


def newest_datasets(s: Session, where: Any, limit: int) -> list[Dataset]:
    """The ``limit`` most recently created datasets matching ``where``, newest first."""
    return list(
        s.exec(
            select(Dataset)
            .where(where)
            .order_by(col(Dataset.created).desc(), col(Dataset.id).desc())
            .limit(limit)
        ).all()
    )


def catalog_answers(s: Session) -> None:
    """Ask the catalog the cheapest question there is (a health check): raises if the
    database does not answer."""
    s.exec(select(Dataset.id).limit(1)).all()


def dataset_ids(s: Session, *where: Any) -> list[int]:
    """Ids of the datasets matching every clause of ``where``."""
    return [i for i in s.exec(select(Dataset.id).where(*where)).all() if i is not None]


#: How many images (the first by name) of a version are considered for its picture.
_PICTURE_CANDIDATES = 16


def first_images(s: Session, rows: list[Dataset]) -> dict[int, str]:
    """Dataset id -> the image of its latest version to show beside it: of the first
    :data:`_PICTURE_CANDIDATES` images by name, the largest (the most finely sampled view:
    S-NANO1's STED image, not the confocal one of the same field, which sorts first), for
    one page in two queries (each version's candidates are a range of the (version_id,
    name) unique index, however many images it holds)."""
    ids = [d.id for d in rows if d.id is not None]
    if not ids:
        return {}
    latest = s.exec(
        select(Version.id, Version.dataset_id)
        .join(Dataset, col(Dataset.id) == col(Version.dataset_id))
        .where(col(Version.dataset_id).in_(ids), col(Version.number) == col(Dataset.latest_version))
    ).all()
    dataset_of = {int(v): int(d) for v, d in latest if v is not None}
    if not dataset_of:
        return {}
    parts = []
    for vid in dataset_of:
        first = (
            select(Image.version_id, Image.name, Image.size_bytes)
            .where(Image.version_id == vid)
            .order_by(col(Image.name))
            .limit(_PICTURE_CANDIDATES)
            .subquery()
        )
        parts.append(sa_select(first.c.version_id, first.c.name, first.c.size_bytes))
    best: dict[int, tuple[int, str]] = {}
    for vid, name, size in s.connection().execute(union_all(*parts)).all():
        d = dataset_of[int(vid)]
        key = (-int(size or 0), str(name))
        if d not in best or key < best[d]:
            best[d] = key
    return {d: name for d, (_, name) in best.items()}


def count_where(s: Session, table: Any, *where: ColumnElement[bool]) -> int:
    """How many rows of ``table`` match every clause of ``where``."""
    return int(s.exec(select(func.count()).select_from(table).where(*where)).one())


def files_by_name(s: Session, where: list[ColumnElement[bool]], limit: int) -> Sequence[File]:
    """Up to ``limit`` stored files matching ``where``, by name (keyset pages)."""
    return s.exec(select(File).where(and_(*where)).order_by(col(File.name)).limit(limit)).all()


def images_matching(version_id: int | None, filters: dict[str, list[str]]) -> ColumnElement[bool]:
    """Images of the version that match every key's filter (one of its values, compared
    case-insensitively).

    Each key is an index range on ``(version_id, key, value_lower)`` per value, read from
    the index alone; several keys are intersected there too, so only the images that match
    them all are looked up, whichever key is the broadest. ``lower()`` of the given values
    is the database's, the same function that filled ``value_lower``.
    """
    sets = []
    for key, values in filters.items():
        kv = aliased(ImageKeyValue)
        sets.append(
            select(kv.image_id).where(
                kv.version_id == version_id,
                kv.key == key,
                col(kv.value_lower).in_([func.lower(v) for v in values]),
            )
        )
    ids = sets[0] if len(sets) == 1 else intersect(*sets)
    return col(Image.id).in_(ids)


def image_conditions(
    version_id: int | None, filters: dict[str, list[str]], name_part: str
) -> list[ColumnElement[bool]]:
    """The conditions of a version's image table: key/value ``filters`` and a substring
    of the name."""
    # With filters, the side table's index names the version's matching images and each is
    # one primary-key lookup; a condition on image.version_id besides (redundant: the
    # filters hold the version) would make SQLite walk every image of the version instead.
    conds: list[ColumnElement[bool]] = [
        images_matching(version_id, filters) if filters else col(Image.version_id) == version_id
    ]
    if name_part:
        conds.append(col(Image.name).icontains(name_part, autoescape=True))
    return conds


def image_page(
    s: Session,
    version_id: int | None,
    filters: dict[str, list[str]],
    name_part: str,
    sort_key: str | None,
    desc: bool,
    after: tuple[str | None, str] | None,
    limit: int,
) -> tuple[list[Any], int | None, Sequence[Image]]:
    """One page of a version's image table: up to ``limit + 1`` rows ``(id, sv, name)``
    sorted on the key/value ``sort_key`` (``None``: the name) then the name, after the
    ``(sort value, name)`` of the previous page's last row; the number of all matches when
    the first page could count them in the same scan (else ``None``); and the page's
    images.

    Sort and cut the page on (id, sort value, name) only, then read the page's rows: the
    sort does not drag every matching row's JSON columns along. On the first page the
    window count (over every match, before LIMIT) gives the total in the same scan; the
    plain (version_id, name) case is left to count on the index (:func:`count_where`).
    """
    by_key = sort_key is not None
    conds = image_conditions(version_id, filters, name_part)
    name_col: ColumnElement[Any] = col(Image.name)  # type: ignore[assignment]
    # An image without the sort key sorts as "" (the key's row is absent, or its JSON
    # value is null): one primary-key lookup per matching image.
    by = aliased(ImageKeyValue)
    sort_expr: ColumnElement[Any] = func.coalesce(by.value, "") if by_key else name_col
    page_conds = list(conds)
    if after is not None:
        bound = (
            tuple_(sort_expr, col(Image.name)) if by_key else col(Image.name),
            tuple_(after[0] or "", after[1]) if by_key else after[1],
        )
        page_conds.append(bound[0] < bound[1] if desc else bound[0] > bound[1])
    order_by = [sort_expr.desc(), name_col.desc()] if desc else [sort_expr, name_col]
    window = after is None and bool(filters or name_part or by_key)
    cols = [col(Image.id).label("id"), sort_expr.label("sv"), name_col.label("name")]
    if window:
        cols.append(func.count().over().label("n"))
    ranked = select(*cols)
    if by_key:
        ranked = ranked.outerjoin(
            by, and_(col(by.image_id) == col(Image.id), col(by.key) == sort_key)
        )
    page = ranked.where(*page_conds).order_by(*order_by).limit(limit + 1).subquery()
    outer = [page.c.sv.desc(), page.c.name.desc()] if desc else [page.c.sv, page.c.name]
    head = list(s.connection().execute(sa_select(page).order_by(*outer)).all())
    total = (int(head[0].n) if head else 0) if window else None
    ids = [h.id for h in head[:limit]]
    images = s.exec(select(Image).where(col(Image.id).in_(ids))).all()
    return head, total, images
