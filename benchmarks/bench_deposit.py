"""Deposit throughput: nanorepo against ome-zarr-py and tensorstore on the same OME-TIFF.

What is measured
----------------
MB/s of *input pixels* (uncompressed uint16) from an uncompressed OME-TIFF to a durable
OME-Zarr on local disk, each row timed until its data is on disk (``os.sync()`` is inside the
timed region for every row, so tools that fsync as they go and tools that leave dirty pages
behind are compared on the same footing):

* ``nanorepo deposit`` — ``Repository.deposit`` with originals *not* kept: read the TIFF,
  build the 2×2-mean pyramid, write sharded blosc-zstd OME-Zarr (NGFF 0.5), hash every object
  into the image and version manifests, publish by rename, commit the catalog. This is the
  row the goals are measured on;
* the same with originals kept (the default setting): also copy and hash the original file;
* **ome-zarr-py** ``ome_zarr.writer.write_image`` from ``tifffile.memmap`` of the same file,
  with its defaults (NGFF 0.5 / Zarr v3, its own pyramid, chunking and compression; only
  axes, scale and units passed) — what a scientist gets from the reference Python library;
* **tensorstore** writing *only* the full-resolution level with exactly nanorepo's sharding and
  codecs, from the same memmap, shard-aligned slabs with two in flight — the cost of the bytes
  alone, an upper bound nanorepo cannot beat since it also writes the pyramid and hashes.

Why: a deposit is the first thing a microscopist does with the repository, and on two cores
encoding is its bottleneck. Goals: nanorepo ≥ 3× ome-zarr-py, ≥ 0.6× tensorstore full-res only.

Run ``python benchmarks/bench_deposit.py [--size-gb N]``. Not a test; prints tables only.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as C

WHAT = """
MB/s of input pixels from an uncompressed OME-TIFF to a durable OME-Zarr, each row timed
until its data is on disk (os.sync() inside the timed region). nanorepo: the whole deposit
(read, pyramid, sharded blosc-zstd write, SHA-256 manifests, publish, catalog).
ome-zarr-py: write_image with its defaults. tensorstore: full-resolution level only, with
nanorepo's sharding and codecs. Goals: nanorepo >= 3x ome-zarr-py, >= 0.6x tensorstore.
"""

# Shard-aligned writes handed to tensorstore and not yet finished (as nanorepo does).
_TS_PENDING = 2


@dataclass
class Row:
    name: str
    seconds: list[float]
    cpu_seconds: list[float]
    stored_bytes: int
    level0_bytes: int
    note: str = ""

    def median(self) -> float:
        return statistics.median(self.seconds)

    def median_cpu(self) -> float:
        return statistics.median(self.cpu_seconds)


def _scratch() -> Path:
    path = C.DATA_DIR / "scratch-deposit"
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def _prepare_input(tiff: Path, cold: bool) -> str:
    if cold:
        return C.make_cold([tiff])
    C.warm([tiff])
    return "warm (read once before)"


# -- the rows ---------------------------------------------------------------------------


def run_nanorepo(tiff: Path, meta: Path, scratch: Path, keep_originals: bool) -> Row:
    from nanorepo.repository import Repository

    home = scratch / ("nanorepo-originals" if keep_originals else "nanorepo")
    settings = C.settings_for(home, keep_originals=keep_originals)
    with Repository(settings, create=True) as repo:
        repo.list_datasets()  # create the catalog (migrations) outside the timing
        with C.Stopwatch() as sw:
            result = repo.deposit([tiff], title="Benchmark deposit", metadata=meta)
            os.sync()
        shown = repo.show(result.accession)
    dataset = Path(shown["path"])
    image = Path(shown["images"][0]["storage_path"])
    row = Row(
        "nanorepo deposit (originals kept)" if keep_originals else "nanorepo deposit",
        [sw.seconds],
        [sw.cpu_seconds],
        C.tree_bytes(dataset),
        C.tree_bytes(_level0(image)),
        note=f"{len(shown['images'][0]['levels'])} levels; " + _zarr_layout(_level0(image)),
    )
    _check_same_layout(_level0(image))
    return row


def run_ome_zarr(tiff: Path, scratch: Path, pixel_sizes: dict[str, float]) -> Row:
    import tifffile
    import zarr
    from ome_zarr.io import parse_url
    from ome_zarr.writer import write_image

    out = scratch / "ome-zarr.ome.zarr"
    with C.Stopwatch() as sw:
        data = tifffile.memmap(tiff, mode="r")
        loc = parse_url(str(out), mode="w")
        assert loc is not None
        group = zarr.open_group(loc.store, mode="w")
        write_image(
            data,
            group,
            axes="zyx",
            scale=pixel_sizes,
            axes_units=dict.fromkeys(pixel_sizes, "nanometer"),
        )
        del data
        os.sync()
    n_levels = sum(1 for p in out.iterdir() if p.is_dir())
    return Row(
        "ome-zarr-py write_image (defaults)",
        [sw.seconds],
        [sw.cpu_seconds],
        C.tree_bytes(out),
        C.tree_bytes(_level0(out)),
        note=f"{n_levels} levels; " + _zarr_layout(_level0(out)),
    )


def nanorepo_level0_layout(shape: tuple[int, ...], dtype: np.dtype[Any]) -> dict[str, Any]:
    """Shard shape, chunk shape and codecs nanorepo's writer uses for level 0 of ``shape``."""
    from nanorepo.ome._codecs import sharding_codec
    from nanorepo.ome._write import DEFAULT_MEMORY_BUDGET_BYTES

    try:  # the pyramid planner moved out of _write; accept both layouts of the package
        from nanorepo.ome._pyramid import CHUNK_YX, DEFAULT_SHARD_BYTES, plan_levels
    except ImportError:  # pragma: no cover - older tree
        from nanorepo.ome._write import (  # type: ignore[attr-defined,no-redef]
            CHUNK_YX,
            DEFAULT_SHARD_BYTES,
            plan_levels,
        )

    # As write_image: shards are lowered to budget / (levels + 5).
    n_levels = len(plan_levels(shape, dtype))
    shard_bytes = max(1, min(DEFAULT_SHARD_BYTES, DEFAULT_MEMORY_BUDGET_BYTES // (n_levels + 5)))
    _shape, chunk, shard = plan_levels(shape, dtype, shard_bytes=shard_bytes, chunk_yx=CHUNK_YX)[0]
    return {
        "shard": list(shard),
        "codecs": [sharding_codec(chunk, "blosc-zstd", dtype)],
    }


def _check_same_layout(level0: Path) -> None:
    """Fail loudly if the tensorstore row would not write what nanorepo wrote."""
    meta = json.loads((level0 / "zarr.json").read_text())
    want = nanorepo_level0_layout(tuple(meta["shape"]), np.dtype(meta["data_type"]))
    got = {"shard": meta["chunk_grid"]["configuration"]["chunk_shape"], "codecs": meta["codecs"]}
    if _canon(got) != _canon(want):
        raise SystemExit(f"tensorstore row layout {want} differs from nanorepo's {got}")


def _canon(layout: dict[str, Any]) -> str:
    # "index_location": "end" is the default, which tensorstore leaves out of zarr.json.
    text = json.dumps(layout, sort_keys=True)
    return text.replace(', "index_location": "end"', "")


def run_tensorstore(tiff: Path, scratch: Path) -> Row:
    import tensorstore as ts
    import tifffile

    out = scratch / "tensorstore.zarr"
    data = tifffile.memmap(tiff, mode="r")
    layout = nanorepo_level0_layout(data.shape, data.dtype)
    spec = {
        "driver": "zarr3",
        "kvstore": {"driver": "file", "path": str(out) + "/"},
        "metadata": {
            "shape": list(data.shape),
            "data_type": data.dtype.name,
            "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": layout["shard"]}},
            "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
            "fill_value": 0,
            "codecs": layout["codecs"],
            "dimension_names": ["z", "y", "x"],
        },
        "create": True,
    }
    step = layout["shard"][0]
    with C.Stopwatch() as sw:
        store = ts.open(spec).result()
        pending: list[Any] = []
        for z0 in range(0, data.shape[0], step):
            z1 = min(z0 + step, data.shape[0])
            pending.append(store[z0:z1].write(data[z0:z1]))
            while len(pending) > _TS_PENDING:
                pending.pop(0).result()
        for f in pending:
            f.result()
        os.sync()
    del data
    return Row(
        "tensorstore, full resolution only",
        [sw.seconds],
        [sw.cpu_seconds],
        C.tree_bytes(out),
        C.tree_bytes(out),
        note="1 level; " + _zarr_layout(out),
    )


