"""Writing OME-Zarr 0.5: valid for the official schemas, ome-zarr-models and ome-zarr-py."""

from __future__ import annotations

import json
import math
import tracemalloc
from pathlib import Path
from typing import Any

import jsonschema
import ngff_zarr
import numpy as np
import pytest
import zarr
from ome_zarr.io import parse_url
from ome_zarr.reader import Reader
from ome_zarr_models.v05 import Image as OmeImage

from nanorepo.errors import InvalidImage, InvalidInput
from nanorepo.ome._pyramid import downsample_yx, plan_levels
from nanorepo.ome._source import ArraySource, Channel
from nanorepo.ome._write import write_image

PIXEL_SIZES = {"t": 2.5, "z": 120.0, "y": 21.5, "x": 21.5}


def microscopy(shape: tuple[int, ...], dtype: Any, seed: int = 0) -> np.ndarray:
    """Structure (a blurred bright blob and stripes) plus Poisson noise, in ``dtype``."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0 : shape[-2], 0 : shape[-1]]
    base = 20 + 150 * np.exp(-(((yy - shape[-2] / 3) ** 2 + (xx - shape[-1] / 2) ** 2) / 5e3))
    base = base + 40 * (np.sin(yy / 9.0) > 0.7)
    data = rng.poisson(np.broadcast_to(base, shape)).astype(np.float64)
    if np.dtype(dtype).kind == "f":
        return (data / 7.0).astype(dtype)
    return np.clip(data, 0, np.iinfo(dtype).max).astype(dtype)


def reference_downsample(a: np.ndarray) -> np.ndarray:
    """2×2 mean over y, x by another route: edge-replicate to even, reshape, mean, rint."""
    pad = [(0, 0)] * (a.ndim - 2) + [(0, a.shape[-2] % 2), (0, a.shape[-1] % 2)]
    p = np.pad(a.astype(np.float64), pad, mode="edge")
    *lead, ny, nx = p.shape
    mean = p.reshape(*lead, ny // 2, 2, nx // 2, 2).mean(axis=(-3, -1))
    return np.rint(mean).astype(a.dtype) if a.dtype.kind in "ui" else mean.astype(a.dtype)


def source(data: np.ndarray, dims: tuple[str, ...], **kw: Any) -> ArraySource:
    sizes = {a: v for a, v in PIXEL_SIZES.items() if a in dims}
    return ArraySource(name="cell-1", data=data, dims=dims, pixel_sizes=sizes, **kw)


def group_attributes(path: Path) -> dict[str, Any]:
    meta = json.loads((path / "zarr.json").read_text())
    assert meta["zarr_format"] == 3
    assert meta["node_type"] == "group"
    return dict(meta["attributes"])


CASES = [
    pytest.param((1100, 1301), ("y", "x"), np.uint8, 1 << 20, id="yx-uint8-odd"),
    pytest.param((3, 1030, 601), ("z", "y", "x"), np.uint16, 2 << 20, id="zyx-uint16-odd"),
    pytest.param((2, 2, 700, 1025), ("c", "z", "y", "x"), np.float32, 8 << 20, id="czyx-f32"),
    pytest.param(
        (2, 2, 3, 600, 530), ("t", "c", "z", "y", "x"), np.uint16, 4 << 20, id="tczyx-uint16"
    ),
    # Planes larger than a shard: level 0 written tile by tile, lower levels from the disk.
    pytest.param((2, 1300, 1500), ("z", "y", "x"), np.uint16, 1 << 20, id="zyx-tiled"),
]


@pytest.mark.parametrize(("shape", "dims", "dtype", "shard_bytes"), CASES)
def test_written_image_is_valid_and_read_back_identically_by_ome_zarr_py(
    tmp_path: Path, shape: tuple[int, ...], dims: tuple[str, ...], dtype: Any, shard_bytes: int
) -> None:
    data = microscopy(shape, dtype)
    out = tmp_path / "img.zarr"
    written = write_image(source(data, dims), out, shard_bytes=shard_bytes)

    # (a) the official NGFF 0.5 JSON schemas (strict: name, type and metadata required).
    attrs = group_attributes(out)
    ngff_zarr.validate(attrs, version="0.5", model="image", strict=True)
    assert attrs == written.attributes
    # (b) ome-zarr-models: metadata and arrays consistent.
    model = OmeImage.from_zarr(zarr.open_group(out, mode="r"))
    assert len(model.ome_attributes.multiscales[0].datasets) == len(written.levels)
    # (c) ome-zarr-py: identical pixels and scales at every level.
    node = next(iter(Reader(parse_url(str(out)))()))
    assert len(node.data) == len(written.levels) >= 2
    transforms = node.metadata["coordinateTransformations"]
    expected = data
    for k, (level, level_data) in enumerate(zip(written.levels, node.data, strict=True)):
        if k:
            expected = reference_downsample(expected)
        got = np.asarray(level_data)
        assert got.dtype == data.dtype
        assert got.shape == expected.shape == level.shape
        if data.dtype.kind == "f":
            np.testing.assert_allclose(got, expected, rtol=1e-6)
        else:
            np.testing.assert_array_equal(got, expected)
        scale = next(t["scale"] for t in transforms[k] if t["type"] == "scale")
        want = [1.0 if a == "c" else PIXEL_SIZES[a] * (2**k if a in "yx" else 1) for a in dims]
        assert scale == pytest.approx(want)
    assert max(written.levels[-1].shape[-2:]) <= 512 < max(written.levels[-2].shape[-2:])


def test_axes_units_omero_and_pyramid_metadata(tmp_path: Path) -> None:
    data = microscopy((2, 2, 3, 600, 530), np.uint16)
    channels = (
        Channel(name="Nup96-AF647", color="ff00ff", window=(10.0, 300.0)),
        Channel(name="DAPI", color="0000FF"),
    )
    written = write_image(
        source(data, ("t", "c", "z", "y", "x"), channels=channels), tmp_path / "i"
    )
    ome = group_attributes(tmp_path / "i")["ome"]
    assert ome["version"] == "0.5"
    ms = ome["multiscales"][0]
    assert ms["name"] == "cell-1"
    assert ms["type"] == "mean"
    assert ms["axes"] == [
        {"name": "t", "type": "time", "unit": "second"},
        {"name": "c", "type": "channel"},
        {"name": "z", "type": "space", "unit": "nanometer"},
        {"name": "y", "type": "space", "unit": "nanometer"},
        {"name": "x", "type": "space", "unit": "nanometer"},
    ]
    # Level 1: y/x doubled, pixel centres shifted by half a level-0 pixel; t, c, z unchanged.
    assert ms["datasets"][1]["coordinateTransformations"] == [
        {"type": "scale", "scale": [2.5, 1.0, 120.0, 43.0, 43.0]},
        {"type": "translation", "translation": [0.0, 0.0, 0.0, 10.75, 10.75]},
    ]
    omero = ome["omero"]
    first, second = omero["channels"]
    assert first["label"] == "Nup96-AF647"
    assert first["color"] == "FF00FF"
    assert first["active"] is True
    assert first["window"] == {"min": 0.0, "max": 65535.0, "start": 10.0, "end": 300.0}
    # Computed: robust percentiles of the channel's pixels.
    lo, hi = np.percentile(data[:, 1], [0.1, 99.9])
    assert second["window"]["start"] == pytest.approx(lo, abs=3)
    assert second["window"]["end"] == pytest.approx(hi, abs=6)
    assert omero["rdefs"] == {"defaultT": 0, "defaultZ": 1, "model": "color"}
    assert written.windows[0] == (10.0, 300.0)


def test_layout_is_sharded_with_512_tiles_and_blosc_zstd(tmp_path: Path) -> None:
    data = microscopy((4, 1100, 1300), np.uint16)
    written = write_image(source(data, ("z", "y", "x")), tmp_path / "i", shard_bytes=10 << 20)
    arr = zarr.open_array(tmp_path / "i" / "0", mode="r")
    assert arr.metadata.dimension_names == ("z", "y", "x")
    assert arr.chunks == (1, 512, 512) == written.levels[0].chunk_shape
    assert arr.shards == written.levels[0].shard_shape == (2, 1536, 1536)
    meta = json.loads((tmp_path / "i" / "0" / "zarr.json").read_text())
    (sharding,) = meta["codecs"]
    assert sharding["name"] == "sharding_indexed"
    cfg = sharding["configuration"]
    assert cfg["index_codecs"][-1] == {"name": "crc32c"}
    blosc = cfg["codecs"][-1]
    assert blosc["name"] == "blosc"
    assert (
        blosc["configuration"] | {"cname": "zstd", "clevel": 1, "shuffle": "shuffle"}
        == blosc["configuration"]
    )
    # 2 shards along z for level 0, each file holding whole planes; compressed, not raw.
    shards = sorted(
        p for p in (tmp_path / "i" / "0").rglob("*") if p.is_file() and p.name != "zarr.json"
    )
    assert len(shards) == 2
    assert sum(p.stat().st_size for p in shards) < data.nbytes / 1.3


def test_lower_levels_gather_whole_shards_of_the_level_above() -> None:
    for shape, dtype in [
        ((7, 5, 33, 4096, 4096), np.uint16),
        ((300, 2000, 3000), np.uint8),
        ((3, 9000, 700), np.float32),
        ((40000, 41000), np.uint16),
        ((1, 1, 1, 1, 1), np.uint8),
    ]:
        plan = plan_levels(shape, dtype, shard_bytes=64 << 20)
        itemsize = np.dtype(dtype).itemsize
        for k, (shp, chunk, shard) in enumerate(plan):
            assert chunk[:-2] == (1,) * (len(shape) - 2)
            assert chunk[-2:] == (min(512, shp[-2]), min(512, shp[-1]))
            assert all(s % c == 0 for s, c in zip(shard, chunk, strict=True))
            assert math.prod(shard) * itemsize <= max(64 << 20, math.prod(chunk) * itemsize)
            if k:
                prev = plan[k - 1][2]
                for e, p, n in zip(shard[:-2], prev[:-2], shp[:-2], strict=True):
                    assert e >= n or e % p == 0
        assert max(plan[-1][0][-2:]) <= 512


def test_memory_stays_within_budget_and_the_image_is_never_read_whole(tmp_path: Path) -> None:
    data = microscopy((8, 1024, 1024), np.uint16)  # 16 MiB
    reads: list[int] = []

    class Recording(ArraySource):
        def read(self, region: tuple[slice, ...]) -> np.ndarray:
            out = np.array(self.data[region])  # a copy, as a file reader makes
            reads.append(out.nbytes)
            return out

    budget = 4 << 20
    src = Recording(name="big", data=data, dims=("z", "y", "x"))
    tracemalloc.start()
    try:
        write_image(src, tmp_path / "i", memory_budget_bytes=budget)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert sum(reads) == data.nbytes  # every pixel read exactly once
    assert max(reads) <= budget // 4
    assert peak < budget
    np.testing.assert_array_equal(zarr.open_array(tmp_path / "i" / "0", mode="r")[:], data)


def test_sparse_bright_structures_get_a_window_that_shows_them(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    data = rng.poisson(5.0, (2048, 2048)).astype(np.uint16)
    spots = rng.integers(0, 2048, (2, 12000))
    data[spots[0], spots[1]] = 4000  # single molecules: ~0.3 % of the pixels
    written = write_image(source(data, ("y", "x")), tmp_path / "i")
    lowest = zarr.open_array(tmp_path / "i" / str(len(written.levels) - 1), mode="r")[:]
    start, end = written.windows[0]
    assert start <= 2
    # The 99.9th percentile of the full-resolution pixels, not of the averaged lowest level.
    assert end >= 1000 > np.percentile(lowest, 99.9)


def test_downsample_fast_path_matches_tensorstore_bit_for_bit() -> None:
    import tensorstore as ts

    rng = np.random.default_rng(0)
    for dtype in (np.uint8, np.uint16):
        info = np.iinfo(dtype)
        # 150 rows: two whole 64-row strips and a partial one, in each of 3 planes.
        a = rng.integers(0, info.max, (3, 150, 96), dtype=dtype, endpoint=True)
        a[0] = rng.integers(0, 4, (150, 96))  # many exact .5 ties
        ref = ts.downsample(ts.array(a), [1, 2, 2], method="mean").read().result()
        np.testing.assert_array_equal(downsample_yx(a), ref)
        np.testing.assert_array_equal(downsample_yx(a), reference_downsample(a))
    odd = rng.integers(0, 1000, (5, 7), dtype=np.uint16)
    np.testing.assert_array_equal(downsample_yx(odd), reference_downsample(odd))
    assert downsample_yx(np.array([[1, 2], [2, 2]], np.uint16))[0, 0] == 2  # 1.75
    assert downsample_yx(np.array([[1, 2], [1, 2]], np.uint16))[0, 0] == 2  # 1.5: to even
    assert downsample_yx(np.array([[2, 3], [2, 3]], np.uint16))[0, 0] == 2  # 2.5: to even


@pytest.mark.parametrize("codec", ["blosc-lz4", "zstd", "none"])
def test_other_codecs_round_trip(tmp_path: Path, codec: str) -> None:
    data = microscopy((2, 600, 300), np.uint16)
    write_image(source(data, ("z", "y", "x")), tmp_path / "i", codec=codec)
    np.testing.assert_array_equal(zarr.open_array(tmp_path / "i" / "0", mode="r")[:], data)


def test_progress_reports_every_byte_once(tmp_path: Path) -> None:
    calls: list[tuple[int, int]] = []
    data = microscopy((3, 1100, 700), np.uint16)
    written = write_image(
        source(data, ("z", "y", "x")),
        tmp_path / "i",
        shard_bytes=2 << 20,
        progress=lambda d, t: calls.append((d, t)),
    )
    total = sum(math.prod(lv.shape) for lv in written.levels) * 2
    assert len(calls) > 3
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)
    assert calls[-1] == (total, total)


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [
        ({"data": np.zeros((8, 8), np.uint16), "dims": ("x", "y")}, "must be a subset"),
        ({"dims": ("c", "y", "x"), "channels": (Channel("a"),)}, "1 channels described for 3"),
        ({"dims": ("c", "y", "x"), "channels": (Channel("a", color="red"),) * 3}, "RRGGBB"),
        ({"name": "../escape"}, "must match"),
        ({"pixel_sizes": {"y": -1.0}}, "positive"),
    ],
)
def test_bad_sources_are_refused_before_anything_is_written(
    tmp_path: Path, kwargs: dict[str, Any], problem: str
) -> None:
    args: dict[str, Any] = {
        "name": "ok",
        "data": np.zeros((3, 8, 8), np.uint16),
        "dims": ("z", "y", "x"),
    }
    args.update(kwargs)
    with pytest.raises(InvalidImage, match=problem):
        write_image(ArraySource(**args), tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_existing_output_is_never_overwritten(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("x")
    with pytest.raises(InvalidInput, match="not an empty directory"):
        write_image(source(np.zeros((8, 8), np.uint8), ("y", "x")), tmp_path / "out")
    assert (tmp_path / "out" / "keep.txt").read_text() == "x"
    with pytest.raises(InvalidInput, match="unknown codec"):
        write_image(source(np.zeros((8, 8), np.uint8), ("y", "x")), tmp_path / "new", codec="gzip")
    assert not (tmp_path / "new").exists()


def test_a_failing_source_leaves_nothing_behind(tmp_path: Path) -> None:
    class Broken(ArraySource):
        calls = 0

        def read(self, region: tuple[slice, ...]) -> np.ndarray:
            Broken.calls += 1
            if Broken.calls == 3:
                raise OSError("disk went away")
            return super().read(region)

    src = Broken(name="b", data=microscopy((6, 600, 600), np.uint16), dims=("z", "y", "x"))
    with pytest.raises(OSError, match="disk went away"):
        write_image(src, tmp_path / "out", shard_bytes=1 << 20)
    assert Broken.calls == 3
    assert not (tmp_path / "out").exists()


def test_schema_validation_would_catch_a_broken_attribute(tmp_path: Path) -> None:
    """The validation used above is not vacuous."""
    write_image(source(np.zeros((8, 8), np.uint8), ("y", "x")), tmp_path / "i")
    attrs = group_attributes(tmp_path / "i")
    del attrs["ome"]["multiscales"][0]["type"]
    ngff_zarr.validate(attrs, version="0.5", model="image", strict=False)
    with pytest.raises(jsonschema.ValidationError):
        ngff_zarr.validate(attrs, version="0.5", model="image", strict=True)
