"""The demo reference datasets: small, complete, deterministic, one embargoed."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
import tifffile

from nanorepo.samples import DemoDataset, demo_datasets


@pytest.fixture(scope="module")
def demos(tmp_path_factory: pytest.TempPathFactory) -> list[DemoDataset]:
    return demo_datasets(tmp_path_factory.mktemp("demo"))


def test_four_small_datasets(demos: list[DemoDataset]) -> None:
    assert len(demos) == 4
    assert len({d.title for d in demos}) == 4
    files = [p for d in demos for p in (*d.inputs, *d.ground_truth, d.metadata_file)]
    assert all(p.is_file() for p in files)
    assert sum(p.stat().st_size for p in files) < 60 * 2**20
    suffixes = {p.name.split(".", 1)[1] for d in demos for p in d.inputs}
    assert suffixes == {"ome.tif", "csv"}


def test_exactly_one_is_embargoed(demos: list[DemoDataset]) -> None:
    embargoed = [d for d in demos if d.embargo_until is not None]
    assert len(embargoed) == 1
    assert embargoed[0].embargo_until > date.today()


def test_metadata_is_a_complete_deposit_record(demos: list[DemoDataset]) -> None:
    from nanorepo.deposition._metadata import load_metadata_file

    for d in demos:
        meta = d.metadata
        assert meta["study"]["license"] == "CC-BY-4.0"
        assert meta["study"]["description"] and meta["study"]["authors"]
        assert meta["biosample"]["organism"] == "Homo sapiens"
        assert meta["specimen"]["labels"]
        names = {p.name for p in d.inputs}
        assert set(meta["images"]) <= names
        assert load_metadata_file(d.metadata_file) == json.loads(json.dumps(meta))


def test_ground_truth_answers(demos: list[DemoDataset]) -> None:
    npc = json.loads(demos[0].ground_truth[0].read_text())
    assert npc["answers"] == {"diameter_nm": 107.0, "symmetry": 8, "ring_separation_nm": 50.0}
    assert len(npc["centres_nm"]) == npc["count"] > 400
    smlm = json.loads(demos[1].ground_truth[0].read_text())
    assert smlm["localisations"]["count"] > 10000
    sim = json.loads(demos[2].ground_truth[0].read_text())
    assert sim["channels"]["1"]["diameter_nm"] == 25.0
    assert sim["channels"]["0"]["count"] == len(sim["channels"]["0"]["centres_nm"])


def test_images_have_their_technique(demos: list[DemoDataset]) -> None:
    modes = {}
    for d in demos:
        for p in d.inputs:
            if p.name.endswith(".ome.tif"):
                with tifffile.TiffFile(p) as tf:
                    xml = tf.ome_metadata
                modes[p.name] = xml.split('AcquisitionMode="', 1)[1].split('"', 1)[0]
    assert modes["npc_confocal.ome.tif"] == "LaserScanningConfocalMicroscopy"
    assert modes["npc_sted.ome.tif"] == "STED"
    assert modes["npc_dstorm_rendered.ome.tif"] == "STORM"
    assert modes["cell1_control.ome.tif"] == "StructuredIllumination"


def test_demo_is_deterministic(demos: list[DemoDataset], tmp_path: Path) -> None:
    again = demo_datasets(tmp_path)
    for a, b in zip(demos, again, strict=True):
        for p, q in zip(a.inputs, b.inputs, strict=True):
            assert p.read_bytes() == q.read_bytes()