def _level0(image: Path) -> Path:
    """Directory of the full-resolution array of an OME-Zarr 0.5 image group."""
    attrs = json.loads((image / "zarr.json").read_text()).get("attributes", {})
    return image / attrs["ome"]["multiscales"][0]["datasets"][0]["path"]


def _zarr_layout(array: Path) -> str:
    """Chunks, shards and codecs of the array at ``array`` as stored (from its zarr.json)."""
    meta = json.loads((array / "zarr.json").read_text())
    grid = meta["chunk_grid"]["configuration"]["chunk_shape"]
    codecs = meta["codecs"]
    size = int(np.prod(grid)) * 2 / C.MB
    if codecs and codecs[0]["name"] == "sharding_indexed":
        cfg = codecs[0]["configuration"]
        names = _codec_names(cfg["codecs"])
        return f"shards {_x(grid)} ({size:.0f} MB raw) of chunks {_x(cfg['chunk_shape'])}, {names}"
    return f"unsharded chunks {_x(grid)} ({size:.0f} MB raw), {_codec_names(codecs)}"


def _codec_names(codecs: list[dict[str, Any]]) -> str:
    parts = []
    for c in codecs:
        if c["name"] == "bytes":
            continue
        cfg = c.get("configuration") or {}
        if c["name"] == "blosc":
            parts.append(f"blosc-{cfg.get('cname')} {cfg.get('clevel')} {cfg.get('shuffle')}")
        elif c["name"] == "zstd":
            parts.append(f"zstd {cfg.get('level')}")
        else:
            parts.append(c["name"])
    return " + ".join(parts) or "uncompressed"


