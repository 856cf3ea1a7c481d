"""The ``image_key_value`` side table on SQLite and PostgreSQL: migration 0005 backfills it
from a 0004 catalog and removes it again, triggers keep it in step with every way image
rows are written, and every row holds exactly what the JSON functions it replaces return
for the same key (hostile keys and values included)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from alembic import command
from sqlalchemy import Engine, func, insert, inspect, select, text
from sqlmodel import col

from nanorepo.catalog import Catalog, make_engine
from nanorepo.catalog._db import _alembic_config
from nanorepo.catalog.models import Dataset, Image, ImageKeyValue, Version
from nanorepo.service._images import _KEY_RE
from nanorepo.storage import canonical_json, sha256_hex
from tests.conftest import METADATA, write_ome_tiff

#: Keys and values a depositor's instrument files or metadata could hold: quotes, SQL,
#: JSON-path and LIKE syntax, non-ASCII letters whose case SQLite's lower() does not fold
#: and PostgreSQL's does, empty and long strings.
HOSTILE: dict[str, str] = {
    "condition": "Control",
    "it's": "O'Brien",
    'say "hi"': 'a "quoted" value',
    "back\\slash": "C:\\data\\cell1",
    "a.b": "dot",
    "$[0]": "path syntax",
    "x' OR '1'='1": "'; DROP TABLE image; --",
    "100%_done": "50%_x",
    "Zelllinie": "ÉCOLE Ünïcödé",
    "emoji 🧬": "🔬 STED",
    "": "empty key",
    "empty value": "",
    "long": "v" * 5000,
    "tab\tkey": "line\nbreak",
}


def _upgrade(engine: Engine, revision: str) -> None:
    cfg = _alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def _downgrade(engine: Engine, revision: str) -> None:
    cfg = _alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, revision)


def _add_version(engine: Engine, accession: str, images: dict[str, dict[str, Any]]) -> int:
    """A dataset with one version holding ``images`` (name -> key_values), written with
    plain inserts as a 0004 catalog would have them; returns the version id."""
    mj = canonical_json({"n": accession}).decode()
    with engine.begin() as conn:
        ds_id = conn.execute(
            insert(Dataset.__table__).values(  # type: ignore[attr-defined]
                accession=accession,
                owner="alice",
                access="public",
                state="active",
                latest_version=1,
                title=accession,
                mutable={},
                mutable_rev=1,
                created=datetime.now(UTC),
            )
        ).inserted_primary_key[0]
        v_id = conn.execute(
            insert(Version.__table__).values(  # type: ignore[attr-defined]
                dataset_id=ds_id,
                number=1,
                created_by="alice",
                note="",
                metadata_json=mj,
                metadata_digest=sha256_hex(mj.encode()),
                manifest_digest="0" * 64,
                size_bytes=0,
                created=datetime.now(UTC),
            )
        ).inserted_primary_key[0]
        conn.execute(
            insert(Image.__table__),  # type: ignore[attr-defined]
            [
                {"version_id": v_id, "name": name, "path": f"images/v1/{name}.ome.zarr",
                 "dims": ["y", "x"], "shape": [8, 8], "dtype": "uint16",
                 "pixel_sizes": {"y": 20.0, "x": 20.0}, "channels": [], "levels": [[8, 8]],
                 "key_values": kv, "technique": "STED", "manifest_digest": "0" * 64,
                 "size_bytes": 1}
                for name, kv in images.items()
            ],
        )  # fmt: skip
    return int(v_id)


def _side_rows(engine: Engine) -> dict[tuple[str, str], tuple[int, str | None, str | None]]:
    """(image name, key) -> (version id, value, value_lower) of every side-table row."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(
                Image.name, ImageKeyValue.key, ImageKeyValue.version_id, ImageKeyValue.value,
                ImageKeyValue.value_lower,
            ).join(Image, col(Image.id) == col(ImageKeyValue.image_id))
        ).all()  # fmt: skip
    return {(r[0], r[1]): (r[2], r[3], r[4]) for r in rows}


