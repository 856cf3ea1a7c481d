"""Ground truth geometry: the statistics a training notebook would measure."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial import cKDTree

from nanorepo.errors import InvalidInput
from nanorepo.samples import Structures, chromatin_domains, microtubules, nuclear_pores


def _fit_circle(xy: np.ndarray) -> tuple[np.ndarray, float]:
    """Algebraic (Kasa) least-squares circle: centre and radius."""
    a = np.column_stack([2 * xy, np.ones(len(xy))])
    b = (xy**2).sum(axis=1)
    (cx, cy, c), *_ = np.linalg.lstsq(a, b, rcond=None)
    return np.array([cx, cy]), float(np.sqrt(c + cx**2 + cy**2))


@pytest.fixture(scope="module")
def pores() -> Structures:
    return nuclear_pores((10000, 10000, 400), origin_nm=(0, 0, -200), seed=7)


def test_npc_ring_diameter_measured_from_labels(pores: Structures) -> None:
    diameters = []
    for i in range(pores.ground_truth["count"]):
        xy = pores.positions_nm[pores.structure_ids == i, :2]
        if len(xy) >= 8:
            diameters.append(2 * _fit_circle(xy)[1])
    assert len(diameters) > 300
    assert np.mean(diameters) == pytest.approx(107.0, abs=1.0)
    assert pores.ground_truth["diameter_nm"] == 107.0


def test_npc_is_eightfold(pores: Structures) -> None:
    centres = np.asarray(pores.ground_truth["centres_nm"])
    rot = np.radians(pores.ground_truth["rotation_deg"])
    d = pores.positions_nm[:, :2] - centres[pores.structure_ids, :2]
    phi = np.arctan2(d[:, 1], d[:, 0]) - rot[pores.structure_ids]
    power = {k: abs(np.exp(1j * k * phi).mean()) for k in (6, 7, 8, 9, 10)}
    assert power[8] > 0.6  # copies 10 nm apart and linker jitter blur the corners a little
    assert max(power[k] for k in (6, 7, 9, 10)) < 0.1
    # without the known rotation: the 8th angular harmonic of each pore's labels dominates
    per_pore = [
        abs(np.exp(1j * 8 * np.arctan2(d[m, 1], d[m, 0])).mean())
        for m in (pores.structure_ids == i for i in range(50))
    ]
    assert np.median(per_pore) > 0.5


def test_npc_rings_and_labelling(pores: Structures) -> None:
    gt = pores.ground_truth
    centres = np.asarray(gt["centres_nm"])
    dz = pores.positions_nm[:, 2] - centres[pores.structure_ids, 2]
    assert np.mean(np.abs(dz)) == pytest.approx(25.0, abs=1.0)
    assert np.mean(dz > 0) == pytest.approx(0.5, abs=0.03)
    per_pore = len(pores) / gt["count"]
    assert per_pore == pytest.approx(32 * 0.6, rel=0.03)
    assert sum(gt["labels_per_pore"]) == len(pores)
    assert 0 < np.mean(gt["labelled_corners"]) < 8
    assert min(cKDTree(centres[:, :2]).query(centres[:, :2], k=2)[0][:, 1]) >= 150.0
    assert np.all(pores.positions_nm[:, :2] >= 0) and np.all(pores.positions_nm[:, :2] < 10000)


def test_generators_are_deterministic_by_seed() -> None:
    for gen in (nuclear_pores, microtubules, chromatin_domains):
        a = gen((3000, 3000, 1000), seed=3)
        b = gen((3000, 3000, 1000), seed=3)
        c = gen((3000, 3000, 1000), seed=4)
        assert np.array_equal(a.positions_nm, b.positions_nm)
        assert a.ground_truth == b.ground_truth
        assert not np.array_equal(a.positions_nm[:10], c.positions_nm[:10])


def test_microtubule_labels_sit_on_a_25nm_tube() -> None:
    mts = microtubules((8000, 8000, 600), origin_nm=(0, 0, -300), seed=5, count=12)
    assert mts.ground_truth["count"] == 12
    dists = []
    for i, path in enumerate(mts.ground_truth["paths_nm"]):
        p = np.asarray(path)
        t = np.linspace(0, 1, 20)[:, None, None]
        dense = (p[:-1] + t * (p[1:] - p[:-1])).reshape(-1, 3)
        labels = mts.positions_nm[mts.structure_ids == i]
        dists.append(cKDTree(dense).query(labels)[0])
    d = np.concatenate(dists)
    assert np.median(d) == pytest.approx(12.5, abs=0.6)
    assert len(mts) / (sum(mts.ground_truth["lengths_nm"]) / 1000) == pytest.approx(60, rel=0.1)


def test_chromatin_domains_cluster_labels() -> None:
    ch = chromatin_domains((4000, 4000, 2000), seed=2)
    gt = ch.ground_truth
    assert gt["count"] == len(gt["centres_nm"]) > 50
    assert np.all(np.asarray(gt["radius_of_gyration_nm"]) >= 40)
    in_domains = ch.weights[ch.structure_ids >= 0].sum()
    assert in_domains == pytest.approx(sum(gt["labels"]), rel=0.02)
    dispersed = ch.weights[ch.structure_ids < 0].sum()
    assert dispersed / (dispersed + in_domains) == pytest.approx(0.15, abs=0.03)
    # each domain's labels lie around its centre, within a few radii of gyration
    centres = np.asarray(gt["centres_nm"])
    rg = np.asarray(gt["radius_of_gyration_nm"])
    m = ch.structure_ids >= 0
    r = np.linalg.norm(ch.positions_nm[m] - centres[ch.structure_ids[m]], axis=1)
    assert np.median(r / rg[ch.structure_ids[m]]) < 1.2
    per_nuc = chromatin_domains((4000, 4000, 2000), seed=2, per_nucleosome=True)
    assert np.all(per_nuc.weights == 1)
    assert len(per_nuc) > len(ch)


@pytest.mark.parametrize(
    ("call", "kwargs"),
    [
        (nuclear_pores, {"labelling_efficiency": 1.5}),
        (nuclear_pores, {"symmetry": 0}),
        (microtubules, {"length_nm": (5000, 100)}),
        (chromatin_domains, {"dispersed_fraction": 1.0}),
    ],
)
def test_bad_arguments_are_invalid_input(call: object, kwargs: dict[str, object]) -> None:
    with pytest.raises(InvalidInput):
        call((1000, 1000, 1000), **kwargs)  # type: ignore[operator]
    with pytest.raises(ValueError, match="extent_nm"):
        nuclear_pores((1000, -1, 0))


def test_ground_truth_file_is_json(pores: Structures, tmp_path: object) -> None:
    import json
    from pathlib import Path

    p = pores.save_ground_truth(Path(str(tmp_path)) / "gt.json", answers={"symmetry": 8})
    doc = json.loads(p.read_text())
    assert doc["symmetry"] == 8 and doc["answers"] == {"symmetry": 8}
    assert len(doc["centres_nm"]) == doc["count"]
    assert doc["label_positions"] == len(pores)