def _x(shape: list[int]) -> str:
    return "x".join(str(s) for s in shape)


# -- main -------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    C.add_input_args(parser)
    parser.add_argument("--repeat", type=int, default=1, help="rounds of all rows (median)")
    parser.add_argument(
        "--skip",
        action="append",
        default=[],
        choices=["nanorepo", "originals", "ome-zarr", "tensorstore"],
        help="leave a row out (repeatable)",
    )
    parser.add_argument(
        "--warm-input",
        action="store_true",
        help="read the TIFF into the page cache before each row instead of evicting it",
    )
    args = parser.parse_args(argv)
    C.quiet_warnings()
    out = C.console()
    C.header(out, "nanorepo deposit benchmark", WHAT)
    inp = C.input_tiff(C.spec_from_args(args), out)
    out.print(f"- input: {inp.describe()}")
    scratch = _scratch()
    meta = C.write_metadata(scratch / "inputs")
    from nanorepo.samples._synthetic import SyntheticImage

    pixel_sizes = dict(SyntheticImage(inp.spec.shape, modality=inp.spec.modality).pixel_sizes)

    runs: dict[str, Callable[[], Row]] = {
        "tensorstore": lambda: run_tensorstore(inp.path, scratch),
        "nanorepo": lambda: run_nanorepo(inp.path, meta, scratch, keep_originals=False),
        "originals": lambda: run_nanorepo(inp.path, meta, scratch, keep_originals=True),
        "ome-zarr": lambda: run_ome_zarr(inp.path, scratch, pixel_sizes),
    }
    rows: dict[str, Row] = {}
    cache_state = ""
    for rnd in range(args.repeat):
        for key, run in runs.items():
            if key in args.skip:
                continue
            for child in scratch.iterdir():
                if child.name != "inputs":
                    shutil.rmtree(child)
            gc.collect()
            cache_state = _prepare_input(inp.path, cold=not args.warm_input)
            time.sleep(1.0)
            row = run()
            out.print(
                f"  round {rnd + 1}: {row.name}: {row.seconds[0]:.1f} s, "
                f"{C.mb_s(inp.spec.nbytes, row.seconds[0]):.0f} MB/s"
            )
            if key in rows:
                rows[key].seconds.extend(row.seconds)
                rows[key].cpu_seconds.extend(row.cpu_seconds)
            else:
                rows[key] = row
    shutil.rmtree(scratch, ignore_errors=True)
    out.print(f"- input page cache before each row: {cache_state}")
    out.print(f"- rounds: {args.repeat} (median shown)")
    out.print(
        "- CPU s: user + system seconds of all threads of this process during the row "
        "(2 cores: CPU s / 2 is the least wall time the same work could take)\n"
    )

    nbytes = inp.spec.nbytes
    table_rows = []
    for row in rows.values():
        sec = row.median()
        table_rows.append(
            [
                row.name,
                f"{sec:.1f}",
                f"{C.mb_s(nbytes, sec):.0f}",
                f"{row.median_cpu():.1f}",
                f"{nbytes / C.MB / row.median_cpu():.0f}",
                f"{row.stored_bytes / C.MB:,.0f}",
                f"{nbytes / row.level0_bytes:.2f}",
            ]
        )
    out.print(
        C.table(
            "Deposit throughput (MB/s of input pixels)",
            [
                "tool",
                "seconds",
                "MB/s",
                "CPU s",
                "MB per CPU s",
                "stored MB (all)",
                "level-0 compression",
            ],
            table_rows,
        )
    )
    out.print("")
    notes = [[row.name, row.note] for row in rows.values()]
    out.print(C.table("What each tool wrote", ["tool", "layout of level 0"], notes, text_columns=2))
    out.print("")
    if "nanorepo" in rows:
        nano = C.mb_s(nbytes, rows["nanorepo"].median())
        ratios = []
        if "ome-zarr" in rows:
            other = C.mb_s(nbytes, rows["ome-zarr"].median())
            ratios.append(["nanorepo / ome-zarr-py", C.ratio_cell(nano / other, 3.0)])
        if "tensorstore" in rows:
            other = C.mb_s(nbytes, rows["tensorstore"].median())
            ratios.append(["nanorepo / tensorstore full-res only", C.ratio_cell(nano / other, 0.6)])
        if "originals" in rows:
            other = C.mb_s(nbytes, rows["originals"].median())
            ratios.append(["nanorepo originals kept / not kept", C.ratio_cell(other / nano)])
        out.print(C.table("Ratios (throughput)", ["comparison", "ratio"], ratios, text_columns=2))


if __name__ == "__main__":
    main()
