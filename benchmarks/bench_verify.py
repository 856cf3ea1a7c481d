"""Fixity audit throughput: ``nanorepo verify`` against a plain single-thread SHA-256 loop.

What is measured
----------------
MB/s of stored bytes re-hashed, on two cached deposits of the benchmark volume: one with
the OME-Zarr only (originals not kept: tens of shards of ~30 MB, the shape of a 150 TB
dataset) and one with nanorepo's default settings (the 2 GB original OME-TIFF kept next to
the OME-Zarr, one file much larger than all the others):

* ``Repository.verify(ref)`` with its default workers: loads and checks the version and image
  manifests, hashes every listed object in a thread pool, looks for unlisted objects and
  records a fixity event in the catalog — everything ``nanorepo verify`` does;
* a plain loop: ``hashlib.sha256`` over every file of the dataset directory, one file after
  the other, read with ``readinto`` in 4 MiB blocks into one buffer (the fastest single-thread
  loop; ``f.read`` of 1 MiB blocks is a little slower).

Both are run warm (every file in the page cache; five alternating rounds, the first a
warm-up, the median of the other four reported: one run takes well under a second, so a
single one is at the mercy of the shared VM) and cold (the page cache dropped before each
run, when the sandbox allows it; median of three). Warm shows the hashing and bookkeeping
cost; cold adds the disk.

Why: curators audit fixity of 150–200 TB datasets for decades; an audit must use both cores
(SHA-NI hashes ~1.8 GB/s per core here, about the speed of the disk). Goal ≥ 1.5× the loop.

Two synthetic versions are measured first (issue 23 item 3), ``verify_version`` against a
single-thread loop that reuses one 4 MiB buffer (``readinto``) for every file:

* 50,000 small objects (0.5–16 KiB, 250 folders: the shape of Zarr chunks and metadata),
  where per-object set-up dominates; goal >= 0.8x the loop;
* one large object (``--large-mb``, default 1024), where one file's SHA-256 is sequential:
  manifests carry one digest per object, so verify cannot beat one thread here (the issue's
  goal of 1.7x needs per-block digests, not implemented yet: the ratio shows the gap).

Run ``python benchmarks/bench_verify.py [--size-gb N] [--synthetic-only]``. Not a test;
prints tables only.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as C
from rich.console import Console

WHAT = """
MB/s of stored bytes re-hashed on cached deposits (OME-Zarr only; OME-Zarr + original TIFF):
Repository.verify with its default workers against a plain single-thread hashlib.sha256 loop
over the same files, warm (alternating rounds after a warm-up round, median) and cold (page
cache dropped before each run, median of 3). Goal: verify >= 1.5x the loop.
"""


def plain_loop(files: list[Path]) -> tuple[float, int]:
    """Seconds and bytes for SHA-256 of every file, one thread."""
    t0 = time.perf_counter()
    total = 0
    for p in files:
        C.sha256_file(p)
        total += p.stat().st_size
    return time.perf_counter() - t0, total


def nanorepo_verify(dep: C.Deposited) -> tuple[float, int]:
    """Seconds and bytes for ``Repository.verify`` (default workers)."""
    from nanorepo.repository import Repository

    with Repository(dep.settings, create=True) as repo:
        repo.list_datasets()  # open the catalog outside the timing
        t0 = time.perf_counter()
        reports = repo.verify(dep.ref)
        seconds = time.perf_counter() - t0
    bad = [p for r in reports for p in r.problems]
    if bad:
        raise SystemExit(f"verify found problems: {bad[:3]}")
    return seconds, sum(r.bytes_checked for r in reports)


def reused_buffer_loop(files: list[Path]) -> tuple[float, int]:
    """Seconds and bytes for SHA-256 of every file, one thread, one 4 MiB buffer reused."""
    import hashlib

    buf = bytearray(4 * 1024 * 1024)
    view = memoryview(buf)
    t0 = time.perf_counter()
    total = 0
    for p in files:
        h = hashlib.sha256()
        with open(p, "rb", buffering=0) as f:
            while n := f.readinto(buf):
                h.update(view[:n])
                total += n
        h.hexdigest()
    return time.perf_counter() - t0, total


def synthetic_version(root: Path, sizes: dict[str, int]) -> str:
    """A dataset directory at ``root`` with objects of ``sizes`` and a version-1 manifest
    listing them; returns the manifest's digest."""
    import os

    from nanorepo.storage import FileDigest, Manifest, sha256_hex, write_manifest

    objects: dict[str, FileDigest] = {}
    for rel, size in sizes.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        data = os.urandom(size)
        p.write_bytes(data)
        objects[rel] = FileDigest(sha256_hex(data), size)
    return write_manifest(Manifest(root=".", objects=objects), root / "versions/v1/manifest.json")


