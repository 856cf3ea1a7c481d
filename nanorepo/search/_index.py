"""Full-text search with field filters over datasets.

Each dataset has one search document (title, description, keywords, the sealed REMBI
metadata of its latest version, image names and key/values, and the titles, tags and
current post texts of its annotation threads that are not deleted) indexed by SQLite FTS5 or
PostgreSQL full-text search, and a set of normalised field values (technique, organism,
fluorophore, ...) used for ``field:value`` filters and facet counts.

Query syntax: words are matched full-text (all must match, prefix match on the last
letters of each word is not implied); ``field:value`` and ``field:"two words"`` filter
exactly (case-insensitive). Words are quoted before they reach FTS5 so no user input is
ever parsed as FTS syntax.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Float, Integer, delete, func, text
from sqlmodel import Session, col, select

from nanorepo.catalog.models import (
    Dataset,
    DatasetField,
    Image,
    Post,
    SearchDoc,
    Thread,
    Version,
)
from nanorepo.errors import InvalidInput

__all__ = ["FACET_FIELDS", "FIELDS", "Query", "facets", "index_dataset", "parse_query", "search"]

#: Filterable fields and where their values come from.
FIELDS = (
    "accession",
    "access",
    "author",
    "cell_line",
    "fluorophore",
    "instrument",
    "keyword",
    "license",
    "organism",
    "target",
    "technique",
)
_WORD = re.compile(r"\w+", re.UNICODE)


@dataclass(frozen=True)
class Query:
    """A parsed query: full-text words and exact field filters."""

    words: tuple[str, ...] = ()
    filters: tuple[tuple[str, str], ...] = field(default_factory=tuple)


def parse_query(q: str) -> Query:
    """Parse ``'nuclear pore technique:STED organism:"Homo sapiens"'``."""
    try:
        tokens = shlex.split(q or "")
    except ValueError:  # a stray quote in a search box: take the words as they are
        tokens = (q or "").replace('"', " ").replace("'", " ").split()
    words: list[str] = []
    filters: list[tuple[str, str]] = []
    for tok in tokens:
        name, sep, value = tok.partition(":")
        if sep and name.lower() in FIELDS and value:
            filters.append((name.lower(), value.strip().lower()))
        elif sep and name and name.isidentifier() and value and not name.startswith("http"):
            raise InvalidInput(
                f"unknown search field {name!r}",
                hint="fields: " + ", ".join(FIELDS) + "; quote text with a colon",
            )
        else:
            words.extend(_WORD.findall(tok))
    return Query(tuple(words), tuple(filters))


def _strings(value: Any) -> Iterable[str]:
    if isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)
    elif isinstance(value, str):
        yield value
    elif isinstance(value, int | float) and not isinstance(value, bool):
        yield str(value)


def _thread_text(s: Session, dataset_id: int) -> list[str]:
    """Titles, tags and current post texts of a dataset's threads, deleted ones left out.

    Post text is the author's Markdown: its words are what people search for, and markup
    characters are not words to the full-text tokenisers.
    """
    threads = s.exec(
        select(Thread)
        .where(Thread.dataset_id == dataset_id, Thread.state == "active")
        .order_by(col(Thread.id))
    ).all()
    parts: list[str] = []
    for t in threads:
        parts.append(t.title)
        parts += [str(tag) for tag in t.tags or []]
    bodies = s.exec(
        select(Post.body)
        .join(Thread, col(Thread.id) == col(Post.thread_id))
        .where(Thread.dataset_id == dataset_id, Thread.state == "active", Post.state == "active")
        .order_by(col(Post.id))
    ).all()
    parts += list(bodies)
    return parts


def index_dataset(s: Session, dataset_id: int) -> None:
    """(Re)build the search document and field values of one dataset. Caller commits.

    Call it again after annotation writes: thread text is part of the document.
    """
    ds = s.get(Dataset, dataset_id)
    if ds is None:
        return
    v = s.exec(
        select(Version).where(Version.dataset_id == ds.id, Version.number == ds.latest_version)
    ).one()
    record = json.loads(v.metadata_json)
    images = s.exec(select(Image).where(Image.version_id == v.id)).all()
    mut = ds.mutable or {}

    values: dict[str, set[str]] = {f: set() for f in FIELDS}
    values["accession"].add(ds.accession)
    values["access"].add(ds.access)
    if mut.get("license"):
        values["license"].add(str(mut["license"]))
    for kw in mut.get("keywords") or []:
        values["keyword"].add(str(kw))
    bio = record.get("biosample") or {}
    if bio.get("organism"):
        values["organism"].add(str(bio["organism"]))
    if bio.get("cell_line"):
        values["cell_line"].add(str(bio["cell_line"]))
    for a in (record.get("study") or {}).get("authors") or []:
        if isinstance(a, dict) and a.get("name"):
            values["author"].add(str(a["name"]))
    for lab in (record.get("specimen") or {}).get("labels") or []:
        if isinstance(lab, dict):
            if lab.get("fluorophore"):
                values["fluorophore"].add(str(lab["fluorophore"]))
            if lab.get("target"):
                values["target"].add(str(lab["target"]))
    for im in images:
        if im.technique:
            values["technique"].add(im.technique)
        for ch in im.channels or []:
            if ch.get("fluorophore"):
                values["fluorophore"].add(str(ch["fluorophore"]))
        if im.key_values.get("cell_line"):
            values["cell_line"].add(im.key_values["cell_line"])
    for entry in (record.get("images") or {}).values():
        acq = entry.get("acquisition") or {}
        if acq.get("technique"):
            values["technique"].add(str(acq["technique"]))
        inst = acq.get("instrument")
        if isinstance(inst, dict):
            inst = " ".join(str(x) for x in inst.values() if isinstance(x, str))
        if isinstance(inst, str) and inst:
            values["instrument"].add(inst)

    parts = [ds.accession, ds.title, str(mut.get("description") or "")]
    parts += [str(k) for k in mut.get("keywords") or []]
    parts += list(_strings({k: v for k, v in record.items() if k != "images"}))
    for im in images:
        parts.append(im.name)
        parts += list(_strings(im.key_values))
        parts += [str(c.get("name", "")) for c in im.channels or []]
    for vals in values.values():
        parts += list(vals)
    parts += _thread_text(s, dataset_id)
    doc = "\n".join(p for p in parts if p)

    existing = s.get(SearchDoc, dataset_id)
    if existing is None:
        s.add(SearchDoc(dataset_id=dataset_id, text=doc))
    else:
        existing.text = doc
        s.add(existing)
    s.execute(delete(DatasetField).where(col(DatasetField.dataset_id) == dataset_id))
    for f, vals in values.items():
        for val in sorted(vals):
            s.add(
                DatasetField(
                    dataset_id=dataset_id,
                    field=f,
                    value=val.strip().lower()[:255],
                    display=val.strip()[:255],
                )
            )
    s.flush()


def _fts_match(words: Sequence[str]) -> str:
    # Every word quoted (FTS5 string syntax doubles inner quotes): never parsed as operators.
    return " AND ".join('"' + w.replace('"', '""') + '"' for w in words)


def _matching(
    s: Session, query: Query, *, include_embargoed: bool, visible_ids: Iterable[int] | None
) -> tuple[Any, list[Any]]:
    """The statement selecting the ids of matching datasets, and its best-first order."""
    stmt = select(Dataset.id).where(Dataset.state == "active")
    if not include_embargoed:
        stmt = stmt.where(Dataset.access == "public")
    if visible_ids is not None:
        stmt = stmt.where(
            (Dataset.access == "public") | Dataset.id.in_(list(visible_ids))  # type: ignore[union-attr]
        )
    for f, value in query.filters:
        sub = select(DatasetField.dataset_id).where(
            DatasetField.field == f, DatasetField.value == value
        )
        stmt = stmt.where(Dataset.id.in_(sub))  # type: ignore[union-attr]
    order: list[Any] = [Dataset.id]
    dialect = s.get_bind().dialect.name
    if query.words:
        if dialect == "sqlite":
            fts = (
                text(
                    "SELECT rowid AS id, bm25(search_fts) AS rank FROM search_fts "
                    "WHERE search_fts MATCH :m"
                )
                .bindparams(m=_fts_match(query.words))
                .columns(id=Integer, rank=Float)
                .subquery()
            )
            stmt = stmt.join(fts, fts.c.id == col(Dataset.id))
            order = [fts.c.rank.asc(), Dataset.id]  # bm25: lower is better
        else:
            tsq = func.plainto_tsquery("simple", " ".join(query.words))
            tsv = func.to_tsvector("simple", SearchDoc.text)
            stmt = stmt.join(SearchDoc, col(SearchDoc.dataset_id) == col(Dataset.id)).where(
                tsv.op("@@")(tsq)
            )
            order = [func.ts_rank(tsv, tsq).desc(), Dataset.id]
    return stmt, order


def search(
    s: Session,
    q: str,
    *,
    offset: int = 0,
    limit: int = 50,
    include_embargoed: bool = True,
    visible_ids: Iterable[int] | None = None,
) -> tuple[list[Dataset], int]:
    """Datasets matching ``q``, best first (full-text rank, then accession number).

    ``visible_ids`` restricts results to datasets the caller may see; embargoed datasets
    outside it never appear, in results or in the total.
    """
    stmt, order = _matching(
        s, parse_query(q), include_embargoed=include_embargoed, visible_ids=visible_ids
    )
    total = s.exec(select(func.count()).select_from(stmt.subquery())).one()
    ids = s.exec(stmt.order_by(*order).offset(offset).limit(limit)).all()
    by_id = {d.id: d for d in s.exec(select(Dataset).where(Dataset.id.in_(ids))).all()}  # type: ignore[union-attr]
    return [by_id[i] for i in ids if i in by_id], int(total)


#: Fields offered as facets (the Lab extension's filters), in display order.
FACET_FIELDS = ("technique", "organism", "fluorophore", "license", "access")


def facets(
    s: Session,
    q: str,
    *,
    fields: Sequence[str] = FACET_FIELDS,
    limit: int = 20,
    visible_ids: Iterable[int] | None = None,
) -> dict[str, list[tuple[str, str, int]]]:
    """Counts of datasets matching ``q`` per value of each facet field, most first.

    Counted over the same visible set as :func:`search`, so a facet count never includes
    a dataset the caller cannot see. Each entry is ``(value, display, count)``; ``value``
    is what a ``field:value`` filter takes.
    """
    unknown = [f for f in fields if f not in FIELDS]
    if unknown:
        raise InvalidInput(f"no facet {unknown[0]!r}", hint="facets: " + ", ".join(FIELDS))
    stmt, _ = _matching(s, parse_query(q), include_embargoed=True, visible_ids=visible_ids)
    ids = stmt.subquery()
    n = func.count(func.distinct(DatasetField.dataset_id))
    rows = s.exec(
        select(DatasetField.field, DatasetField.value, func.min(DatasetField.display), n)
        .where(col(DatasetField.field).in_(list(fields)))
        .where(col(DatasetField.dataset_id).in_(select(ids.c.id)))
        .group_by(col(DatasetField.field), col(DatasetField.value))
    ).all()
    out: dict[str, list[tuple[str, str, int]]] = {f: [] for f in fields}
    for field_name, value, display, count in rows:
        out[field_name].append((value, display, int(count)))
    for f in out:
        out[f] = sorted(out[f], key=lambda e: (-e[2], e[1]))[:limit]
    return out
