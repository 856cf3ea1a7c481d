"""The training notebooks run from top to bottom under nbval, print what they were committed
printing, and reach their known answers.

Each notebook ends in ``assert`` statements against the ground truth stored with the demo
data, so running it is the test of the science. The notebooks are committed with their
outputs (made by ``refresh_outputs.py`` under the same conditions), and nbval compares every
cell's new text output with the committed one, after ``nbval_sanitize.cfg`` has masked what
cannot repeat (run ids, dates, temporary paths): a notebook that now prints something else
(another count, a changed measurement, a new warning) fails, and the committed outputs a
trainee reads stay true. Figures are not compared (nbval skips images), their numbers are.

nbval runs in a child pytest, so that its ``.ipynb`` collector stays out of this suite; the
child keeps the project's pytest configuration (warnings are errors there too), gets a
temporary rootdir and the demo repository's environment for its kernels: a hub user's (no
``NANOREPO_HOME``, the service at ``NANOREPO_URL`` with the user's token, the storage mounted),
so the notebooks run here exactly as shipped to every hub user. Notebooks 1-4
change nothing in the repository; notebook 5 posts a thread and records a run, and its
committed outputs are those of a fresh demo repository, as here.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbval.plugin import get_sanitize_patterns

from tests.notebooks.conftest import NOTEBOOKS, DemoRepository

TRAINING = sorted((NOTEBOOKS / "training").glob("*.ipynb"))
SANITIZE = Path(__file__).with_name("nbval_sanitize.cfg")


def test_the_training_notebooks_are_there() -> None:
    assert [p.name for p in TRAINING] == [
        "01_finding_and_opening.ipynb",
        "02_nuclear_pores.ipynb",
        "03_resolution.ipynb",
        "04_smlm.ipynb",
        "05_community.ipynb",
    ]


def _sanitize(text: str) -> str:
    """``text`` as nbval sees it after ``nbval_sanitize.cfg``."""
    for regex, replace in get_sanitize_patterns(SANITIZE.read_text()):
        text = re.sub(regex, replace, text)
    return text


def test_the_sanitisers_mask_only_what_cannot_repeat() -> None:
    """Run ids, dates, digests and the repository's path are masked; the measurements,
    counts, accessions and versions a trainee checks are left for nbval to compare."""
    assert (
        _sanitize("succeeded · run f81a2592928a by trainee") == "succeeded · run <hex> by trainee"
    )
    assert _sanitize("(succeeded; trainee; 2026-11-22 01:20:32)") == "(succeeded; trainee; <when>)"
    assert _sanitize("at 2026-11-22T01:20:32.123+00:00.") == "at <when>."
    assert (
        _sanitize("sha256 33384356d2dd; manifest 65c0658ab22aebbb")
        == "sha256 <hex>; manifest <hex>"
    )
    assert (
        _sanitize("/tmp/pytest-of-ci/pytest-3/notebooks0/home/storage/public/S-NANO1/images/v1")
        == "<home>/storage/public/S-NANO1/images/v1"
    )
    kept = (
        "799 pores found; 283 pores; median diameter 107.9 nm; S-NANO1@v1; thread 1; "
        "read (101, 101) pixels: 38 kB of 1248 kB stored (3.1 %); 12345678 localisations; "
        "effective labelling efficiency 0.42; 2 pyramid levels: [(640, 640), (320, 320)]"
    )
    assert _sanitize(kept) == kept
    assert _sanitize("<Legend at 0x7f22f2a34510>") == "<Legend at 0x<address>>"


@pytest.mark.parametrize("path", TRAINING, ids=lambda p: p.stem)
def test_the_outputs_nbval_compares_say_something(path: Path) -> None:
    """Each training notebook has committed text output left to compare after sanitising,
    with the numbers it reports (so the nbval run below is not a comparison of nothing)."""
    nb = nbformat.read(path, as_version=4)
    texts = [
        _sanitize("".join(out.get("text", "")) + "".join(out.get("data", {}).get("text/plain", "")))
        for cell in nb.cells
        if cell.cell_type == "code"
        for out in cell.outputs
    ]
    compared = "\n".join(t for t in texts if not t.startswith("<Figure size"))
    assert len(re.findall(r"\d+(?:\.\d+)? ?(?:nm|pores|%)", compared)) >= 3, compared
    assert "✔" in compared or "All checks passed" in compared


@pytest.mark.slow
@pytest.mark.parametrize("path", TRAINING, ids=lambda p: p.stem)
def test_training_notebook_runs_under_nbval(
    path: Path, demo_repository: DemoRepository, tmp_path: Path
) -> None:
    command = [
        sys.executable,
        "-m",
        "pytest",
        "--nbval",
        f"--nbval-sanitize-with={SANITIZE}",
        "--nbval-current-env",
        "--nbval-cell-timeout=300",
        "-p",
        "no:cacheprovider",
        "-o",
        "addopts=",
        # napari and npe2 register pytest plugins; not wanted in the notebook runs
        "-p",
        "no:napari",
        "-p",
        "no:npe2",
        "-p",
        "no:napari-plugin-engine",
        "--rootdir",
        str(tmp_path),
        "-q",
        str(path),
    ]
    proc = subprocess.run(
        command,
        cwd=tmp_path,
        env=demo_repository.env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, (
        f"nbval failed on {path.name} (if the new output is right, run "
        f"`python -m tests.notebooks.refresh_outputs` and commit the notebooks):\n"
        f"{proc.stdout[-20000:]}\n{proc.stderr[-3000:]}"
    )
    # as on the hub: nothing but init/demo/up creates a catalog, least of all in a home
    # (a run keeps only its marker in ~/.nanorepo/runs-active, to find it if killed)
    assert list(demo_repository.user_home.rglob("*.sqlite")) == []