def _json_answers(engine: Engine) -> dict[tuple[str, str], tuple[int, str | None, str | None]]:
    """The same, computed the way the image table filtered before 0005: the database's JSON
    operator for each key (``json_extract`` / ``->>``) and its ``lower()``."""
    out = {}
    with engine.connect() as conn:
        images = conn.execute(select(Image.id, Image.name, Image.version_id, Image.key_values))
        for image_id, name, version_id, kv in images.all():
            for key in kv:
                if not _KEY_RE.fullmatch(key) or not key.isascii():
                    # Keys the image table refuses to filter or sort on (quotes, backslashes,
                    # control characters, empty): SQLAlchemy's SQLite JSON path cannot quote
                    # all of them. Non-ASCII keys: the JSON column stores them \u-escaped and
                    # SQLite 3.40's json_extract compares paths with the escaped text, so it
                    # never found them (a filter on such a key matched nothing on SQLite;
                    # json_each decodes them, as PostgreSQL always did). Compare with the JSON.
                    out[(name, key)] = (version_id, kv[key], None)
                    continue
                expr = Image.key_values[key].as_string()  # type: ignore[index]
                value, lowered = conn.execute(
                    select(expr, func.lower(expr)).where(col(Image.id) == image_id)
                ).one()
                out[(name, key)] = (version_id, value, lowered)
    return out


def _assert_same_as_json(engine: Engine) -> None:
    side, want = _side_rows(engine), _json_answers(engine)
    assert set(side) == set(want)
    for k, (version_id, value, lowered) in want.items():
        assert side[k][:2] == (version_id, value), k
        if lowered is not None:
            assert side[k][2] == lowered, k
        else:
            with engine.connect() as conn:
                assert side[k][2] == conn.execute(select(func.lower(value))).scalar_one(), k


def test_migration_backfills_from_0004_and_downgrades(catalog_url: str) -> None:
    engine = make_engine(catalog_url)
    try:
        _upgrade(engine, "0004")
        assert "image_key_value" not in inspect(engine).get_table_names()
        _add_version(
            engine,
            "S-NANO1",
            {
                "hostile": HOSTILE,
                "plain": {"condition": "control", "well": "B02"},
                "no-keys": {},
                "no-well": {"condition": "DMSO"},
            },
        )
        Catalog(catalog_url).close()  # opening migrates to head: 0005 backfills
        rows = _side_rows(engine)
        assert len(rows) == len(HOSTILE) + 2 + 0 + 1
        assert rows[("plain", "well")][1:] == ("B02", "b02")
        assert ("no-well", "well") not in rows  # an absent key has no row
        assert rows[("hostile", "Zelllinie")][1] == "ÉCOLE Ünïcödé"
        _assert_same_as_json(engine)

        _downgrade(engine, "0004")
        assert "image_key_value" not in inspect(engine).get_table_names()
        # no trigger is left behind that would write into the dropped table
        _add_version(engine, "S-NANO2", {"after-downgrade": {"condition": "x"}})

        _upgrade(engine, "head")  # and forward again: both versions backfilled
        rows = _side_rows(engine)
        assert rows[("after-downgrade", "condition")][1:] == ("x", "x")
        assert len(rows) == len(HOSTILE) + 4
        _assert_same_as_json(engine)
    finally:
        engine.dispose()


def test_triggers_keep_rows_in_step_with_inserts_updates_and_deletes(catalog: Catalog) -> None:
    engine = catalog.engine
    v_id = _add_version(
        engine,
        "S-NANO1",
        {"a": {"condition": "Control", "well": "A01"}, "b": HOSTILE, "c": {}},
    )
    _assert_same_as_json(engine)
    assert len(_side_rows(engine)) == 2 + len(HOSTILE)
    with engine.begin() as conn:  # images are immutable, but an UPDATE must not desync
        conn.execute(
            Image.__table__.update()  # type: ignore[attr-defined]
            .where(col(Image.name) == "a")
            .values(key_values={"condition": "TAXOL", "plate": "P1"})
        )
    rows = _side_rows(engine)
    assert rows[("a", "condition")] == (v_id, "TAXOL", "taxol")
    assert ("a", "well") not in rows and rows[("a", "plate")][1] == "P1"
    _assert_same_as_json(engine)
    with engine.begin() as conn:
        conn.execute(Image.__table__.delete().where(col(Image.name) == "b"))  # type: ignore[attr-defined]
    assert {name for name, _ in _side_rows(engine)} == {"a"}


