"""What provenance costs: ``nanorepo run`` against bare papermill on the same notebooks.

What is measured
----------------
1. **Overhead of one run.** The same notebook (it opens a dataset with ``nanorepo.open``,
   reads a region, records a value, writes a file, then computes for ``--seconds``) executed
   with bare ``papermill.execute_notebook`` and with :func:`nanorepo.run` (papermill plus the
   record: journal, environment, notebook copy, output digests, atomic publication, catalog
   rows), alternately, ``--repeat`` times each. Goal: overhead < 0.5 s and < 3 % of a 60 s
   notebook.
2. **Batch throughput.** ``--runs`` short runs (the same notebook without the compute part)
   over ``--runs`` datasets, ``--jobs`` at a time: bare papermill in a
   ``ProcessPoolExecutor`` of ``--jobs`` spawned workers, against
   :func:`nanorepo.provenance.run_batch` with the same pool; runs per second and the ratio.
   Goal: nanorepo >= 0.8x of bare papermill.

Both sides run in one process tree on the same repository, one after the other, so machine
load hits both; each is warmed once first. Run ``python benchmarks/bench_run.py [--seconds 60] [--runs 200] [--jobs 2]``.
Not a test; prints tables.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path

import _common as C
import nbformat

WHAT = __doc__.split("What is measured\n----------------\n")[1].split("Both sides")[0]

BODY = """
import time, pathlib, nanorepo
ds = nanorepo.open(accession)
region = ds.images[0].to_xarray(dask=False)[0, :32, :32].values
nanorepo.record("mean", float(region.mean()))
pathlib.Path(output_dir).mkdir(parents=True, exist_ok=True)
pathlib.Path(output_dir, "mean.txt").write_text(str(region.mean()))
t_end = time.perf_counter() + seconds
x = 0
while time.perf_counter() < t_end:  # compute, not sleep: the kernel keeps a core busy
    x += sum(i * i for i in range(10_000))
"""


def write_notebook(path: Path) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}  # fmt: skip
    p = nbformat.v4.new_code_cell('accession = "S-NANO1"\noutput_dir = "out"\nseconds = 0.0')
    p.metadata["tags"] = ["parameters"]
    nb.cells = [p, nbformat.v4.new_code_cell(BODY)]
    nbformat.write(nb, path)
    return path


def _bare(nb: str, out: str, params: dict[str, object], env: dict[str, str]) -> float:
    """One bare papermill run (in a worker: the kernel gets the repository's settings the
    same way nanorepo's runner passes them)."""
    import os

    import papermill

    os.environ.update(env)
    t = time.perf_counter()
    papermill.execute_notebook(nb, str(Path(out) / "executed.ipynb"), parameters=params,
                               progress_bar=False, cwd=out)  # fmt: skip
    return time.perf_counter() - t


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--seconds", type=float, default=60.0, help="compute time of the long notebook")
    p.add_argument("--repeat", type=int, default=2, help="long runs per side (default 2)")
    p.add_argument("--runs", type=int, default=200, help="short runs in the batch (default 200)")
    p.add_argument("--jobs", type=int, default=2, help="runs at a time (default 2)")
    args = p.parse_args()
    C.quiet_warnings()
    out = C.console()
    C.header(out, "nanorepo run: provenance overhead and batch throughput", WHAT)

    import nanorepo
    from nanorepo.connection import run_batch
    from nanorepo.repository import Repository
    from nanorepo.settings import Settings
    from nanorepo.testing._service import _tiny_ome_tiff, seed_repository

    with tempfile.TemporaryDirectory(prefix="bench-run-") as tmp:
        work = Path(tmp)
        settings = Settings.from_env(work / "home", env={"NANOREPO_USER": "bench"})
        repo = Repository(settings, create=True)
        seed = seed_repository(repo, work / "seed")
        nb = write_notebook(work / "analysis.ipynb")
        env = settings.to_env()

        # warm both paths once (imports, kernel spec, package list, SQL compile caches): a
        # long-lived process pays these once, and `nanorepo run` at the shell pays its
        # imports as papermill's CLI pays its own
        warm = work / "warm"
        warm.mkdir()
        _bare(str(nb), str(warm), {"accession": seed.public, "output_dir": str(warm)}, env)
        nanorepo.run(nb, {"accession": seed.public}, output_dir=work / "warm2", settings=settings)

        # 1. one long run, alternately bare and recorded
        bare_s: list[float] = []
        rec_s: list[float] = []
        params = {"accession": seed.public, "seconds": args.seconds}
        for i in range(args.repeat):
            o = work / f"bare{i}"
            o.mkdir()
            bare_s.append(_bare(str(nb), str(o), {**params, "output_dir": str(o)}, env))
            t = time.perf_counter()
            r = nanorepo.run(nb, params, output_dir=work / f"rec{i}", settings=settings)
            rec_s.append(time.perf_counter() - t)
            assert r.status == "succeeded", r.error
        b, n = statistics.median(bare_s), statistics.median(rec_s)
        over = n - b
        out.print(C.table(
            f"one run of a {args.seconds:g} s notebook (median of {args.repeat})",
            ["", "bare papermill", "nanorepo run", "overhead", "goal"],
            [["wall time", f"{b:.2f} s", f"{n:.2f} s", f"{over:+.2f} s ({over / b:+.1%})",
              f"< 0.5 s and < 3 %: {'met' if over < 0.5 and over / b < 0.03 else 'MISSED'}"]],
        ))  # fmt: skip

        # 2. the batch: one dataset per run
        t = time.perf_counter()
        for i in range(args.runs - 3):
            src = work / "many" / f"c{i}" / "cell.ome.tif"
            src.parent.mkdir(parents=True)
            _tiny_ome_tiff(src, i)
            meta = work / "seed" / "case0" / "metadata.yaml"
            repo.deposit([src], title=f"Bench pores {i}", metadata=meta)
        out.print(f"(deposited {args.runs - 3} more datasets in {time.perf_counter() - t:.0f} s)")
        items = [d["accession"] for d in repo.search("pores", limit=args.runs)[0]]
        assert len(items) == args.runs, len(items)
        t = time.perf_counter()
        with ProcessPoolExecutor(args.jobs, mp_context=get_context("spawn")) as pool:
            futs = []
            for i, acc in enumerate(items):
                o = work / "bare-batch" / str(i)
                o.mkdir(parents=True)
                futs.append(pool.submit(_bare, str(nb), str(o),
                                        {"accession": acc, "output_dir": str(o)}, env))  # fmt: skip
            for f in as_completed(futs):
                f.result()
        bare_batch = time.perf_counter() - t
        t = time.perf_counter()
        batch = run_batch(nb, "pores", jobs=args.jobs, output_dir=work / "rec-batch",
                          settings=settings)  # fmt: skip
        rec_batch = time.perf_counter() - t
        assert batch.status == "succeeded" and len(batch.runs) == args.runs
        rb, rn = args.runs / bare_batch, args.runs / rec_batch
        out.print(C.table(
            f"{args.runs} short runs, {args.jobs} at a time",
            ["", "bare papermill", "nanorepo run --over", "ratio"],
            [["runs/s", f"{rb:.2f}", f"{rn:.2f}", C.ratio_cell(rn / rb, 0.8)],
             ["wall time", f"{bare_batch:.0f} s", f"{rec_batch:.0f} s", ""]],
        ))  # fmt: skip
        repo.close()


if __name__ == "__main__":
    main()
