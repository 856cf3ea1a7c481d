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

Speed (``benchmarks/bench_search.py``, 10,000 datasets): filters and facet counts read
covering indexes of the field values only (migration 0003); a page is read before its
total is counted, and the count leaves out the BM25 rank; after an annotation write the
dataset's own part of its document is reused, not rebuilt from its images
(``benchmarks/bench_annotations.py``).
"""

from __future__ import annotations

import hashlib
import json
import re
import shlex
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Float, Integer, Text, cast, delete, func, insert, intersect, or_, text
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


def _thread_text(s: Session, dataset_id: int) -> str:
    """Titles, tags and current post texts of a dataset's threads, deleted ones left out.

    Post text is the author's Markdown: its words are what people search for, and markup
    characters are not words to the full-text tokenisers. Every annotation write calls
    this for all of a dataset's threads, so titles and posts are joined by the database
    (``group_concat`` / ``string_agg``), not row by row in Python; tags, a JSON list per
    thread, are read only where there are some.
    """
    active = (col(Thread.dataset_id) == dataset_id, col(Thread.state) == "active")
    titles = s.exec(select(func.aggregate_strings(col(Thread.title), "\n")).where(*active)).one()
    tagged = s.exec(
        select(cast(Thread.tags, Text))
        .where(*active, cast(Thread.tags, Text) != "[]")
        .order_by(col(Thread.id))
    ).all()
    tags = [str(tag) for raw in tagged for tag in json.loads(raw or "[]") or []]
    bodies = s.exec(
        select(func.aggregate_strings(col(Post.body), "\n"))
        .join(Thread, col(Thread.id) == col(Post.thread_id))
        .where(*active, col(Post.state) == "active")
    ).one()
    return "\n".join(p for p in (titles, *tags, bodies) if p)


#: Bookkeeping pseudo-field (never a filter or facet: only :data:`FIELDS` are): one row
#: per dataset whose value is ``<sha256 of what the dataset part was built from>:<its
#: length>``, so a re-index after an annotation write reuses the stored dataset part.
_SOURCE = "_source"
#: Bump when what :func:`_dataset_part` writes changes, so every document is rebuilt.
_FORMAT = 2


def _dataset_part(s: Session, ds: Dataset, version_id: int) -> tuple[str, dict[str, set[str]]]:
    """The dataset's own text (accession, title, mutable metadata, sealed metadata of the
    version, image names and key/values, field values) and its field values."""
    metadata_json = s.exec(select(Version.metadata_json).where(Version.id == version_id)).one()
    record = json.loads(metadata_json)
    # Columns, not Image objects: a version can hold 100,000 images.
    images = s.exec(
        select(Image.name, Image.key_values, Image.channels, Image.technique)
        .where(Image.version_id == version_id)
        .order_by(col(Image.id))
    ).all()
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
    for _name, key_values, channels, technique in images:
        if technique:
            values["technique"].add(technique)
        for ch in channels or []:
            if ch.get("fluorophore"):
                values["fluorophore"].add(str(ch["fluorophore"]))
        if (key_values or {}).get("cell_line"):
            values["cell_line"].add(key_values["cell_line"])
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
    for name, key_values, channels, _technique in images:
        parts.append(name)
        parts += list(_strings(key_values or {}))
        parts += [str(c.get("name", "")) for c in channels or []]
    for vals in values.values():
        parts += list(vals)
    return "\n".join(p for p in parts if p), values


def index_dataset(s: Session, dataset_id: int) -> None:
    """(Re)build the search document and field values of one dataset. Caller commits.

    Call it again after annotation writes: thread text is part of the document.

    The document is the dataset part followed by the thread text. The dataset part
    depends only on the dataset row (accession, title, mutable metadata, access) and its
    latest version (sealed metadata, images: immutable once published); a digest of those
    is kept with the field values, and when it has not changed (an annotation write, the
    common case) the stored dataset part and field values are reused: only the threads
    are read again, and the document is written only if its text changed. For a
    100,000-image version that is ~0.2 s (rewriting its 4 MB full-text entry) instead of
    ~3 s; the thread text still costs time in proportion to the dataset's threads.
    """
    ds = s.get(Dataset, dataset_id)
    if ds is None:
        return
    version_id, metadata_digest = s.exec(
        select(Version.id, Version.metadata_digest).where(
            Version.dataset_id == ds.id, Version.number == ds.latest_version
        )
    ).one()
    source = hashlib.sha256(
        json.dumps(
            [_FORMAT, ds.accession, ds.title, ds.mutable or {}, ds.access, version_id,
             metadata_digest],
            sort_keys=True, default=str,
        ).encode()
    ).hexdigest()  # fmt: skip
    # The document row is locked first (PostgreSQL; SQLite serialises writers anyway), so
    # two annotation writes on one dataset cannot each build a document without the
    # other's thread and leave whichever commits last: the second waits, then reads both.
    existing = s.get(SearchDoc, dataset_id, with_for_update=True)
    stored = s.exec(
        select(DatasetField.value).where(
            DatasetField.dataset_id == dataset_id, DatasetField.field == _SOURCE
        )
    ).first()
    digest, _, length = (stored or "").partition(":")
    if (
        existing is not None
        and digest == source
        and length.isdigit()
        and len(existing.text) >= int(length)
    ):
        base = existing.text[: int(length)]
    else:
        base, values = _dataset_part(s, ds, version_id or 0)
        rows = [
            {"dataset_id": dataset_id, "field": f, "value": val.strip().lower()[:255],
             "display": val.strip()[:255]}
            for f, vals in values.items()
            for val in sorted(vals)
        ]  # fmt: skip
        rows.append(
            {"dataset_id": dataset_id, "field": _SOURCE, "value": f"{source}:{len(base)}",
             "display": ""}
        )  # fmt: skip
        s.exec(delete(DatasetField).where(col(DatasetField.dataset_id) == dataset_id))
        s.exec(insert(DatasetField), params=rows)
    threads = _thread_text(s, dataset_id)
    doc = f"{base}\n{threads}" if base and threads else base or threads
    if existing is None:
        s.add(SearchDoc(dataset_id=dataset_id, text=doc))
    elif existing.text != doc:
        existing.text = doc
        s.add(existing)
    s.flush()


def _fts_match(words: Sequence[str]) -> str:
    # Every word quoted (FTS5 string syntax doubles inner quotes): never parsed as operators.
    return " AND ".join('"' + w.replace('"', '""') + '"' for w in words)


def _matching(
    s: Session,
    query: Query,
    *,
    include_embargoed: bool,
    visible_ids: Iterable[int] | None,
    ranked: bool = True,
) -> tuple[Any, list[Any]]:
    """The statement selecting the ids of matching datasets, and its best-first order.

    ``ranked=False`` leaves the full-text rank out (for counts and facets): BM25 costs a
    look-up per matching document, most of a broad query's time, and only ordering needs it.
    """
    stmt = select(Dataset.id).where(Dataset.state == "active")
    if not include_embargoed:
        stmt = stmt.where(Dataset.access == "public")
    if visible_ids is not None:
        stmt = stmt.where(
            or_(col(Dataset.access) == "public", col(Dataset.id).in_(list(visible_ids)))
        )
    if query.filters:
        # All filters intersected first (each one a range of the covering (field, value,
        # dataset_id) index), so only datasets matching all of them are looked up: with
        # one IN per filter, SQLite fetched every dataset row of the first filter.
        subs = [
            select(DatasetField.dataset_id).where(
                DatasetField.field == f, DatasetField.value == value
            )
            for f, value in query.filters
        ]
        stmt = stmt.where(col(Dataset.id).in_(subs[0] if len(subs) == 1 else intersect(*subs)))
    order: list[Any] = [Dataset.id]
    dialect = s.get_bind().dialect.name
    if query.words:
        if dialect == "sqlite":
            cols = "rowid AS id, bm25(search_fts) AS rank" if ranked else "rowid AS id"
            fts = text(f"SELECT {cols} FROM search_fts WHERE search_fts MATCH :m").bindparams(
                m=_fts_match(query.words)
            )
            sub = (
                fts.columns(id=Integer, rank=Float) if ranked else fts.columns(id=Integer)
            ).subquery()
            stmt = stmt.join(sub, sub.c.id == col(Dataset.id))
            if ranked:
                order = [sub.c.rank.asc(), Dataset.id]  # bm25: lower is better
        else:
            tsq = func.plainto_tsquery("simple", " ".join(query.words))
            tsv = func.to_tsvector("simple", SearchDoc.text)
            stmt = stmt.join(SearchDoc, col(SearchDoc.dataset_id) == col(Dataset.id)).where(
                tsv.op("@@")(tsq)
            )
            if ranked:
                order = [func.ts_rank(tsv, tsq).desc(), Dataset.id]
    return stmt, order


def _count(s: Session, stmt: Any) -> int:
    return int(s.exec(select(func.count()).select_from(stmt.subquery())).one())


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

    The page is read first; the total is counted separately (without the rank, which
    only ordering needs) and only when the page does not already tell it: a short page
    ends the results, so its total is ``offset`` plus its length.
    """
    query = parse_query(q)
    visible = None if visible_ids is None else list(visible_ids)
    stmt, order = _matching(s, query, include_embargoed=include_embargoed, visible_ids=visible)
    ids = list(s.exec(stmt.order_by(*order).offset(offset).limit(limit)).all())
    if len(ids) < limit and (ids or offset == 0):
        total = offset + len(ids)
    else:
        unranked, _ = _matching(
            s, query, include_embargoed=include_embargoed, visible_ids=visible, ranked=False
        )
        total = _count(s, unranked)
    by_id = {d.id: d for d in s.exec(select(Dataset).where(col(Dataset.id).in_(ids))).all()}
    return [by_id[i] for i in ids if i in by_id], total