def test_json_null_and_non_object_key_values(catalog: Catalog) -> None:
    """A JSON null is kept as SQL NULL (matches nothing, sorts as absent, as ``->>`` and
    ``json_extract`` give); key_values that are not an object give no rows and no error."""
    engine = catalog.engine
    _add_version(engine, "S-NANO1", {"n": {"gone": None, "k": "v"}})
    with engine.begin() as conn:
        v_id = conn.execute(select(Image.version_id)).scalar_one()
        conn.execute(
            insert(Image.__table__),  # type: ignore[attr-defined]
            [{"version_id": v_id, "name": "list", "path": "images/v1/list.ome.zarr",
              "dims": ["y", "x"], "shape": [8, 8], "dtype": "uint16", "pixel_sizes": {},
              "channels": [], "levels": [[8, 8]], "key_values": ["not", "a", "mapping"],
              "technique": "", "manifest_digest": "0" * 64, "size_bytes": 1}],
        )  # fmt: skip
    rows = _side_rows(engine)
    assert rows == {("n", "gone"): (v_id, None, None), ("n", "k"): (v_id, "v", "v")}


def test_side_table_follows_deposits_and_revisions(
    repo: Any, tmp_path: Path, metadata_file: Path
) -> None:
    """A real deposit and revision (OME-TIFF conversion, staging, one catalog transaction):
    each version's images have exactly their key/values as rows, under their version."""
    a, b = tmp_path / "inputs" / "a.ome.tif", tmp_path / "inputs" / "b.ome.tif"
    write_ome_tiff(a, seed=1)
    write_ome_tiff(b, seed=2)
    meta = {**METADATA, "images": {"a": {"key_values": {"condition": "Control", "well": "A1"}},
                                   "b": {"key_values": {"condition": "taxol"}}}}  # fmt: skip
    metadata_file.write_text(yaml.safe_dump(meta))
    res = repo.deposit([a, b], title="Key/values", metadata=metadata_file)
    meta["images"]["b"]["key_values"] = {"condition": "DMSO", "it's": "ÉCOLE"}
    m2 = tmp_path / "inputs" / "meta2.yaml"
    m2.write_text(yaml.safe_dump(meta))
    rev = repo.revise(res.accession, metadata=m2, note="b was DMSO")
    assert rev.version == 2

    cat = repo.catalog
    with cat.session() as s:
        for number in (1, 2):
            v = cat.version(s, res.accession, number)
            images = cat.images(s, v.id)
            want = {
                (im.id, k, val) for im in images for k, val in im.key_values.items()
            }  # the JSON column, as the API returns it
            got = {
                tuple(r)
                for r in s.execute(
                    select(ImageKeyValue.image_id, ImageKeyValue.key, ImageKeyValue.value).where(
                        col(ImageKeyValue.version_id) == v.id
                    )
                )
            }
            assert got == want, number
            assert len(want) >= 3
        v2 = cat.version(s, res.accession, 2)
        lowered = (
            s.execute(
                select(ImageKeyValue.value_lower).where(
                    col(ImageKeyValue.version_id) == v2.id, col(ImageKeyValue.key) == "condition"
                )
            )
            .scalars()
            .all()
        )
        assert sorted(lowered) == ["control", "dmso"]
    _assert_same_as_json(cat.engine)


def test_filter_plan_uses_the_index(catalog: Catalog) -> None:
    """A filter's lookup is answerable from ``ix_image_key_value_match`` (on PostgreSQL with
    sequential scans discouraged: on a table this small the planner would rightly scan)."""
    query = (
        "SELECT image_id FROM image_key_value "
        "WHERE version_id = 1 AND key = 'condition' AND value_lower IN (lower('X'))"
    )
    with catalog.engine.begin() as conn:
        if conn.dialect.name == "sqlite":
            plan = conn.execute(text(f"EXPLAIN QUERY PLAN {query}")).all()
        else:
            conn.execute(text("SET LOCAL enable_seqscan = off"))
            plan = conn.execute(text(f"EXPLAIN {query}")).all()
    assert any("ix_image_key_value_match" in str(row) for row in plan), plan
