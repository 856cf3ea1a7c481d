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

Run ``python benchmarks/bench_verify.py [--size-gb N]``. Not a test; prints tables only.
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
    args = parser.parse_args(argv)
    C.quiet_warnings()
    out = C.console()
    C.header(out, "nanorepo verify benchmark", WHAT)
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
