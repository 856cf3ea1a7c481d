"""index_dataset reuses the dataset part of a document when only threads changed, and
rebuilds it when anything it was built from changed (on SQLite and PostgreSQL)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import replace
from datetime import date

import pytest
from sqlalchemy import event
from sqlmodel import Session, col, delete, select

import nanorepo.annotations as an
from nanorepo.catalog import Catalog
from nanorepo.catalog._catalog import row_id
from nanorepo.catalog.models import DatasetField, SearchDoc
from nanorepo.search import facets, index_dataset, search
from nanorepo.search._index import _SOURCE
from tests.annotations.conftest import Published, publish, record


@pytest.fixture
def published(catalog: Catalog) -> Published:
    """Dataset S-NANO1 (images cell1, stack, movie), indexed, on each backend."""
    return publish(catalog, "S-NANO1")


@contextmanager
def statements(cat: Catalog) -> Iterator[list[str]]:
    """The SQL statements the catalog's engine runs inside the block."""
    seen: list[str] = []

    def note(_conn: object, _cursor: object, sql: str, *_args: object) -> None:
        seen.append(" ".join(sql.split()).lower())

    event.listen(cat.engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        event.remove(cat.engine, "before_cursor_execute", note)


def _document(s: Session, dataset_id: int) -> tuple[Counter[str], set[tuple[str, str, str]]]:
    doc = s.get(SearchDoc, dataset_id)
    assert doc is not None
    fields = s.exec(
        select(DatasetField.field, DatasetField.value, DatasetField.display).where(
            col(DatasetField.dataset_id) == dataset_id, DatasetField.field != _SOURCE
        )
    ).all()
    return Counter(doc.text.split("\n")), set(fields)


def _rebuilt(s: Session, dataset_id: int) -> tuple[Counter[str], set[tuple[str, str, str]]]:
    """The document built from scratch (the bookkeeping row removed first), rolled back."""
    s.exec(
        delete(DatasetField).where(
            col(DatasetField.dataset_id) == dataset_id, DatasetField.field == _SOURCE
        )
    )
    index_dataset(s, dataset_id)
    out = _document(s, dataset_id)
    s.rollback()
    return out


def test_an_annotation_write_reuses_the_dataset_part(published: Published) -> None:
    cat, ds = published.catalog, published.dataset
    ds_id = row_id(ds)
    with cat.session() as s:
        t = an.create_thread(
            s, ds, version=1, image_row=None, anchor={"kind": "dataset"},
            title="Heptagonal outliers", body="Some pores look *heptagonal*.", tags=["symmetry"],
            who="alice",
        )  # fmt: skip
        thread_id = t.id
        with statements(cat) as seen:
            index_dataset(s, ds_id)
        s.commit()
        # the images and the sealed metadata were not read again
        assert not [q for q in seen if " from image" in q or "metadata_json" in q], seen
        assert any("update search_doc" in q for q in seen)
        after = _document(s, ds_id)
        assert after == _rebuilt(s, ds_id)
        assert {"Heptagonal outliers", "symmetry", "cell1", "stack"} <= set(after[0])
    with cat.session() as s:
        hits, _ = search(s, "heptagonal cell1")
        assert [d.accession for d in hits] == ["S-NANO1"]
        # resolving changes no text: the document is not written again
        an.set_status(s, an.get_thread(s, ds_id, thread_id), "resolved", "alice")
        with statements(cat) as seen:
            index_dataset(s, ds_id)
        writes = ("update search_doc", "delete from dataset_field", "insert into dataset_field")
        assert not [q for q in seen if q.startswith(writes)], seen
        s.commit()


def test_what_the_dataset_part_is_built_from_rebuilds_it(published: Published) -> None:
    cat, ds = published.catalog, published.dataset
    ds_id = row_id(ds)
    with cat.session() as s:
        an.create_thread(
            s, ds, version=1, image_row=None, anchor={"kind": "dataset"}, title="Old rings",
            body="kept across rebuilds", who="alice",
        )  # fmt: skip
        index_dataset(s, ds_id)
        # each input on its own: the licence (mutable metadata), then the title
        cat.set_mutable(s, "S-NANO1", {"license": "CC0-1.0"}, who="alice", reason="relicensed")
        index_dataset(s, ds_id)
        assert search(s, "license:cc0-1.0")[1] == 1
        cat.set_mutable(s, "S-NANO1", {"title": "Microtubule lattice"}, who="alice", reason="typo")
        index_dataset(s, ds_id)
        s.commit()
    with cat.session() as s:
        assert search(s, "microtubule lattice rebuilds")[1] == 1  # new title, old threads
        assert search(s, "license:cc0-1.0")[1] == 1
        assert search(s, "license:cc-by-4.0")[1] == 0
        assert _document(s, ds_id) == _rebuilt(s, ds_id)
        cat.set_access(s, "S-NANO1", "embargoed", date(2099, 1, 1))
        index_dataset(s, ds_id)
        s.commit()
        assert facets(s, "")["access"] == [("embargoed", "embargoed", 1)]
    # a new version with other images and metadata
    rec = record("S-NANO1", 2)
    rec.images = [replace(rec.images[0], name="replacement")]  # a copy: IMAGES is shared
    with cat.session() as s:
        cat.add_version(s, rec)
        index_dataset(s, ds_id)
        s.commit()
        assert search(s, "replacement")[1] == 1
        assert search(s, "stack")[1] == 0
        assert search(s, "rebuilds")[1] == 1
        assert _document(s, ds_id) == _rebuilt(s, ds_id)


def test_concurrent_annotation_writes_all_reach_the_document(published: Published) -> None:
    cat, acc = published.catalog, published.dataset.accession

    def write(i: int) -> None:
        with cat.session() as s:
            ds = cat.dataset(s, acc)
            an.create_thread(
                s, ds, version=1, image_row=None, anchor={"kind": "dataset"},
                title=f"Concurrent note{i:03d}", body=f"Seen by writer{i:03d}.", who="alice",
            )  # fmt: skip
            index_dataset(s, row_id(ds))
            s.commit()

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(write, range(32)))
    with cat.session() as s:
        missing = [i for i in range(32) if search(s, f"note{i:03d} writer{i:03d}")[1] != 1]
        assert missing == []
        ds_id = row_id(cat.dataset(s, acc))
        assert _document(s, ds_id) == _rebuilt(s, ds_id)
