"""``nanorepo demo``: reference datasets with ground truth, deposited once."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import nanorepo
from nanorepo.cli._demo import deposit_demo
from nanorepo.errors import ImageNotFound
from nanorepo.ome import png_bytes, thumbnail
from nanorepo.repository import Repository


def test_demo_deposits_reference_data_once(sqlite_repo: Repository) -> None:
    first = deposit_demo(sqlite_repo)
    assert len(first) >= 4
    assert not any(r["existing"] for r in first)
    again = deposit_demo(sqlite_repo)
    assert [r["accession"] for r in again] == [r["accession"] for r in first]
    assert all(r["existing"] for r in again)

    rows, total = sqlite_repo.list_datasets()
    assert total == len(first)
    assert {r["access"] for r in rows} == {"public", "embargoed"}
    for r in first:
        shown = sqlite_repo.show(r["accession"])
        truth = [f for f in shown["files"] if f["role"] == "supporting"]
        assert truth, f"{r['accession']} keeps its ground truth"
        doc = json.loads(Path(truth[0]["storage_path"]).read_text())
        assert doc
        assert sqlite_repo.verify(r["accession"])[0].ok
    # The NPC reference states the known answer a training notebook checks against.
    npc = next(r for r in first if "pore" in r["title"].lower())
    ds = nanorepo.open(npc["accession"], settings=sqlite_repo.settings)
    assert {im.technique for im in ds.images} >= {"STED"}


def test_thumbnail_uses_stored_colours(sqlite_repo: Repository) -> None:
    deposit_demo(sqlite_repo)
    rows, _ = sqlite_repo.list_datasets()
    ds = nanorepo.open(rows[0]["accession"], settings=sqlite_repo.settings)
    img = ds.images[-1]
    rgb = thumbnail(img.zarr)
    assert rgb.dtype == np.uint8
    assert rgb.shape[2] == 3
    assert rgb.shape[:2] == img.levels[-1][-2:]
    color = img.zarr.channels[0].color
    dominant = np.array([int(color[i : i + 2], 16) for i in (0, 2, 4)])
    # Pixels are tinted by the channel colour: no channel the colour lacks lights up.
    assert rgb[..., dominant == 0].max() == 0
    assert png_bytes(rgb).startswith(b"\x89PNG")


def test_dataset_files_and_localisations(sqlite_repo: Repository) -> None:
    results = deposit_demo(sqlite_repo)
    smlm = next(r for r in results if "dSTORM" in r["title"])
    ds = nanorepo.open(smlm["accession"], settings=sqlite_repo.settings)
    locs = ds.localisations()
    assert {"x_nm", "y_nm", "frame", "photons"} <= set(locs.columns)
    assert len(locs) > 1000
    truth = next(f["name"] for f in ds.files if f["role"] == "supporting")
    assert ds.file_path(truth).is_relative_to(ds.path)
    with pytest.raises(ImageNotFound, match="localisation table"):
        ds.localisations("nope")
    with pytest.raises(FileNotFoundError, match="no file"):
        ds.file_path("../../etc/passwd")
