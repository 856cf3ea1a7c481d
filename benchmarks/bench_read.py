"""Region reads from a deposited image: nanorepo's read paths against tensorstore.

What is measured
----------------
Throughput (MB/s of pixels returned) and per-read latency (p50, p99) of three workloads on
level 0 of the cached deposit of the benchmark volume, with a fixed seed:

* random 16×512×512 regions at random, not chunk-aligned, offsets (a notebook's zoom, an
  analysis tile);
* single 512×512 tiles of one z plane at random positions (a viewer tile that straddles
  inner chunks);
* single 512×512 tiles aligned to the 512×512 inner chunks (a viewer tile, one decode).

Each region is read, in the same order, through:

* ``nanorepo.open(ref).images[0].to_xarray()`` then ``.isel(...).values`` (the documented
  notebook path; dask-backed, one dask chunk per shard);
* ``OmeZarrImage.to_xarray(dask=False)`` then ``.isel(...).values`` (lazily indexed xarray
  without dask);
* ``OmeZarrImage.read_region`` (the direct path napari and analyses use);
* **tensorstore** opening the same level-0 array directly (``zarr3`` driver, ``file`` kvstore,
  default context, i.e. no chunk cache) and ``.read().result()`` — the reference the goal is
  measured against;
* tensorstore again with the 64 MiB chunk cache nanorepo's reader opens every image with, so
  that repeated chunks (random regions overlap) favour neither side: nanorepo's readers are
  built on tensorstore, and the gap to this row is nanorepo's own per-read overhead.

Paths alternate region by region (the order rotates), so drift in machine load hits all of
them alike. Every stored object is read once beforehand: reads are warm page cache (the page
cache is not what differs between the paths; decoding and per-read overhead are).

Why: invariant 3 (data stays where it is, cost grows with the region) only helps if reading
in place is fast; the goal is ≥ 0.8× tensorstore's throughput.

Run ``python benchmarks/bench_read.py [--size-gb N]``. Not a test; prints tables only.
"""

from __future__ import annotations

import argparse
import gc
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as C

WHAT = """
Throughput (MB/s of pixels returned) and latency of region reads on level 0 of the cached
deposit, same regions in the same order through each path, order rotating per region, warm
page cache. Goal: nanorepo >= 0.8x tensorstore (default context). The last column compares
with tensorstore given the same 64 MiB chunk cache as nanorepo's reader.
"""

REFERENCE = "tensorstore (direct, default context)"
SAME_CACHE = "tensorstore (direct, 64 MiB cache as nanorepo)"

Region = tuple[slice, slice, slice]
Reader = Callable[[Region], np.ndarray]


@dataclass
class Series:
    latencies: list[float] = field(default_factory=list)
    nbytes: int = 0

    def add(self, seconds: float, nbytes: int) -> None:
        self.latencies.append(seconds)
        self.nbytes += nbytes

    @property
    def mb_s(self) -> float:
        return C.mb_s(self.nbytes, sum(self.latencies))


