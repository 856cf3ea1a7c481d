"""Search and facets give exactly what the plain queries give, however they are computed.

``search`` reads the page first and counts only when needed; ``facets`` counts a few
matches dataset by dataset and many in one pass over the field index. These tests compare
both with a reference on a catalog of varied datasets (embargoed, withdrawn, values
written in several cases, duplicate field rows), on SQLite and PostgreSQL: the reference
search is the statement as it was before the optimisation, the reference facets are
counted in Python from the rows themselves.
"""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Float, Integer, func, insert, text
from sqlmodel import Session, col, select

from nanorepo.catalog import Catalog
from nanorepo.catalog.models import Dataset, DatasetField, SearchDoc
from nanorepo.search import FACET_FIELDS, _index, facets, parse_query, search

WORDS = ("alpha", "beta", "gamma", "delta", "pores", "rings")
QUERIES = (
    "",
    "alpha",
    "alpha beta",
    "gamma",
    "nothingmatches",
    "technique:sted",
    'technique:sted organism:"homo sapiens"',
    "technique:sted technique:sim",
    "alpha license:cc0-1.0",
    "pores access:embargoed",
    'beta organism:"Homo sapiens" fluorophore:af647',
)
N = 60


def _populate(cat: Catalog) -> dict[int, list[tuple[str, str, str]]]:
    """``N`` datasets written as index_dataset writes them; returns their field rows."""
    rng = random.Random(7)
    now = datetime.now(UTC)
    datasets, docs, fields = [], [], []
    rows: dict[int, list[tuple[str, str, str]]] = {}
    for i in range(1, N + 1):
        access = "embargoed" if i % 5 == 0 else "public"
        raw = {
            "accession": {f"S-NANO{i}"},
            "access": {access},
            # the same technique written twice by one dataset ("STED" by the image, "sted"
            # by the metadata), and values differing only in surrounding space
            "technique": set(rng.sample(["STED", "sted", "SIM", "confocal", " STED"], 2)),
            "organism": {rng.choice(["Homo sapiens", "homo sapiens", "Mus musculus"])},
            "fluorophore": set(rng.sample(["AF647", "af647", "Atto 488", "SiR"], 2)),
            "license": {rng.choice(["CC-BY-4.0", "CC0-1.0"])},
        }
        rows[i] = [
            (f, v.strip().lower(), v.strip()) for f, vals in raw.items() for v in sorted(vals)
        ]
        datasets.append(
            {"id": i, "accession": f"S-NANO{i}", "owner": "alice", "created": now,
             "access": access, "state": "withdrawn" if i % 11 == 0 else "active",
             "latest_version": 1, "title": f"Dataset {i}", "mutable": {}, "mutable_rev": 1}
        )  # fmt: skip
        words = [rng.choice(WORDS) for _ in range(rng.randint(1, 12))]
        docs.append({"dataset_id": i, "text": " ".join([f"S-NANO{i}", *words])})
        fields += [{"dataset_id": i, "field": f, "value": v, "display": d} for f, v, d in rows[i]]
    with cat.engine.begin() as conn:
        conn.execute(insert(Dataset.__table__), datasets)  # type: ignore[attr-defined]
        conn.execute(insert(SearchDoc.__table__), docs)  # type: ignore[attr-defined]
        conn.execute(insert(DatasetField.__table__), fields)  # type: ignore[attr-defined]
    return rows


