"""SyntheticImage: instant construction, seamless and deterministic regions, bounded memory."""

from __future__ import annotations

import time
import tracemalloc

import numpy as np
import pytest

from nanorepo.errors import InvalidInput
from nanorepo.ome import ImageSource
from nanorepo.samples import SyntheticImage, benchmark_volume


@pytest.fixture(scope="module")
def small() -> SyntheticImage:
    return SyntheticImage(
        (2, 20, 150, 170),
        structures=("chromatin", "microtubules"),
        modality="SIM",
        block_shape=(4, 64, 64),
        seed=11,
    )


def test_huge_image_is_constructed_instantly() -> None:
    tracemalloc.start()
    t = time.perf_counter()
    im = SyntheticImage((1, 2, 4000, 100000, 100000), structures=("nuclear_pores", "microtubules"))
    elapsed = time.perf_counter() - t
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert elapsed < 0.5
    assert peak < 5 * 2**20
    assert im.nbytes == 2 * 4000 * 10**10 * 2
    assert isinstance(im, ImageSource)
    assert im.dims == ("t", "c", "z", "y", "x")
    assert im.pixel_sizes == {"t": 1.0, "z": 150.0, "y": 20.0, "x": 20.0}
    assert [c.name for c in im.channels] == ["Nup96-SNAP-AF647", "alpha-tubulin-AF488"]
    assert im.acquisition["technique"] == "STED"


def test_region_memory_is_bounded_by_the_region() -> None:
    im = SyntheticImage(
        (1, 1, 4000, 100000, 100000), structures=("nuclear_pores",), block_shape=(4, 128, 128)
    )
    tracemalloc.start()
    region = im.read((0, 0, slice(2000, 2004), slice(50000, 50128), slice(70000, 70128)))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert region.shape == (1, 1, 4, 128, 128) and region.dtype == np.uint16
    assert region.max() > region.min()
    assert peak < 64 * 2**20


def test_read_is_seamless_across_calls(small: SyntheticImage) -> None:
    whole = small.read((slice(None), slice(3, 14), slice(20, 140), slice(30, 160)))
    left = small.read((slice(None), slice(3, 14), slice(20, 140), slice(30, 97)))
    right = small.read((slice(None), slice(3, 14), slice(20, 140), slice(97, 160)))
    assert np.array_equal(whole, np.concatenate([left, right], axis=-1))
    top = small.read((slice(None), slice(3, 9), slice(20, 140), slice(30, 160)))
    bottom = small.read((slice(None), slice(9, 14), slice(20, 140), slice(30, 160)))
    assert np.array_equal(whole, np.concatenate([top, bottom], axis=1))
    one = small.read((1, 5, 77, 100))
    assert one.shape == (1, 1, 1, 1)
    assert one[0, 0, 0, 0] == whole[1, 2, 57, 70]


def test_read_is_deterministic_by_seed(small: SyntheticImage) -> None:
    region = (slice(None), slice(0, 6), slice(0, 100), slice(0, 100))
    a = small.read(region)
    again = SyntheticImage(
        small.shape, structures=small.kinds, modality="SIM", block_shape=(4, 64, 64), seed=11
    ).read(region)
    other = SyntheticImage(
        small.shape, structures=small.kinds, modality="SIM", block_shape=(4, 64, 64), seed=12
    ).read(region)
    assert np.array_equal(a, again)
    assert not np.array_equal(a, other)


def test_looks_like_microscopy(small: SyntheticImage) -> None:
    img = small.read().astype(float)
    for c in range(2):
        ch = img[c]
        background = np.percentile(ch, 20)
        assert 100 <= background <= 130  # SIM camera offset 100, background, haze
        assert ch.max() > background + 30  # structures stand out of the noise


def test_labels_are_the_ground_truth_of_a_region(small: SyntheticImage) -> None:
    pos = small.labels(1, (0, slice(0, 20), slice(0, 150), slice(0, 170)))
    assert len(pos) > 100
    assert pos[:, 0].min() >= -20 and pos[:, 0].max() < 170 * 40 - 20
    assert pos[:, 2].min() >= -62.5 and pos[:, 2].max() < 20 * 125 - 62.5


def test_iter_planes_matches_read() -> None:
    im = SyntheticImage((2, 5, 40, 30), structures=("nuclear_pores", "chromatin"))
    planes = list(im.iter_planes())
    assert len(planes) == 10
    assert np.array_equal(np.stack(planes).reshape(im.shape), im.read())


def test_2d_image_and_time_axis() -> None:
    im = SyntheticImage((3, 64, 64), dims=("t", "y", "x"), time_interval_s=0.5)
    a = im.read()
    assert a.shape == (3, 64, 64) and im.pixel_sizes["t"] == 0.5
    assert not np.array_equal(a[0], a[1])  # new noise per time point


@pytest.mark.parametrize(
    "kwargs",
    [
        {"shape": (10, 10), "dims": ("x", "y")},
        {"shape": (2, 10, 10), "dims": ("c", "y", "x")},
        {"shape": (10, 10), "structures": ("ribosomes",)},
        {"shape": (0, 10)},
        {"shape": (10, 10), "seed": -1},
        {"shape": (10, 10), "name": "../etc"},
    ],
)
def test_bad_construction_is_invalid_input(kwargs: dict[str, object]) -> None:
    with pytest.raises(InvalidInput):
        SyntheticImage(**kwargs)  # type: ignore[arg-type]


def test_bad_regions_are_invalid_input(small: SyntheticImage) -> None:
    with pytest.raises(InvalidInput):
        small.read((slice(None), slice(0, 10, 2)))
    with pytest.raises(InvalidInput):
        small.read((0, 0, 0, 0, 0))


def test_benchmark_volume_compresses_like_microscopy() -> None:
    numcodecs = pytest.importorskip("numcodecs")
    im = benchmark_volume((64, 4096, 4096), block_shape=(8, 256, 256))
    assert im.nbytes == 2 * 2**30
    chunk = im.read((slice(8, 16), slice(1024, 1280), slice(2048, 2304)))
    codec = numcodecs.Blosc(cname="zstd", clevel=1, shuffle=numcodecs.Blosc.SHUFFLE)
    ratio = chunk.nbytes / len(codec.encode(np.ascontiguousarray(chunk)))
    assert 3.0 <= ratio <= 5.0
    assert chunk.std() > 2