def regions(
    rng: np.random.Generator,
    shape: tuple[int, ...],
    size: tuple[int, int, int],
    n: int,
    *,
    aligned: bool = False,
) -> list[Region]:
    """``n`` random regions of ``size``; never chunk-aligned in y/x unless ``aligned``."""
    out = []
    for _ in range(n):
        starts = []
        for extent, span in zip(shape, size, strict=True):
            hi = extent - span
            if aligned and span == 512:
                a = int(rng.integers(0, hi // 512 + 1)) * 512
            else:
                a = int(rng.integers(0, hi + 1))
                if span == 512 and a % 512 == 0:
                    a = a + 1 if a < hi else a - 1
            starts.append(a)
        z, y, x = (slice(a, a + s) for a, s in zip(starts, size, strict=True))
        out.append((z, y, x))
    return out


def readers(dep: C.Deposited) -> tuple[dict[str, Reader], tuple[int, ...]]:
    """The read paths, each opened once, and the shape of level 0."""
    import tensorstore as ts

    import nanorepo
    from nanorepo.ome import OmeZarrImage

    ds = nanorepo.open(dep.ref, settings=dep.settings)
    xa = ds.images[0].to_xarray()
    nodask = OmeZarrImage.open(dep.image_dir).to_xarray(dask=False)
    direct = OmeZarrImage.open(dep.image_dir)
    spec = {"driver": "zarr3", "kvstore": {"driver": "file", "path": str(dep.image_dir / "0")}}
    tstore = ts.open(spec, read=True).result()
    # The same 64 MiB chunk cache nanorepo's reader gives each image (nanorepo.ome._read).
    from nanorepo.ome._read import _CONTEXT

    tcached = ts.open(spec, read=True, context=ts.Context(_CONTEXT)).result()

    def via_xarray(r: Region) -> np.ndarray:
        return xa.isel(z=r[0], y=r[1], x=r[2]).values

    def via_xarray_nodask(r: Region) -> np.ndarray:
        return nodask.isel(z=r[0], y=r[1], x=r[2]).values

    def via_read_region(r: Region) -> np.ndarray:
        return direct.read_region(0, r)

    def via_tensorstore(r: Region) -> np.ndarray:
        return np.asarray(tstore[r].read().result())

    def via_tensorstore_cached(r: Region) -> np.ndarray:
        return np.asarray(tcached[r].read().result())

    paths: dict[str, Reader] = {
        "nanorepo.open(...).to_xarray() (dask)": via_xarray,
        "OmeZarrImage.to_xarray(dask=False)": via_xarray_nodask,
        "OmeZarrImage.read_region": via_read_region,
        REFERENCE: via_tensorstore,
        SAME_CACHE: via_tensorstore_cached,
    }
    return paths, tuple(int(n) for n in tstore.shape)


def measure(paths: dict[str, Reader], work: list[Region]) -> dict[str, Series]:
    import time

    names = list(paths)
    out = {n: Series() for n in names}
    gc_was = gc.isenabled()
    gc.disable()
    try:
        for i, r in enumerate(work):
            k = i % len(names)
            for name in names[k:] + names[:k]:
                fn = paths[name]
                t0 = time.perf_counter()
                a = fn(r)
                dt = time.perf_counter() - t0
                out[name].add(dt, a.nbytes)
            if i % 50 == 49:
                gc.collect()
    finally:
        if gc_was:
            gc.enable()
    return out


def check_same(paths: dict[str, Reader], r: Region) -> None:
    """All paths return the same pixels (a benchmark of wrong answers is worthless)."""
    ref = None
    for name, fn in paths.items():
        a = fn(r)
        if ref is None:
            ref = a
        elif a.shape != ref.shape or not np.array_equal(a, ref):
            raise SystemExit(f"{name} returned different pixels for {r}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    C.add_input_args(parser)
    parser.add_argument("--regions", type=int, default=200, help="16x512x512 regions (200)")
    parser.add_argument("--tiles", type=int, default=500, help="512x512 tiles per kind (500)")
    parser.add_argument("--read-seed", type=int, default=20240611, help="region seed")
    args = parser.parse_args(argv)
    C.quiet_warnings()
    out = C.console()
    C.header(out, "nanorepo region-read benchmark", WHAT)
    inp = C.input_tiff(C.spec_from_args(args), out)
    dep = C.cached_deposit(inp, out, keep_originals=False)
    out.print(f"- input: {inp.describe()}")
    out.print(f"- dataset: {dep.describe()}")
    files = C.files_under(dep.image_dir)
    warmed = C.warm(files)
    out.print(f"- page cache: warm (all {len(files)} objects, {warmed / C.MB:,.0f} MB, read once)")

    paths, shape = readers(dep)
    rng = np.random.default_rng(args.read_seed)
    nz = min(16, shape[0])
    workloads = {
        f"{nz}x512x512 regions, random offsets": regions(rng, shape, (nz, 512, 512), args.regions),
        "512x512 tiles, random positions": regions(rng, shape, (1, 512, 512), args.tiles),
        "512x512 tiles, chunk-aligned": regions(
            rng, shape, (1, 512, 512), args.tiles, aligned=True
        ),
    }
    # Warm-up on other regions: imports, thread pools, open handles, shard indexes.
    warm_rng = np.random.default_rng(args.read_seed + 1)
    measure(paths, regions(warm_rng, shape, (nz, 512, 512), 8))
    measure(paths, regions(warm_rng, shape, (1, 512, 512), 16))
    for work in workloads.values():
        check_same(paths, work[0])
    out.print(f"- seed {args.read_seed}; level 0 shape {shape}; paths rotate order per region\n")

    for title, work in workloads.items():
        res = measure(paths, work)
        ref, same = res[REFERENCE], res[SAME_CACHE]
        rows = []
        for name, s in res.items():
            ms = [x * 1e3 for x in s.latencies]
            tensorstore = name in (REFERENCE, SAME_CACHE)
            rows.append(
                [
                    name,
                    f"{s.mb_s:.0f}",
                    f"{C.percentile(ms, 50):.2f}",
                    f"{C.percentile(ms, 99):.2f}",
                    C.ratio_cell(s.mb_s / ref.mb_s, None if tensorstore else 0.8),
                    C.ratio_cell(s.mb_s / same.mb_s),
                ]
            )
        out.print(
            C.table(
                f"{title} ({len(work)} reads, {work[0][0].stop - work[0][0].start} plane(s) each)",
                ["path", "MB/s", "p50 ms", "p99 ms", "vs tensorstore", "vs tensorstore same cache"],
                rows,
            )
        )
        out.print("")


if __name__ == "__main__":
    main()