def _reference_matching(s: Session, q: str, visible_ids: list[int] | None) -> tuple[Any, list[Any]]:
    """The matching statement as it was before the optimisation (one IN per filter)."""
    query = parse_query(q)
    stmt = select(Dataset.id).where(Dataset.state == "active")
    if visible_ids is not None:
        stmt = stmt.where((Dataset.access == "public") | col(Dataset.id).in_(visible_ids))
    for f, value in query.filters:
        sub = select(DatasetField.dataset_id).where(
            DatasetField.field == f, DatasetField.value == value
        )
        stmt = stmt.where(col(Dataset.id).in_(sub))
    order: list[Any] = [Dataset.id]
    if query.words:
        if s.get_bind().dialect.name == "sqlite":
            fts = (
                text("SELECT rowid AS id, bm25(search_fts) AS rank FROM search_fts "
                     "WHERE search_fts MATCH :m")
                .bindparams(m=_index._fts_match(query.words))
                .columns(id=Integer, rank=Float)
                .subquery()
            )  # fmt: skip
            stmt = stmt.join(fts, fts.c.id == col(Dataset.id))
            order = [fts.c.rank.asc(), Dataset.id]
        else:
            tsq = func.plainto_tsquery("simple", " ".join(query.words))
            tsv = func.to_tsvector("simple", SearchDoc.text)
            stmt = stmt.join(SearchDoc, col(SearchDoc.dataset_id) == col(Dataset.id)).where(
                tsv.op("@@")(tsq)
            )
            order = [func.ts_rank(tsv, tsq).desc(), Dataset.id]
    return stmt, order


def _visible_sets() -> dict[str, list[int] | None]:
    return {
        "privileged": None,
        "anonymous": [],
        "granted some": [5, 10, 25, 40],
        "granted all": [i for i in range(1, N + 1) if i % 5 == 0],
    }


@pytest.fixture
def populated(catalog: Catalog) -> tuple[Catalog, dict[int, list[tuple[str, str, str]]]]:
    return catalog, _populate(catalog)


def test_search_pages_and_totals_equal_the_plain_query(
    populated: tuple[Catalog, dict[int, list[tuple[str, str, str]]]],
) -> None:
    cat, _ = populated
    checked = 0
    with cat.session() as s:
        for q in QUERIES:
            for who, visible in _visible_sets().items():
                stmt, order = _reference_matching(s, q, visible)
                everything = [i for i in s.exec(stmt.order_by(*order)).all()]
                n = len(everything)
                for limit in (1, 5, 50):
                    # first page, middle, a page ending exactly at the total, beyond it
                    for offset in sorted({0, 3, max(n - limit, 0), n, n + 4}):
                        rows, total = search(s, q, offset=offset, limit=limit, visible_ids=visible)
                        assert total == n, (q, who, offset, limit)
                        expect = everything[offset : offset + limit]
                        assert [d.id for d in rows] == expect, (q, who, offset, limit)
                        checked += 1
    assert checked > 500


def test_facets_count_exactly_the_visible_matches_both_ways(
    populated: tuple[Catalog, dict[int, list[tuple[str, str, str]]]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cat, rows = populated
    fields = (*FACET_FIELDS, "accession")
    with cat.session() as s:
        for q in QUERIES:
            for who, visible in _visible_sets().items():
                stmt, _ = _reference_matching(s, q, visible)
                matched = set(s.exec(stmt).all())
                counts: dict[tuple[str, str], set[int]] = defaultdict(set)
                display: dict[tuple[str, str], str] = {}
                for i in matched:
                    for f, v, d in rows[i]:
                        if f in fields:
                            counts[f, v].add(i)
                            display[f, v] = min(d, display.get((f, v), d))
                expect = {
                    f: sorted(
                        ((v, display[f, v], len(ids)) for (g, v), ids in counts.items() if g == f),
                        key=lambda e: (-e[2], e[1]),
                    )[:20]
                    for f in fields
                }
                # dataset by dataset (every match is "few"), one pass (none is), default
                for few in (10**6, 0, _index._FEW):
                    monkeypatch.setattr(_index, "_FEW", few)
                    got = facets(s, q, fields=fields, visible_ids=visible)
                    assert got == expect, (q, who, few)
                if q == "":
                    total = sum(n for _, _, n in expect["access"])
                    assert total == len(matched) and ("access" in expect)


def test_facets_never_count_what_the_caller_cannot_see(
    populated: tuple[Catalog, dict[int, list[tuple[str, str, str]]]],
) -> None:
    cat, _ = populated
    with cat.session() as s:
        anonymous = facets(s, "", visible_ids=[])
        assert [v for v, _, _ in anonymous["access"]] == ["public"]
        granted = facets(s, "access:embargoed", visible_ids=[5, 10])
        assert granted["access"] == [("embargoed", "embargoed", 2)]
        assert facets(s, "access:embargoed", visible_ids=[]) == {f: [] for f in FACET_FIELDS}
