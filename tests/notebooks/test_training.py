"""The training notebooks run from top to bottom under nbval and reach their known answers.

Each notebook ends in ``assert`` statements against the ground truth stored with the demo
data, so running it is the test. The notebooks are committed without outputs, so nbval runs
in lax mode (it fails on any error; there are no stored outputs to compare). nbval runs in a
child pytest, so that its ``.ipynb`` collector stays out of this suite; the child keeps the
project's pytest configuration (warnings are errors there too), gets a temporary rootdir and
the demo repository's environment for its kernels.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.notebooks.conftest import NOTEBOOKS, DemoRepository

TRAINING = sorted((NOTEBOOKS / "training").glob("*.ipynb"))


def test_the_training_notebooks_are_there() -> None:
    assert [p.name for p in TRAINING] == [
        "01_finding_and_opening.ipynb",
        "02_nuclear_pores.ipynb",
        "03_resolution.ipynb",
        "04_smlm.ipynb",
        "05_community.ipynb",
    ]


@pytest.mark.slow
@pytest.mark.parametrize("path", TRAINING, ids=lambda p: p.stem)
def test_training_notebook_runs_under_nbval(
    path: Path, demo_repository: DemoRepository, tmp_path: Path
) -> None:
    command = [
        sys.executable,
        "-m",
        "pytest",
        "--nbval-lax",
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
        f"nbval failed on {path.name}:\n{proc.stdout[-20000:]}\n{proc.stderr[-3000:]}"
    )
