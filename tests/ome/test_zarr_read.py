"""Reading OME-Zarr 0.5 in place: physical coordinates, region reads, read-only, HTTP."""

from __future__ import annotations

import json
import pickle
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import dask
import numpy as np
import pytest
import tensorstore as ts
import xarray as xr
import zarr
from ome_zarr.io import parse_url
from ome_zarr.reader import Reader

from nanorepo.errors import InvalidImage
from nanorepo.ome._read import OmeZarrImage
from nanorepo.ome._source import ArraySource, Channel
from nanorepo.ome._write import write_image
from tests.ome.conftest import TOKEN, RangeServer
from tests.ome.test_zarr_write import microscopy

CHANNELS = (Channel("Nup96", color="FF00FF"), Channel("DAPI", color="0000FF", window=(5, 90)))


@pytest.fixture(scope="module")
def czyx(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    """A small 4D image written by nanorepo, with a 3-level pyramid."""
    data = microscopy((2, 3, 1100, 1300), np.uint16, seed=5)
    path = tmp_path_factory.mktemp("czyx") / "img.zarr"
    src = ArraySource(
        name="cell-7",
        data=data,
        dims=("c", "z", "y", "x"),
        pixel_sizes={"z": 100.0, "y": 20.0, "x": 25.0},
        channels=CHANNELS,
    )
    write_image(src, path, shard_bytes=4 << 20)
    return path, data


@pytest.fixture(scope="module")
def large(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    """64 MiB of incompressible pixels in 16 MiB shards: bytes read track bytes asked for."""
    data = np.random.default_rng(0).integers(0, 65535, (8, 2048, 2048), dtype=np.uint16)
    path = tmp_path_factory.mktemp("large") / "img.zarr"
    src = ArraySource(name="large", data=data, dims=("z", "y", "x"), pixel_sizes={"y": 10.0})
    write_image(src, path, shard_bytes=16 << 20, codec="none")
    return path, data


def file_reads() -> tuple[int, int]:
    """(read calls, bytes read) so far by tensorstore's local file kvstore in this process."""
    values = {
        m["name"].rsplit("/", 1)[1]: m["values"][0].get("value", 0)
        for m in ts.experimental_collect_matching_metrics("/tensorstore/kvstore/file/")
    }
    return int(values.get("read", 0)), int(values.get("bytes_read", 0))


def test_metadata_scales_units_and_channels(czyx: tuple[Path, np.ndarray]) -> None:
    img = OmeZarrImage.open(czyx[0])
    assert img.name == "cell-7"
    assert img.dims == ("c", "z", "y", "x")
    assert img.dtype == np.uint16
    assert img.levels == ((2, 3, 1100, 1300), (2, 3, 550, 650), (2, 3, 275, 325))
    assert img.scales[0] == {"c": 1.0, "z": 100.0, "y": 20.0, "x": 25.0}
    assert img.scales[2] == {"c": 1.0, "z": 100.0, "y": 80.0, "x": 100.0}
    assert img.translations[2] == {"c": 0.0, "z": 0.0, "y": 30.0, "x": 37.5}
    assert img.units == {"z": "nanometer", "y": "nanometer", "x": "nanometer"}
    assert [c.name for c in img.channels] == ["Nup96", "DAPI"]
    assert [c.color for c in img.channels] == ["FF00FF", "0000FF"]
    assert img.channels[1].window == (5.0, 90.0)
    assert img.chunk_shape(0) == (1, 1, 512, 512)
    assert img.shard_shape(0) == (1, 1, 1024, 1536)  # planes > 4 MiB: tiles


def test_pixels_match_ome_zarr_py_and_zarr_python_at_every_level(
    czyx: tuple[Path, np.ndarray],
) -> None:
    path, data = czyx
    img = OmeZarrImage.open(path)
    node = next(iter(Reader(parse_url(str(path)))()))
    group = zarr.open_group(path, mode="r")
    for level, theirs in enumerate(node.data):
        ours = img.to_xarray(level)
        expected = np.asarray(theirs)
        np.testing.assert_array_equal(ours.values, expected)
        np.testing.assert_array_equal(group[str(level)][:], expected)
        region = (1, slice(0, 2), slice(100, 300), slice(7, 260))
        np.testing.assert_array_equal(img.read_region(level, region), expected[region])
    np.testing.assert_array_equal(img.read_region(0, {"c": 0, "z": 1}), data[0, 1])


def test_xarray_coordinates_are_pixel_centres_in_nanometres(
    czyx: tuple[Path, np.ndarray],
) -> None:
    path, data = czyx
    img = OmeZarrImage.open(path)
    da0, da1 = img.to_xarray(0), img.to_xarray(1)
    assert da0.dims == ("c", "z", "y", "x")
    assert list(da0["c"].values) == ["Nup96", "DAPI"]
    np.testing.assert_allclose(da0["x"].values[:3], [0.0, 25.0, 50.0])
    np.testing.assert_allclose(da0["z"].values, [0.0, 100.0, 200.0])
    np.testing.assert_allclose(da1["y"].values[:3], [10.0, 50.0, 90.0])
    assert da0["x"].attrs["units"] == "nanometer"
    assert da0.attrs["units"]["y"] == "nanometer"
    assert da0.attrs["scale"]["x"] == 25.0
    assert da0.attrs["channel_colors"] == ["FF00FF", "0000FF"]
    assert da0.attrs["channel_windows"][1] == (5.0, 90.0)
    # Physical selection picks the same pixels whatever the level.
    x_nm, y_nm = 25.0 * 601, 20.0 * 401  # centre of level-1 pixel (200, 300) in level-0 units
    sel0 = da0.sel(c="DAPI", z=100.0, y=slice(y_nm - 20, y_nm + 1), x=slice(x_nm - 25, x_nm + 1))
    np.testing.assert_array_equal(sel0.values, data[1, 1, 400:402, 600:602])
    pix1 = da1.sel(c="DAPI", z=100.0).sel(y=y_nm - 10, x=x_nm - 12.5, method="nearest")
    assert int(pix1) == pytest.approx(data[1, 1, 400:402, 600:602].mean(), abs=0.51)


def test_dask_chunks_are_shards_not_storage_chunks(large: tuple[Path, np.ndarray]) -> None:
    path, data = large
    img = OmeZarrImage.open(path)
    arr = img.to_xarray(0).data
    assert img.shard_shape(0) == (2, 2048, 2048)
    assert arr.chunksize == (2, 2048, 2048)
    assert arr.npartitions == 4  # not 8 * 16 = 128 tasks for the 512x512 chunks
    assert float(img.to_xarray(0).mean()) == pytest.approx(data.mean())
    lazy = img.to_xarray(0, dask=False)
    assert not isinstance(lazy.variable._data, np.ndarray)  # nothing read yet
    np.testing.assert_array_equal(lazy.isel(z=3, y=slice(5, 9)).values, data[3, 5:9])


@pytest.mark.parametrize("how", ["read_region", "dask", "lazy"])
def test_a_region_reads_only_the_chunks_it_touches(
    large: tuple[Path, np.ndarray], how: str
) -> None:
    path, data = large
    img = OmeZarrImage.open(path)  # a fresh cache

    def read(z: slice | int, y: slice, x: slice) -> np.ndarray:
        if how == "read_region":
            return img.read_region(0, (z, y, x))
        da = img.to_xarray(0, dask=how == "dask")
        return np.asarray(da.isel(z=z, y=y, x=x).values)

    chunk_bytes = 512 * 512 * 2
    before = file_reads()
    one = read(3, slice(512, 1024), slice(1024, 1536))  # exactly one inner chunk
    middle = file_reads()
    eight = read(slice(4, 6), slice(0, 1024), slice(0, 1024))  # 2 x 2 x 2 inner chunks
    after = file_reads()
    np.testing.assert_array_equal(one, data[3, 512:1024, 1024:1536])
    np.testing.assert_array_equal(eight, data[4:6, :1024, :1024])
    bytes_one, bytes_eight = middle[1] - before[1], after[1] - middle[1]
    # One chunk plus the shard index (16 bytes per chunk); nowhere near the 8 MiB shard.
    assert chunk_bytes <= bytes_one < chunk_bytes + 4096
    assert 8 * chunk_bytes <= bytes_eight < 8 * chunk_bytes + 8192
    assert bytes_one + bytes_eight < data.nbytes / 10
    assert middle[0] - before[0] <= 2  # the index, then the chunk


def test_region_cost_does_not_grow_with_the_image(
    large: tuple[Path, np.ndarray], tmp_path: Path
) -> None:
    path, _ = large
    small = tmp_path / "small.zarr"
    data = np.random.default_rng(1).integers(0, 65535, (1, 1024, 1024), dtype=np.uint16)
    write_image(ArraySource(name="s", data=data, dims=("z", "y", "x")), small, codec="none")
    costs = []
    for p in (small, path):
        img = OmeZarrImage.open(p)
        before = file_reads()
        img.read_region(0, (0, slice(0, 512), slice(0, 512)))
        costs.append(file_reads()[1] - before[1])
    assert costs[1] <= costs[0] + 4096  # 64 MiB vs 2 MiB image: same cost for the same tile


def test_dask_array_pickles_for_distributed_workers(czyx: tuple[Path, np.ndarray]) -> None:
    path, data = czyx
    da = OmeZarrImage.open(path).to_xarray(0)
    clone = pickle.loads(pickle.dumps(da))
    with dask.config.set(scheduler="synchronous"):
        np.testing.assert_array_equal(clone.isel(c=1, z=2).values, data[1, 2])


def test_foreign_unsharded_zarr_python_image_opens_with_its_own_chunks(tmp_path: Path) -> None:
    path = tmp_path / "foreign.zarr"
    data = microscopy((3, 700, 900), np.uint16)
    group = zarr.open_group(path, mode="w", zarr_format=3)
    arr = group.create_array(
        "s0",
        data=data,
        chunks=(1, 256, 256),
        compressors=zarr.codecs.ZstdCodec(level=3),
        dimension_names=("z", "y", "x"),
    )
    assert arr.shards is None
    group.attrs["ome"] = {
        "version": "0.5",
        "multiscales": [
            {
                "axes": [
                    {"name": "z", "type": "space", "unit": "micrometer"},
                    {"name": "y", "type": "space", "unit": "micrometer"},
                    {"name": "x", "type": "space", "unit": "micrometer"},
                ],
                "datasets": [
                    {
                        "path": "s0",
                        "coordinateTransformations": [
                            {"type": "scale", "scale": [0.2, 0.05, 0.05]},
                            {"type": "translation", "translation": [1.0, 2.0, 3.0]},
                        ],
                    }
                ],
                "coordinateTransformations": [{"type": "scale", "scale": [2.0, 1.0, 1.0]}],
            }
        ],
    }
    img = OmeZarrImage.open(path)
    assert img.name == "foreign.zarr"
    assert img.units["x"] == "micrometer"
    assert img.scales[0]["z"] == pytest.approx(0.4)  # the multiscale-wide scale applies
    assert img.translations[0]["z"] == pytest.approx(2.0)
    assert [c.name for c in img.channels] == ["channel 0"]
    xa = img.to_xarray(0)
    assert xa.data.chunksize[1:] == (700, 900)  # whole 256-chunks grown to ~128 MiB
    assert xa.data.chunksize[0] == 3
    np.testing.assert_array_equal(xa.values, data)
    np.testing.assert_allclose(xa["x"].values[:2], [3.0, 3.05])


def test_falls_back_to_zarr_python_for_codecs_tensorstore_lacks(tmp_path: Path) -> None:
    from zarr.codecs.numcodecs import LZ4

    path = tmp_path / "lz4.zarr"
    data = microscopy((2, 300, 200), np.uint16)
    group = zarr.open_group(path, mode="w", zarr_format=3)
    with pytest.warns(UserWarning, match="Numcodecs codecs are not in the Zarr version 3"):
        group.create_array("0", data=data, chunks=(1, 128, 128), compressors=LZ4())
    group.attrs["ome"] = {
        "version": "0.5",
        "multiscales": [
            {
                "axes": [{"name": a, "type": "space"} for a in "zyx"],
                "datasets": [
                    {
                        "path": "0",
                        "coordinateTransformations": [{"type": "scale", "scale": [1, 1, 1]}],
                    }
                ],
            }
        ],
    }
    with pytest.raises(ValueError, match=r"numcodecs\.lz4"):  # tensorstore cannot
        ts.open(
            {"driver": "zarr3", "kvstore": {"driver": "file", "path": str(path / "0")}}
        ).result()
    img = OmeZarrImage.open(path)
    assert not img._arrays[0].uses_tensorstore
    np.testing.assert_array_equal(img.read_region(0, (1, slice(10, 20))), data[1, 10:20])
    np.testing.assert_array_equal(img.to_xarray(0).values, data)


def test_not_an_ome_zarr_image_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(InvalidImage, match=r"no zarr\.json"):
        OmeZarrImage.open(tmp_path)
    (tmp_path / "v04").mkdir()
    (tmp_path / "v04" / "zarr.json").write_text(
        json.dumps({"zarr_format": 3, "node_type": "group", "attributes": {"multiscales": [{}]}})
    )
    with pytest.raises(InvalidImage, match=r"NGFF 0\.4"):
        OmeZarrImage.open(tmp_path / "v04")
    with pytest.raises(InvalidImage, match="only local paths and http"):
        OmeZarrImage.open("s3://bucket/img.zarr")


READ_ONLY_SCRIPT = textwrap.dedent(
    """
    import os, sys
    import numpy as np
    from nanorepo.ome._read import OmeZarrImage

    path = sys.argv[1]
    try:
        open(os.path.join(path, "probe"), "w")
    except OSError as e:
        print("write refused:", e.strerror)
    else:
        sys.exit("the mount is writable; the test would prove nothing")
    img = OmeZarrImage.open(path)
    region = img.read_region(0, (1, 2, slice(0, 700), slice(0, 900)))
    total = float(img.to_xarray(1).sum())
    print("ok", int(region.sum()), total)
    """
)


def test_opens_and_reads_on_a_read_only_filesystem(
    czyx: tuple[Path, np.ndarray], tmp_path: Path
) -> None:
    """A real read-only bind mount in a private mount namespace (unshare), not chmod.

    chmod proves nothing for root, which these tests may run as; ``unshare -rm`` gives an
    unprivileged user a mount namespace in which ``mount --bind -o ro`` makes the kernel
    refuse every write (EROFS), exactly like the read-only mount of a user server.
    """
    src, data = czyx
    copy = tmp_path / "ro"
    shutil.copytree(src, copy)
    before = sorted(p.relative_to(copy) for p in copy.rglob("*"))
    probe = subprocess.run(
        ["unshare", "-rm", "sh", "-c", f"mount --bind -o ro {copy} {copy}"],
        capture_output=True,
        text=True,
    )
    if probe.returncode != 0:
        pytest.skip(f"cannot make a read-only bind mount here: {probe.stderr.strip()}")
    script = tmp_path / "ro_check.py"
    script.write_text(READ_ONLY_SCRIPT)
    result = subprocess.run(
        [
            "unshare",
            "-rm",
            "sh",
            "-c",
            f'mount --bind -o ro "$1" "$1" && exec "{sys.executable}" "{script}" "$1"',
            "sh",
            str(copy),
        ],
        capture_output=True,
        text=True,
        cwd=Path(__file__).parents[2],
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "write refused: Read-only file system" in result.stdout
    region_sum, level1_sum = result.stdout.split("\nok ")[1].split()
    assert int(region_sum) == int(data[1, 2, :700, :900].sum())
    assert float(level1_sum) == float(zarr.open_array(src / "1", mode="r")[:].sum())
    assert sorted(p.relative_to(copy) for p in copy.rglob("*")) == before


def test_reads_over_http_with_a_token(
    czyx: tuple[Path, np.ndarray], range_server: RangeServer
) -> None:
    src, data = czyx
    shutil.copytree(src, range_server.root / "img.zarr")
    url = f"{range_server.url}/img.zarr"
    with pytest.raises(InvalidImage, match="401"):
        OmeZarrImage.open(url)
    img = OmeZarrImage.open(url, headers={"Authorization": f"token {TOKEN}"})
    assert img.levels[0] == data.shape
    assert [c.name for c in img.channels] == ["Nup96", "DAPI"]
    range_server.requests.clear()
    tile = img.read_region(0, (0, 1, slice(512, 1024), slice(0, 512)))
    np.testing.assert_array_equal(tile, data[0, 1, 512:1024, :512])
    # The shard index by a suffix range, then the one chunk by a range: never whole shards.
    ranges = [r for _, r in range_server.requests]
    assert len(ranges) == 2
    assert all(r and r.startswith("bytes=") for r in ranges)
    assert any(r.startswith("bytes=-") for r in ranges if r)
    xa = img.to_xarray(2)
    np.testing.assert_array_equal(xa.values, zarr.open_array(src / "2", mode="r")[:])
    assert isinstance(xa, xr.DataArray)


def test_region_by_axis_name_rejects_unknown_axes(czyx: tuple[Path, np.ndarray]) -> None:
    img = OmeZarrImage.open(czyx[0])
    with pytest.raises(KeyError, match="'t'"):
        img.read_region(0, {"t": 0})
