"""Catalog behaviour on SQLite and PostgreSQL (every test runs on both backends)."""

from __future__ import annotations

import itertools
import json
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import text

from nanorepo.catalog import Catalog, ImageRecord, VersionRecord
from nanorepo.errors import Conflict, DatasetNotFound, IntegrityError, InvalidInput, VersionNotFound
from nanorepo.search import index_dataset, search
from nanorepo.storage import canonical_json, sha256_hex


def _record(acc: str, number: int, title: str = "Nuclear pores", **meta: object) -> VersionRecord:
    record = {"biosample": {"organism": "Homo sapiens"}, "number": number, **meta}
    mj = canonical_json(record).decode()
    return VersionRecord(
        accession=acc,
        number=number,
        created_by="alice",
        metadata_json=mj,
        metadata_digest=sha256_hex(mj.encode()),
        manifest_digest="0" * 64,
        size_bytes=10,
        images=[
            ImageRecord(
                name="cell1",
                path=f"images/v{number}/cell1.ome.zarr",
                dims=["y", "x"],
                shape=[64, 64],
                dtype="uint16",
                pixel_sizes={"y": 20.0, "x": 20.0},
                channels=[{"name": "Nup96", "fluorophore": "AF647"}],
                levels=[[64, 64]],
                key_values={"cell_line": "U2OS"},
                technique="STED",
                manifest_digest="1" * 64,
                size_bytes=10,
            )
        ],
        files=[],
        title=title,
        mutable={"license": "CC-BY-4.0"},
    )


def _publish(cat: Catalog, rec: VersionRecord) -> None:
    with cat.session() as s:
        ds, _ = cat.add_version(s, rec)
        index_dataset(s, ds.id)
        s.commit()


def test_migrations_create_schema_and_are_idempotent(catalog_url: str, catalog: Catalog) -> None:
    cat = catalog
    Catalog(catalog_url).close()  # second open: already at head, nothing to do
    with cat.engine.connect() as conn:
        rev = conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
    from alembic.script import ScriptDirectory

    from nanorepo.catalog._db import _alembic_config

    assert rev == ScriptDirectory.from_config(_alembic_config()).get_current_head()
    assert rev != "0001"  # 0002 (annotations, tokens) applied on top of the initial schema
    # the models and the migrated schema agree: autogenerate finds nothing to do
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext
    from sqlmodel import SQLModel

    from nanorepo.catalog._db import not_fulltext

    with cat.engine.connect() as conn:
        mc = MigrationContext.configure(
            conn, opts={"compare_type": True, "include_object": not_fulltext}
        )
        assert compare_metadata(mc, SQLModel.metadata) == []


def test_accession_is_stable_per_deposit_key_and_unique(catalog: Catalog) -> None:
    cat = catalog
    with cat.session() as s:
        a = cat.reserve_accession(s, "key-a")
        b = cat.reserve_accession(s, "key-b")
        s.commit()
    with cat.session() as s:
        assert cat.reserve_accession(s, "key-a") == a
    assert a != b
    assert a.startswith("S-NANO") and b.startswith("S-NANO")


def test_versions_and_sealed_metadata(catalog: Catalog) -> None:
    cat = catalog
    _publish(cat, _record("S-NANO1", 1))
    _publish(cat, _record("S-NANO1", 2))
    with cat.session() as s:
        assert cat.version(s, "S-NANO1").number == 2
        assert cat.version(s, "S-NANO1", 1).number == 1
        with pytest.raises(VersionNotFound, match="versions run from 1 to 2"):
            cat.version(s, "S-NANO1", 3)
        with pytest.raises(DatasetNotFound):
            cat.dataset(s, "S-NANO99")
        with pytest.raises(Conflict):
            cat.add_version(s, _record("S-NANO1", 5))
    # Tampering with the sealed metadata is detected on read.
    with cat.engine.begin() as conn:
        conn.execute(text("UPDATE version SET metadata_json = :m WHERE number = 1"), {"m": "{}"})
    with cat.session() as s, pytest.raises(IntegrityError, match="sealed metadata"):
        cat.version(s, "S-NANO1", 1)


