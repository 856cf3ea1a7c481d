"""Write the training notebooks' reference outputs: ``python -m tests.notebooks.refresh_outputs``.

The training notebooks are committed with their outputs, so a trainee sees what each step
should print and draw before running it, and nbval (``test_training.py``) checks that a fresh
run prints the same thing. This script makes those outputs under exactly the conditions the
test runs them in: a fresh demo repository and service (``_demo.py``), the project's
interpreter as the ``python3`` kernel, the notebook's directory as the working directory.
(Notebooks 1-4 change nothing in the repository; notebook 5 posts a thread and records a
run, so its thread id and counts are those of a fresh demo repository.)

What a fresh run cannot reproduce exactly (run ids, dates, digests, ports, temporary paths,
timings) is masked by ``nbval_sanitize.cfg`` when nbval compares. Outputs are kept small:
figures are the notebooks' own 72-dpi PNGs, re-encoded with a 256-colour palette (Pillow;
a colour-mapped image has at most 256 colours, so nothing visible is lost, and the files
shrink to about 40 %), execution timings and kernel details are not stored, and a notebook that writes to stderr (a warning) is refused, because warnings are
noise for a trainee and differ between machines.

Run it after changing a training notebook, the demo data or anything they print, and commit
the result. Options: notebook names (default: all training notebooks).
"""

from __future__ import annotations

import argparse
import base64
import io
import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from tests.notebooks._demo import NOTEBOOKS, demo_repository

TRAINING = sorted((NOTEBOOKS / "training").glob("*.ipynb"))

#: Largest image output kept (bytes of base64 PNG); a bigger one means a figure too large.
MAX_IMAGE = 100_000


def execute(path: Path) -> nbformat.NotebookNode:
    """Run the notebook at ``path`` from top to bottom; the notebook with its outputs."""
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb,
        kernel_name="python3",
        timeout=300,
        record_timing=False,
        resources={"metadata": {"path": str(path.parent)}},
    )
    client.execute()
    return nb


def small_png(data: str) -> str:
    """The base64 PNG ``data`` re-encoded with a 256-colour palette, if that is smaller."""
    from PIL import Image

    image = Image.open(io.BytesIO(base64.b64decode(data)))
    out = io.BytesIO()
    image.convert("RGB").quantize(256, method=Image.Quantize.MEDIANCUT).save(
        out, "PNG", optimize=True
    )
    smaller = base64.b64encode(out.getvalue()).decode("ascii")
    return smaller if len(smaller) < len(data) else data


def tidy(nb: nbformat.NotebookNode, name: str) -> list[str]:
    """Drop what should not be committed from ``nb`` in place; problems found, as text."""
    problems = []
    nb.metadata["language_info"] = {"name": "python"}  # not the machine's exact versions
    nb.metadata.pop("widgets", None)
    for index, cell in enumerate(nb.cells):
        cell.metadata.pop("execution", None)
        if cell.cell_type != "code":
            continue
        for output in cell.outputs:
            if output.get("name") == "stderr":
                problems.append(f"{name} cell {index} wrote to stderr: {output.text[:300]!r}")
            data = output.get("data", {})
            if "image/png" in data:
                data["image/png"] = small_png(data["image/png"])
            png = data.get("image/png", "")
            if len(png) > MAX_IMAGE:
                problems.append(
                    f"{name} cell {index}: a {len(png) // 1000} kB figure (make it smaller)"
                )
    return problems


@contextmanager
def _environment(env: dict[str, str]) -> Iterator[None]:
    """Make ``env`` this process's whole environment (the kernels inherit it) for a block."""
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="notebook names, e.g. 02_nuclear_pores")
    args = parser.parse_args(argv)
    chosen = [p for p in TRAINING if not args.names or p.stem in args.names or p.name in args.names]
    if args.names and len(chosen) != len(args.names):
        parser.error(f"unknown notebook among {args.names}; there are {[p.stem for p in TRAINING]}")
    problems: list[str] = []
    with (
        tempfile.TemporaryDirectory(prefix="nanorepo-refresh-") as tmp,
        demo_repository(Path(tmp)) as demo,
        _environment(demo.env),
    ):
        for path in chosen:
            print(f"running {path.name} ...", file=sys.stderr)
            nb = execute(path)
            found = tidy(nb, path.name)
            problems += found
            if not found:
                nbformat.write(nb, path)
                print(f"  wrote {path} ({path.stat().st_size // 1000} kB)", file=sys.stderr)
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
