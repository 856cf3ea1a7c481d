"""Deposit, revise, set/history and open, through the Repository on both catalog backends."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile
import yaml

from nanorepo.errors import Conflict, ImageNotFound, InvalidInput
from nanorepo.repository import Repository
from tests.conftest import METADATA, write_ome_tiff


def _tree_bytes(top: Path) -> dict[str, int]:
    return {str(p.relative_to(top)): p.stat().st_size for p in top.rglob("*") if p.is_file()}


def test_deposit_open_and_read_back(repo: Repository, ome_tiff: Path, metadata_file: Path) -> None:
    data = tifffile.imread(ome_tiff)
    res = repo.deposit([ome_tiff], title="Nuclear pores, test", metadata=metadata_file)
    assert res.accession.startswith("S-NANO")
    assert res.version == 1
    assert res.images == ["cell1"]

    ds = repo.open(res.accession)
    assert ds.ref == f"{res.accession}@v1"
    assert ds.title == "Nuclear pores, test"
    (im,) = ds.images
    assert im.dims == ("z", "y", "x")
    assert im.shape == data.shape
    assert im.pixel_sizes == pytest.approx({"z": 100.0, "y": 20.0, "x": 20.0})
    da = im.to_xarray()
    assert da.dims == ("z", "y", "x")
    np.testing.assert_array_equal(da.values, data)
    # Physical coordinates in nanometres.
    assert float(da.x[1] - da.x[0]) == pytest.approx(20.0)
    assert float(da.z[1] - da.z[0]) == pytest.approx(100.0)
    # A region in physical units.
    region = da.sel(x=slice(200, 600), y=slice(0, 400)).isel(z=1).values
    np.testing.assert_array_equal(region, data[1, :21, 10:31])

    shown = repo.show(res.accession)
    assert shown["metadata"]["biosample"]["organism"] == "Homo sapiens"
    assert shown["metadata"]["images"]["cell1"]["acquisition"]["technique"] == "STED"
    assert shown["mutable"]["license"] == "CC-BY-4.0"
    assert Path(shown["images"][0]["storage_path"]).is_dir()
    roles = {f["role"] for f in shown["files"]}
    assert roles == {"original", "ome-xml"}
    orig = next(f for f in shown["files"] if f["role"] == "original")
    assert Path(orig["storage_path"]).read_bytes() == ome_tiff.read_bytes()
    assert repo.verify(res.accession)[0].ok


def test_same_deposit_twice_is_refused(
    sqlite_repo: Repository, ome_tiff: Path, metadata_file: Path
) -> None:
    res = sqlite_repo.deposit([ome_tiff], title="T", metadata=metadata_file)
    with pytest.raises(Conflict, match=f"deposited already as {res.accession}"):
        sqlite_repo.deposit([ome_tiff], title="T", metadata=metadata_file)


def test_metadata_only_revision_shares_images_and_writes_little(
    repo: Repository, tmp_path: Path, metadata_file: Path
) -> None:
    big = tmp_path / "inputs" / "big.ome.tif"
    write_ome_tiff(big, shape=(8, 1024, 1024))
    res = repo.deposit([big], title="Big", metadata=metadata_file)
    ds_dir = Path(repo.show(res.accession)["path"])
    before = _tree_bytes(ds_dir)

    meta2 = {**METADATA, "biosample": {"organism": "Homo sapiens", "cell_line": "HeLa"}}
    m2 = tmp_path / "inputs" / "meta2.yaml"
    m2.write_text(yaml.safe_dump(meta2))
    rev = repo.revise(res.accession, metadata=m2, note="cell line corrected")
    assert rev.version == 2
    after = _tree_bytes(ds_dir)
    new = {k: v for k, v in after.items() if k not in before}
    assert all(k.startswith("versions/v2/") for k in new), new
    assert sum(new.values()) < 1_000_000
    assert {k: after[k] for k in before} == before  # nothing earlier was touched

    v1, v2 = repo.open(f"{res.accession}@v1"), repo.open(res.accession)
    assert v1.metadata["biosample"]["cell_line"] == "U2OS"
    assert v2.metadata["biosample"]["cell_line"] == "HeLa"
    assert v1.images[0].path == v2.images[0].path  # shared, not copied
    np.testing.assert_array_equal(
        v1.images[0].to_xarray(1).values, v2.images[0].to_xarray(1).values
    )
    for r in repo.verify(res.accession, all_versions=True):
        assert r.ok, r.problems


def test_revision_adds_and_replaces_images(
    repo: Repository, tmp_path: Path, metadata_file: Path
) -> None:
    a = tmp_path / "inputs" / "a.ome.tif"
    b = tmp_path / "inputs" / "b.ome.tif"
    write_ome_tiff(a, seed=1)
    write_ome_tiff(b, seed=2)
    res = repo.deposit([a], title="AB", metadata=metadata_file)
    rev = repo.revise(res.accession, add=[b], note="second cell")
    assert rev.images == ["a", "b"]
    a2 = tmp_path / "inputs" / "a2.ome.tif"
    fixed = write_ome_tiff(a2, seed=3)
    rev3 = repo.revise(res.accession, replace={"a": a2}, note="a re-imaged")
    assert rev3.version == 3
    v3 = repo.open(f"{res.accession}@v3")
    np.testing.assert_array_equal(v3["a"].to_xarray().values, fixed)
    assert v3["b"].path == repo.open(f"{res.accession}@v2")["b"].path
    assert "images/v3/a.ome.zarr" in str(v3["a"].path)
    with pytest.raises(ImageNotFound):
        repo.revise(res.accession, replace={"zzz": a2})
    with pytest.raises(InvalidInput, match="nothing to revise"):
        repo.revise(res.accession)
    with pytest.raises(InvalidInput, match="bare accession"):
        repo.revise(f"{res.accession}@v1", add=[a2])


def test_set_and_history(repo: Repository, ome_tiff: Path, metadata_file: Path) -> None:
    res = repo.deposit([ome_tiff], title="Pores", metadata=metadata_file)
    repo.set_metadata(
        res.accession, {"title": "Nuclear pores", "keywords": "npc,sted"}, reason="clearer"
    )
    repo.set_metadata(res.accession, {"license": "CC0-1.0"}, reason="waived")
    hist = repo.history(res.accession)
    title = [h for h in hist if h["key"] == "title"]
    assert [(h["old"], h["new"]) for h in title] == [(None, "Pores"), ("Pores", "Nuclear pores")]
    assert title[-1]["who"] == "alice"
    assert title[-1]["reason"] == "clearer"
    # Search sees the new title and licence at once.
    rows, _ = repo.search("nuclear license:cc0-1.0")
    assert [r["accession"] for r in rows] == [res.accession]
    # Mutable metadata never changes the sealed version.
    assert repo.open(res.accession).metadata == repo.open(f"{res.accession}@v1").metadata


def test_embargoed_dataset_lives_in_its_own_area(
    sqlite_repo: Repository, ome_tiff: Path, metadata_file: Path
) -> None:
    from datetime import date

    res = sqlite_repo.deposit(
        [ome_tiff], title="Embargoed", metadata=metadata_file, embargo_until=date(2099, 1, 1)
    )
    shown = sqlite_repo.show(res.accession)
    assert shown["access"] == "embargoed"
    assert Path(shown["path"]).parent.name == "embargoed"
    assert not (sqlite_repo.settings.storage / "public" / res.accession).exists()


def test_open_from_storage_alone(
    sqlite_repo: Repository, ome_tiff: Path, metadata_file: Path, tmp_path: Path
) -> None:
    """A user server mounts only the storage: open works without the catalog."""
    import nanorepo
    from nanorepo.settings import Settings

    res = sqlite_repo.deposit([ome_tiff], title="Mount", metadata=metadata_file)
    env = {
        "NANOREPO_STORAGE": str(sqlite_repo.settings.storage),
        "NANOREPO_DATABASE_URL": f"sqlite:///{sqlite_repo.settings.home / 'absent.sqlite'}",
    }
    ds = nanorepo.open(res.accession, settings=Settings.from_env(tmp_path / "server-home", env=env))
    assert ds.version == 1
    assert ds.images[0].shape == (3, 96, 80)


def test_vendor_files_deposit_every_scene_and_keep_the_originals(
    repo: Repository, metadata_file: Path
) -> None:
    """A 3-scene CZI and a 4-channel ND2 (tests/data/formats, with their licences): every
    scene an image with its pixels, pixel sizes and channels, the files kept as
    originals, the objective in the sealed metadata."""
    import shutil

    import nd2

    formats = Path(__file__).resolve().parent.parent / "data" / "formats"
    czi, nd = (shutil.copy(formats / f, metadata_file.parent / f)
               for f in ("zeiss_3scenes_mosaic_c1.czi", "nikon_ti2_4ch_256x256.nd2"))  # fmt: skip
    meta = yaml.safe_load(metadata_file.read_text())
    meta["image_acquisition"]["technique"] = "widefield"  # what both files say
    metadata_file.write_text(yaml.safe_dump(meta))
    res = repo.deposit([Path(czi), Path(nd)], title="Vendor files", metadata=metadata_file)
    assert res.images == ["zeiss_3scenes_mosaic_c1_s0", "zeiss_3scenes_mosaic_c1_s1",
                          "zeiss_3scenes_mosaic_c1_s2", "nikon_ti2_4ch_256x256"]  # fmt: skip
    images = {im.name: im for im in repo.open(res.accession).images}
    assert [images[f"zeiss_3scenes_mosaic_c1_s{i}"].shape for i in range(3)] == [
        (122, 295), (64, 64), (237, 352)]  # fmt: skip
    nikon = images["nikon_ti2_4ch_256x256"]
    assert (nikon.dims, nikon.shape) == (("c", "y", "x"), (4, 256, 256))
    assert nikon.pixel_sizes == pytest.approx({"y": 323.390343, "x": 323.390343})
    np.testing.assert_array_equal(nikon.to_xarray().values, nd2.imread(nd))
    shown = repo.show(res.accession)
    sealed = shown["metadata"]["images"]["nikon_ti2_4ch_256x256"]
    assert sealed["acquisition"]["objective"]["model"] == "Plan Apo λ 20x"
    assert [c["name"] for c in sealed["channels"]] == ["Mono", "DAPI", "FITC BP", "TRITC BP"]
    originals = {Path(f["storage_path"]).name: f for f in shown["files"] if f["role"] == "original"}
    assert set(originals) == {"zeiss_3scenes_mosaic_c1.czi", "nikon_ti2_4ch_256x256.nd2"}
    kept = Path(originals["nikon_ti2_4ch_256x256.nd2"]["storage_path"]).read_bytes()
    assert kept == Path(nd).read_bytes()
    assert repo.verify(res.accession)[0].ok