#: Fields offered as facets (the Lab extension's filters), in display order.
FACET_FIELDS = ("technique", "organism", "fluorophore", "license", "access")
#: Up to this many matching datasets, facets are counted dataset by dataset (from their
#: listed ids); above it, in one pass over the facet fields' rows (measured crossover on
#: 10,000 datasets with ~17 field rows each: ~1,000, ~4 ms either way).
_FEW = 1000


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

    Both ways of counting read covering indexes only (migration 0003); before, every
    facet-field row was fetched from the table and tested, whatever the query (50-100 ms
    on 10,000 datasets even for a word in five of them).
    """
    unknown = [f for f in fields if f not in FIELDS]
    if unknown:
        raise InvalidInput(f"no facet {unknown[0]!r}", hint="facets: " + ", ".join(FIELDS))
    visible = None if visible_ids is None else list(visible_ids)
    matched, _ = _matching(
        s, parse_query(q), include_embargoed=True, visible_ids=visible, ranked=False
    )
    out: dict[str, list[tuple[str, str, int]]] = {f: [] for f in fields}
    ids = list(s.exec(matched.limit(_FEW + 1)).all())
    if not ids or not fields:
        return out
    field_col: Any = col(DatasetField.field)
    if len(ids) <= _FEW:
        # A few matches: their field rows, read dataset by dataset through the covering
        # (dataset_id, field, value, display) index. `field || ''` keeps SQLite from
        # preferring the (field, ...) index for its GROUP BY order, which would visit
        # every facet row of the catalog (4 ms instead of 0.1 ms for 5 matches).
        among = col(DatasetField.dataset_id).in_(ids)
        if s.get_bind().dialect.name == "sqlite":
            field_col = field_col.concat("")
    else:
        # Many: one pass over the facet fields' rows in the covering (field, value,
        # dataset_id, display) index, each tested against the matching set.
        among = col(DatasetField.dataset_id).in_(matched)
    rows = s.exec(
        select(
            DatasetField.field,
            DatasetField.value,
            func.min(DatasetField.display),
            func.count(func.distinct(DatasetField.dataset_id)),
        )
        .where(field_col.in_(list(fields)), among)
        .group_by(col(DatasetField.field), col(DatasetField.value))
    ).all()
    for field_name, value, display, count in rows:
        out[field_name].append((value, display, int(count)))
    for f in out:
        out[f] = sorted(out[f], key=lambda e: (-e[2], e[1]))[:limit]
    return out
