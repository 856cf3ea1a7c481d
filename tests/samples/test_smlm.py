"""SMLM localisation tables: ThunderSTORM format, precision model, plain tables."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from nanorepo.errors import InvalidInput
from nanorepo.samples import (
    THUNDERSTORM_COLUMNS,
    THUNDERSTORM_COLUMNS_3D,
    Structures,
    localisations,
    nuclear_pores,
    render_localisations,
    write_localisation_table,
    write_thunderstorm_csv,
)

HEADER_2D = (
    '"id","frame","x [nm]","y [nm]","sigma [nm]","intensity [photon]","offset [photon]",'
    '"bkgstd [photon]","uncertainty [nm]"'
)
HEADER_3D = (
    '"id","frame","x [nm]","y [nm]","z [nm]","sigma1 [nm]","sigma2 [nm]",'
    '"intensity [photon]","offset [photon]","bkgstd [photon]","uncertainty_xy [nm]",'
    '"uncertainty_z [nm]"'
)


@pytest.fixture(scope="module")
def pores() -> Structures:
    return nuclear_pores((4000, 4000, 400), origin_nm=(0, 0, -200), seed=9)


@pytest.fixture(scope="module")
def table(pores: Structures) -> pd.DataFrame:
    return localisations(pores, seed=1, frames=5000)


def test_table_columns_and_blinking(table: pd.DataFrame, pores: Structures) -> None:
    assert list(table.columns[:5]) == ["frame", "x_nm", "y_nm", "z_nm", "photons"]
    assert table["frame"].is_monotonic_increasing
    assert table["frame"].between(0, 4999).all()
    assert (table["photons"] >= 300).all()
    # geometric blinking: ~5 blinks x ~1.5 frames per label, a few percent below threshold
    per_label = len(table) / len(pores)
    assert 5.5 < per_label < 8.5
    assert set(table["structure"]) <= set(range(pores.ground_truth["count"]))


def test_localisation_error_matches_reported_uncertainty(
    table: pd.DataFrame, pores: Structures
) -> None:
    truth = pores.positions_nm[table["label"].to_numpy()]
    zx = (table["x_nm"] - truth[:, 0]) / table["uncertainty_nm"]
    zz = (table["z_nm"] - truth[:, 2]) / table["uncertainty_z_nm"]
    assert zx.std() == pytest.approx(1.0, abs=0.03)
    assert zz.std() == pytest.approx(1.0, abs=0.03)
    # precision ~ PSF sigma / sqrt(photons) when the background is low
    bright = table["photons"] > 5000
    ratio = table["uncertainty_nm"][bright] / (130.0 / np.sqrt(table["photons"][bright]))
    assert 1.0 < ratio.median() < 2.0


def test_thunderstorm_csv_3d_header_is_exact(table: pd.DataFrame, tmp_path: Path) -> None:
    p = write_thunderstorm_csv(table, tmp_path / "locs.csv")
    lines = p.read_text().splitlines()
    assert lines[0] == HEADER_3D == ",".join(f'"{c}"' for c in THUNDERSTORM_COLUMNS_3D)
    back = pd.read_csv(p)
    assert list(back.columns) == list(THUNDERSTORM_COLUMNS_3D)
    assert len(back) == len(table)
    assert back["id"].tolist()[:3] == [1, 2, 3]
    assert back["frame"].min() >= 1
    assert np.allclose(back["x [nm]"], table["x_nm"], atol=0.01)


def test_thunderstorm_csv_2d_header_is_exact(pores: Structures, tmp_path: Path) -> None:
    t2 = localisations(pores, seed=2, frames=500, three_d=False, spurious_per_frame=1.0)
    assert "z_nm" not in t2.columns
    assert (t2["label"] == -1).sum() > 300
    p = write_thunderstorm_csv(t2, tmp_path / "locs2d.csv")
    assert p.read_text().splitlines()[0] == HEADER_2D
    assert list(pd.read_csv(p).columns) == list(THUNDERSTORM_COLUMNS)
    with pytest.raises(InvalidInput):
        write_thunderstorm_csv(t2, tmp_path / "x.csv", three_d=True)


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".parquet"])
def test_plain_table(table: pd.DataFrame, tmp_path: Path, suffix: str) -> None:
    p = write_localisation_table(table, tmp_path / f"locs{suffix}")
    if suffix == ".parquet":
        back = pd.read_parquet(p)
    else:
        back = pd.read_csv(p, sep="," if suffix == ".csv" else "\t")
    assert list(back.columns) == ["x_nm", "y_nm", "z_nm", "frame", "photons"]
    assert len(back) == len(table)


def test_plain_table_rejects_unknown_suffix(table: pd.DataFrame, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="unknown table format"):
        write_localisation_table(table, tmp_path / "locs.xlsx")


def test_render_localisations_shows_rings(table: pd.DataFrame, pores: Structures) -> None:
    img = render_localisations(table, pixel_size_nm=5.0, shape=(800, 800))
    assert img.dtype == np.uint16 and img.shape == (800, 800)
    cx, cy, _ = pores.ground_truth["centres_nm"][0]
    r = round(53.5 / 5)
    yy, xx = np.mgrid[-15:16, -15:16]
    patch = img[int(cy / 5) - 15 : int(cy / 5) + 16, int(cx / 5) - 15 : int(cx / 5) + 16].astype(
        float
    )
    dist = np.hypot(yy, xx)
    ring = patch[np.abs(dist - r) < 2].mean()
    centre = patch[dist < 4].mean()
    assert ring > 3 * centre
