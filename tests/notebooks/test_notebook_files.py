"""The committed notebooks: clean (no outputs), small, valid, and styled like the code."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from tests.notebooks.conftest import NOTEBOOKS

TRAINING = sorted((NOTEBOOKS / "training").glob("*.ipynb"))
ANALYSES = sorted((NOTEBOOKS / "analyses").glob("*.ipynb"))
ROOT = NOTEBOOKS.parent


@pytest.mark.parametrize("path", TRAINING + ANALYSES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_committed_notebook_is_clean(path: Path) -> None:
    """Valid nbformat 4, kernel python3, no outputs or execution counts, small."""
    assert path.stat().st_size < 300_000
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{path.name}: commit notebooks without outputs"
            assert cell.execution_count is None, f"{path.name}: commit notebooks without outputs"
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# ")
    last = nb.cells[-1]
    if path in TRAINING:
        assert "assert " in last.source, f"{path.name} must end by checking the known answer"


@pytest.mark.parametrize("command", [["check"], ["format", "--check"]], ids=" ".join)
def test_notebooks_pass_ruff(command: list[str]) -> None:
    """Code cells follow the project's lint and format rules (pyproject's [tool.ruff])."""
    files = [str(p.relative_to(ROOT)) for p in TRAINING + ANALYSES]
    proc = subprocess.run(
        [sys.executable, "-m", "ruff", *command, *files],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