def verify_synthetic(root: Path, digest: str) -> tuple[float, int]:
    from nanorepo.preservation import verify_version

    t0 = time.perf_counter()
    rep = verify_version(root, "S-NANO1", 1, digest)
    seconds = time.perf_counter() - t0
    if rep.problems:
        raise SystemExit(f"verify found problems: {rep.problems[:3]}")
    return seconds, rep.bytes_checked


def bench_synthetic(out: Console, n_small: int, large_mb: int, rounds: int) -> None:
    """Small-object and large-object tables (warm page cache, median of rounds - 1)."""
    import random
    import tempfile

    rng = random.Random(7)
    shapes = {
        f"{n_small:,} small objects": {
            f"images/im/0/c/{i % 250}/{i}": rng.randint(512, 16384) for i in range(n_small)
        },
        f"one {large_mb:,} MB object": {"originals/big.tif": large_mb * 1024 * 1024},
    }
    rows: list[list[str]] = []
    for label, sizes in shapes.items():
        with tempfile.TemporaryDirectory(prefix="bench-verify-") as tmp:
            root = Path(tmp)
            digest = synthetic_version(root, sizes)
            files = [root / r for r in sizes]
            C.warm(files)
            runs: dict[str, list[tuple[float, int]]] = {"loop": [], "verify": []}
            for _ in range(rounds):
                runs["loop"].append(reused_buffer_loop(files))
                runs["verify"].append(verify_synthetic(root, digest))
        (ls, lb), (vs, vb) = _median(runs["loop"][1:]), _median(runs["verify"][1:])
        goal = 0.8 if "small" in label else 1.7
        rows.append([label, "reused-buffer hashlib loop, 1 thread", *_cells(ls, lb), ""])
        rows.append([label, "nanorepo verify_version", *_cells(vs, vb),
                     C.ratio_cell(C.mb_s(vb, vs) / C.mb_s(lb, ls), goal)])  # fmt: skip
    out.print(
        C.table(
            f"Synthetic versions, warm (median of {rounds - 1})",
            ["version", "tool", "MB hashed", "seconds", "MB/s", "verify / loop"],
            rows,
            text_columns=2,
        )
    )