def test_mutable_metadata_revisions_and_history(catalog: Catalog) -> None:
    cat = catalog
    _publish(cat, _record("S-NANO1", 1))
    with cat.session() as s:
        revs = cat.set_mutable(
            s, "S-NANO1", {"license": "CC0-1.0", "keywords": "npc, sted"}, who="bob", reason="fix"
        )
        s.commit()
    assert {r.key for r in revs} == {"license", "keywords"}
    with cat.session() as s:
        ds = cat.dataset(s, "S-NANO1")
        assert ds.mutable["license"] == "CC0-1.0"
        assert ds.mutable["keywords"] == ["npc", "sted"]
        hist = cat.history(s, "S-NANO1")
    changed = [h for h in hist if h.key == "license"]
    assert [(h.old, h.new) for h in changed] == [(None, "CC-BY-4.0"), ("CC-BY-4.0", "CC0-1.0")]
    assert changed[-1].who == "bob" and changed[-1].reason == "fix"
    with cat.session() as s:
        with pytest.raises(InvalidInput, match="not an editable"):
            cat.set_mutable(s, "S-NANO1", {"accession": "x"}, who="bob", reason="r")
        with pytest.raises(InvalidInput, match="reason"):
            cat.set_mutable(s, "S-NANO1", {"title": "x"}, who="bob", reason=" ")
        with pytest.raises(Conflict):
            cat.set_mutable(s, "S-NANO1", {"title": "x"}, who="bob", reason="r", expected_rev=1)


def test_concurrent_mutable_edits_lose_nothing(catalog: Catalog) -> None:
    cat = catalog
    _publish(cat, _record("S-NANO1", 1))

    def edit(i: int) -> None:
        with cat.session() as s:
            cat.set_mutable(s, "S-NANO1", {"description": f"edit {i}"}, who=f"u{i}", reason="r")
            s.commit()

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(edit, range(12)))
    with cat.session() as s:
        hist = [h for h in cat.history(s, "S-NANO1") if h.key == "description"]
        ds = cat.dataset(s, "S-NANO1")
    assert len(hist) == 12
    # Revisions chain: each old value is the previous new value.
    for prev, cur in itertools.pairwise(hist):
        assert cur.old == prev.new
    assert ds.mutable["description"] == hist[-1].new


def test_search_full_text_and_field_filters(catalog: Catalog) -> None:
    cat = catalog
    _publish(cat, _record("S-NANO1", 1, title="Nuclear pore complexes in U2OS"))
    _publish(
        cat, _record("S-NANO2", 1, title="Microtubules", biosample={"organism": "Mus musculus"})
    )
    with cat.session() as s:
        hits, total = search(s, "nuclear pore")
        assert [d.accession for d in hits] == ["S-NANO1"] and total == 1
        hits, _ = search(s, 'organism:"Mus musculus"')
        assert [d.accession for d in hits] == ["S-NANO2"]
        hits, _ = search(s, "technique:sted fluorophore:AF647")
        assert sorted(d.accession for d in hits) == ["S-NANO1", "S-NANO2"]
        hits, total = search(s, "technique:SIM")
        assert hits == [] and total == 0
        # Hostile strings are words, never query syntax.
        hits, _ = search(s, 'pore" OR * NEAR(')
        assert hits == []
        with pytest.raises(InvalidInput, match="unknown search field"):
            search(s, "colour:red")


def test_json_columns_round_trip(catalog: Catalog) -> None:
    cat = catalog
    _publish(cat, _record("S-NANO1", 1))
    with cat.session() as s:
        v = cat.version(s, "S-NANO1")
        (im,) = cat.images(s, v.id)
    assert im.channels == [{"name": "Nup96", "fluorophore": "AF647"}]
    assert im.pixel_sizes == {"y": 20.0, "x": 20.0}
    assert json.loads(v.metadata_json)["biosample"]["organism"] == "Homo sapiens"
