"""Every accepted input kind deposits and reads back exactly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import tifffile
import zarr

from nanorepo.repository import Repository


def _data(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.poisson(300, shape).astype(np.uint16)


def test_imagej_hyperstack(sqlite_repo: Repository, tmp_path: Path, metadata_file: Path) -> None:
    data = _data((3, 2, 64, 70))  # ZCYX
    p = tmp_path / "hyper.tif"
    tifffile.imwrite(
        p, data, imagej=True, resolution=(1 / 0.025, 1 / 0.025),
        metadata={"axes": "ZCYX", "spacing": 0.15, "unit": "um"},
    )  # fmt: skip
    res = sqlite_repo.deposit([p], title="ImageJ", metadata=metadata_file)
    im = sqlite_repo.open(res.accession).images[0]
    assert im.dims == ("c", "z", "y", "x")
    assert im.pixel_sizes == pytest.approx({"z": 150.0, "y": 25.0, "x": 25.0})
    np.testing.assert_array_equal(im.to_xarray().values, data.transpose(1, 0, 2, 3))


def test_plane_directory_with_pattern(
    sqlite_repo: Repository, tmp_path: Path, metadata_file: Path
) -> None:
    data = _data((2, 3, 40, 50), seed=1)  # CZYX
    d = tmp_path / "planes"
    d.mkdir()
    for c in range(2):
        for z in range(3):
            tifffile.imwrite(d / f"cellA_c{c:02d}_z{z:03d}.tif", data[c, z])
    meta = (
        metadata_file.read_text()
        + "images:\n  cellA:\n    pixel_sizes_nm: {z: 120, y: 30, x: 30}\n"
    )
    m = tmp_path / "m.yaml"
    m.write_text(meta)
    res = sqlite_repo.deposit([d], title="Planes", metadata=m, pattern="{name}_c{c}_z{z}.tif")
    ds = sqlite_repo.open(res.accession)
    (im,) = ds.images
    assert im.name == "cellA"
    assert im.dims == ("c", "z", "y", "x")
    assert im.pixel_sizes == {"z": 120.0, "y": 30.0, "x": 30.0}
    np.testing.assert_array_equal(im.to_xarray().values, data)
    originals = [f for f in sqlite_repo.show(res.accession)["files"] if f["role"] == "original"]
    assert len(originals) == 6
    kept = next(f for f in originals if f["name"] == "originals/planes/cellA_c01_z002.tif")
    assert Path(kept["storage_path"]).read_bytes() == (d / "cellA_c01_z002.tif").read_bytes()


def test_existing_ome_zarr_is_rewritten_into_our_layout(
    sqlite_repo: Repository, tmp_path: Path, metadata_file: Path
) -> None:
    from ome_zarr.io import parse_url
    from ome_zarr.writer import write_image

    data = _data((2, 600, 700), seed=2)
    path = tmp_path / "theirs.ome.zarr"
    root = zarr.open_group(parse_url(path, mode="w").store, mode="w")
    write_image(
        data,
        root,
        axes="zyx",
        axes_units={"z": "micrometer", "y": "micrometer", "x": "micrometer"},
        scale={"z": 0.2, "y": 0.04, "x": 0.04},
        scale_factors=[2, 4],
    )
    res = sqlite_repo.deposit([path], title="From OME-Zarr", metadata=metadata_file)
    im = sqlite_repo.open(res.accession).images[0]
    assert im.pixel_sizes == pytest.approx({"z": 200.0, "y": 40.0, "x": 40.0})
    np.testing.assert_array_equal(im.to_xarray().values, data)
    assert len(im.levels) == 2  # our own pyramid (700 px -> 350 px)
    assert sqlite_repo.verify(res.accession)[0].ok


THUNDERSTORM = (
    '"id","frame","x [nm]","y [nm]","sigma [nm]","intensity [photon]","offset [photon]",'
    '"bkgstd [photon]","uncertainty [nm]"\n'
)


def test_localisation_tables(sqlite_repo: Repository, tmp_path: Path, metadata_file: Path) -> None:
    rng = np.random.default_rng(3)
    n = 500
    x, y = rng.uniform(0, 5000, n), rng.uniform(0, 5000, n)
    ts = tmp_path / "storm.csv"
    ts.write_text(
        THUNDERSTORM
        + "".join(
            f"{i + 1},{i // 10 + 1},{x[i]:.2f},{y[i]:.2f},120.0,{1000 + i},10.0,5.0,{8 + i % 5}.0\n"
            for i in range(n)
        )
    )
    plain = tmp_path / "plain.tsv"
    plain.write_text(
        "x_nm\ty_nm\tz_nm\tframe\tphotons\n"
        + "".join(f"{x[i]:.1f}\t{y[i]:.1f}\t{i % 50}\t{i}\t{900 + i}\n" for i in range(n))
    )
    res = sqlite_repo.deposit([ts, plain], title="SMLM tables", metadata=metadata_file)
    shown = sqlite_repo.show(res.accession)
    tables = {f["name"]: f for f in shown["files"] if f["role"] == "localisations"}
    assert set(tables) == {"storm.parquet", "plain.parquet"}
    t = pq.read_table(tables["storm.parquet"]["storage_path"])
    assert t.num_rows == n
    np.testing.assert_allclose(np.sort(t["x_nm"].to_numpy()), np.sort(np.round(x, 2)))
    assert "z_nm" in pq.read_table(tables["plain.parquet"]["storage_path"]).column_names
    assert shown["metadata"]["localisation_tables"]["storm"]["software"]
    assert shown["images"] == []
    assert sqlite_repo.verify(res.accession)[0].ok