def _median(runs: list[tuple[float, int]]) -> tuple[float, int]:
    """The run with the median time (seconds, bytes)."""
    ordered = sorted(runs)
    return ordered[(len(ordered) - 1) // 2]


def bench_dataset(
    dep: C.Deposited, cold: bool, out: Console, rounds: int = 5, cold_rounds: int = 3
) -> tuple[list[list[str]], list[list[str]]]:
    """Rows of the throughput table and of the ratio table for one dataset."""
    files = C.files_under(dep.dataset_dir)
    total = sum(p.stat().st_size for p in files)
    largest = max(p.stat().st_size for p in files)
    label = "OME-Zarr only" if not dep.keep_originals else "OME-Zarr + original TIFF"
    out.print(
        f"- {label}: {dep.describe()}; {len(files)} files, {total / C.MB:,.0f} MB, "
        f"largest file {largest / C.MB:,.0f} MB"
    )
    rows: list[list[str]] = []
    ratios: list[list[str]] = []

    # Warm: read everything once, then alternate loop and verify; the first round is a
    # warm-up, the median of the others is reported (runs are short and the VM is noisy).
    C.warm(files)
    runs: dict[str, list[tuple[float, int]]] = {"loop": [], "verify": []}
    for _ in range(rounds):
        runs["loop"].append(plain_loop(files))
        runs["verify"].append(nanorepo_verify(dep))
    results = [
        (f"warm (median of {rounds - 1})", _median(runs["loop"][1:]), _median(runs["verify"][1:]))
    ]
    if cold:
        state = ""
        cold_runs: dict[str, list[tuple[float, int]]] = {"loop": [], "verify": []}
        for _ in range(cold_rounds):
            for name in ("loop", "verify"):
                state = C.make_cold(files)
                time.sleep(1.0)
                cold_runs[name].append(
                    plain_loop(files) if name == "loop" else nanorepo_verify(dep)
                )
        tag = f"cold (median of {cold_rounds})" if state.startswith("cold") else "WARM (no drop)"
        results.append((tag, _median(cold_runs["loop"]), _median(cold_runs["verify"])))
        out.print(f"  cold runs: page cache before each run: {state}")
    for tag, (loop_s, loop_b), (ver_s, ver_b) in results:
        rows.append([label, tag, "plain hashlib.sha256 loop, 1 thread", *_cells(loop_s, loop_b)])
        rows.append([label, tag, "nanorepo Repository.verify", *_cells(ver_s, ver_b)])
        ratio = C.mb_s(ver_b, ver_s) / C.mb_s(loop_b, loop_s)
        ratios.append([label, tag, C.ratio_cell(ratio, 1.5), f"{total / largest:.2f}x"])
    return rows, ratios


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    C.add_input_args(parser)
    parser.add_argument("--no-cold", action="store_true", help="skip the cold-cache runs")
    parser.add_argument(
        "--rounds", type=int, default=5, help="warm rounds; the first is a warm-up (5)"
    )
    parser.add_argument("--cold-rounds", type=int, default=3, help="cold rounds (3)")
    parser.add_argument("--small", type=int, default=50_000, help="small objects (50,000)")
    parser.add_argument("--large-mb", type=int, default=1024, help="large object MB (1024)")
    parser.add_argument("--synthetic-only", action="store_true", help="only the synthetic versions")
    args = parser.parse_args(argv)
    C.quiet_warnings()
    out = C.console()
    C.header(out, "nanorepo verify benchmark", WHAT)
    bench_synthetic(out, args.small, args.large_mb, args.rounds)
    if args.synthetic_only:
        return
    inp = C.input_tiff(C.spec_from_args(args), out)
    deposits = [
        C.cached_deposit(inp, out, keep_originals=False),
        C.cached_deposit(inp, out, keep_originals=True),
    ]
    from nanorepo.storage._digest import default_workers

    out.print(f"- input: {inp.describe()}")
    out.print(f"- nanorepo default workers: {default_workers()} threads")
    rows: list[list[str]] = []
    ratios: list[list[str]] = []
    for dep in deposits:
        r, q = bench_dataset(dep, not args.no_cold, out, args.rounds, args.cold_rounds)
        rows += r
        ratios += q
    out.print("")
    out.print(
        C.table(
            "Fixity audit throughput",
            ["dataset", "page cache", "tool", "MB hashed", "seconds", "MB/s"],
            rows,
            text_columns=3,
        )
    )
    out.print("")
    out.print(
        C.table(
            "nanorepo verify / plain loop (MB/s)",
            ["dataset", "page cache", "ratio", "warm limit: total / largest file"],
            ratios,
            text_columns=2,
        )
    )
    out.print(
        "\nOne file's SHA-256 is sequential, so with whole files hashed in parallel the warm "
        "speed-up cannot much exceed total bytes / bytes of the largest file (last column); "
        "cold runs also overlap disk reads with hashing, which a single thread cannot."
    )


def _cells(seconds: float, nbytes: int) -> list[str]:
    return [f"{nbytes / C.MB:,.0f}", f"{seconds:.2f}", f"{C.mb_s(nbytes, seconds):.0f}"]


if __name__ == "__main__":
    main()
