"""Directories of 2D TIFF planes: patterns, grids, missing and inconsistent planes, lazy reads."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile

from nanorepo.errors import InvalidImage, InvalidInput
from nanorepo.ome._harvest import open_source, open_sources
from nanorepo.ome._planes import open_planes
from nanorepo.ome._source import ImageSource

MB = {"photometric": "minisblack"}


def write_planes(
    directory: Path,
    shape: tuple[int, int, int, int, int] = (2, 2, 3, 12, 14),
    *,
    name: str = "cell1",
    fmt: str = "{name}_t{t:03d}_c{c:02d}_z{z:03d}.tif",
    skip: tuple[int, int, int] | None = None,
    first_index: int = 0,
    seed: int = 0,
) -> np.ndarray:
    """Write one plane file per (t, c, z); every other plane zlib-compressed."""
    directory.mkdir(parents=True, exist_ok=True)
    data = np.random.default_rng(seed).integers(0, 60000, shape, dtype=np.uint16)
    k = first_index
    for t in range(shape[0]):
        for c in range(shape[1]):
            for z in range(shape[2]):
                if (t, c, z) == skip:
                    continue
                file = directory / fmt.format(name=name, t=t + k, c=c + k, z=z + k)
                tifffile.imwrite(
                    file,
                    data[t, c, z],
                    compression="zlib" if (t + c + z) % 2 else None,
                    resolution=(1e7 / 30, 1e7 / 30),  # 30 nm pixels, per centimetre
                    resolutionunit="CENTIMETER",
                    **MB,
                )
    return data


def test_default_pattern(tmp_path: Path) -> None:
    data = write_planes(tmp_path / "stack")
    src = open_source(tmp_path / "stack")
    assert isinstance(src, ImageSource)
    assert src.name == "cell1"
    assert src.dims == ("t", "c", "z", "y", "x")
    assert src.shape == data.shape
    assert src.dtype == np.uint16
    assert src.pixel_sizes == pytest.approx({"y": 30.0, "x": 30.0})
    assert src.missing_pixel_sizes == ("t", "z")
    assert len(src.channels) == 2
    assert src.origin == (str(tmp_path / "stack"),)
    assert np.array_equal(src.read((slice(None),) * 5), data)
    region = (slice(1, 2), slice(0, 2), slice(1, 3), slice(2, 9), slice(5, 6))
    assert np.array_equal(src.read(region), data[region])


def test_default_pattern_accepts_any_order_and_subset(tmp_path: Path) -> None:
    data = write_planes(tmp_path / "d", (1, 2, 3, 5, 6), fmt="{name}_z{z}_c{c}.tiff")
    src = open_planes(tmp_path / "d")
    assert (src.dims, src.shape) == (("c", "z", "y", "x"), (2, 3, 5, 6))
    assert np.array_equal(src.read((slice(None),) * 4), data[0])


def test_custom_pattern_with_one_based_indices(tmp_path: Path) -> None:
    data = write_planes(
        tmp_path / "d", (1, 2, 4, 6, 5), fmt="img-ch{c}-slice{z}.tif", first_index=1
    )
    src = open_source(tmp_path / "d", pattern="img-ch{c}-slice{z}.tif", name="stack")
    assert (src.name, src.dims, src.shape) == ("stack", ("c", "z", "y", "x"), (2, 4, 6, 5))
    assert np.array_equal(src.read((slice(None),) * 4), data[0])


def test_missing_plane_is_named(tmp_path: Path) -> None:
    write_planes(tmp_path / "d", skip=(1, 0, 2))
    with pytest.raises(InvalidImage, match=r"1 of 12 planes .* missing: t=1 c=0 z=2") as info:
        open_source(tmp_path / "d")
    assert str(tmp_path / "d") in str(info.value)


def test_missing_index_along_an_axis(tmp_path: Path) -> None:
    directory = tmp_path / "d"
    write_planes(directory, (1, 1, 4, 4, 4))
    (directory / "cell1_t000_c00_z001.tif").unlink()
    for f in directory.glob("*_z002.tif"):
        f.unlink()
    with pytest.raises(InvalidImage, match=r"2 of 4 planes .* missing: t=0 c=0 z=1"):
        open_planes(directory)


def test_planes_of_different_shape_or_type(tmp_path: Path) -> None:
    directory = tmp_path / "d"
    write_planes(directory, (1, 1, 3, 8, 8))
    tifffile.imwrite(directory / "cell1_t000_c00_z001.tif", np.zeros((8, 9), np.uint16), **MB)
    with pytest.raises(InvalidImage, match=r"differ in shape .*cell1_t000_c00_z001.tif \(8x9"):
        open_planes(directory)
    tifffile.imwrite(directory / "cell1_t000_c00_z001.tif", np.zeros((8, 8), np.float32), **MB)
    with pytest.raises(InvalidImage, match=r"float32"):
        open_planes(directory)


def test_a_plane_that_is_not_2d(tmp_path: Path) -> None:
    directory = tmp_path / "d"
    write_planes(directory, (1, 1, 2, 8, 8))
    tifffile.imwrite(directory / "cell1_t000_c00_z001.tif", np.zeros((2, 8, 8), np.uint16), **MB)
    with pytest.raises(InvalidImage, match="not a 2D plane"):
        open_planes(directory)


def test_several_images_in_one_directory(tmp_path: Path) -> None:
    directory = tmp_path / "d"
    a = write_planes(directory, (1, 1, 2, 4, 4), name="cellA", seed=1)
    b = write_planes(directory, (1, 2, 1, 4, 4), name="cellB", seed=2)
    with pytest.raises(InvalidImage, match="planes of 2 images: cellA, cellB") as info:
        open_source(directory)
    assert "--pattern 'cellA_t{t}_c{c}_z{z}.tif'" in str(info.value)
    sources = open_sources(directory)
    assert [s.name for s in sources] == ["cellA", "cellB"]
    assert np.array_equal(sources[0].read((slice(None),) * 3), a[0, 0])
    assert np.array_equal(sources[1].read((slice(None),) * 3), b[0, :, 0])
    one = open_source(directory, pattern="cellB_t{t}_c{c}_z{z}.tif")
    assert one.shape == (2, 4, 4)


def test_files_that_do_not_match_the_pattern(tmp_path: Path) -> None:
    directory = tmp_path / "d"
    write_planes(directory, (1, 1, 2, 4, 4))
    tifffile.imwrite(directory / "overview.tif", np.zeros((4, 4), np.uint16), **MB)
    with pytest.raises(InvalidImage, match=r"1 TIFF file\(s\) do not match .*overview.tif"):
        open_planes(directory, pattern="{name}_t{t}_c{c}_z{z}.tif")


@pytest.mark.parametrize(
    ("pattern", "problem"),
    [("{name}_{q}.tif", "unknown placeholder {q}"), ("{z}_{z}.tif", "appears twice")],
)
def test_bad_patterns(tmp_path: Path, pattern: str, problem: str) -> None:
    write_planes(tmp_path / "d", (1, 1, 2, 4, 4))
    with pytest.raises(InvalidInput, match=problem):
        open_planes(tmp_path / "d", pattern=pattern)


def test_damaged_plane_is_named_when_read(tmp_path: Path) -> None:
    directory = tmp_path / "d"
    write_planes(directory, (1, 1, 2, 16, 16))
    bad = directory / "cell1_t000_c00_z001.tif"  # the zlib-compressed one
    with tifffile.TiffFile(bad) as tif:
        offset, count = tif.pages[0].dataoffsets[0], tif.pages[0].databytecounts[0]
    raw = bytearray(bad.read_bytes())
    raw[offset + 2 : offset + count] = b"\x00" * (count - 2)
    bad.write_bytes(bytes(raw))
    src = open_planes(directory)
    assert src.read((slice(0, 1), slice(None), slice(None))).shape == (1, 16, 16)
    with pytest.raises(InvalidImage, match="cannot read the plane") as info:
        src.check()
    assert str(bad) in str(info.value)


def test_a_pattern_naming_one_image_still_reports_its_strays(tmp_path: Path) -> None:
    directory = tmp_path / "d"
    write_planes(directory, (1, 1, 2, 4, 4), fmt="img-ch{c}-slice{z}.tif")
    tifffile.imwrite(directory / "img-ch0-slice1 (copy).tif", np.zeros((4, 4), np.uint16), **MB)
    tifffile.imwrite(directory / "other.tif", np.zeros((4, 4), np.uint16), **MB)
    with pytest.raises(InvalidImage, match=r"1 TIFF file\(s\) do not match .*slice1 \(copy\)"):
        open_planes(directory, pattern="img-ch{c}-slice{z}.tif")
