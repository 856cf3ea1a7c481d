"""The committed notebooks: valid, small, styled like the code, and with only the outputs
they should hold (a training notebook's clean run; none in a template)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from tests.notebooks.conftest import NOTEBOOKS
from tests.notebooks.refresh_outputs import MAX_IMAGE

TRAINING = sorted((NOTEBOOKS / "training").glob("*.ipynb"))
ANALYSES = sorted((NOTEBOOKS / "analyses").glob("*.ipynb"))
ROOT = NOTEBOOKS.parent


#: What a committed training notebook's outputs may hold (``refresh_outputs.py`` makes them).
_KINDS = {"text/plain", "text/html", "image/png"}


@pytest.mark.parametrize("path", TRAINING + ANALYSES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_committed_notebook_is_clean(path: Path) -> None:
    """Valid nbformat 4, kernel python3, small; a training notebook holds the outputs of one
    clean run from top to bottom (text, tables and modest PNG figures, no errors, warnings or
    timings); a template holds none (papermill writes its outputs into each run's copy)."""
    assert path.stat().st_size < 300_000, f"{path.name}: keep notebooks under 300 kB"
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    language = nb.metadata.get("language_info", {})
    assert set(language) <= {"name"}, f"{path.name}: machine details in metadata ({language})"
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    for cell in code:
        assert "execution" not in cell.metadata, f"{path.name}: timings in cell metadata"
    if path in ANALYSES:
        for cell in code:
            assert cell.outputs == [], f"{path.name}: commit templates without outputs"
            assert cell.execution_count is None, f"{path.name}: commit templates without outputs"
    else:
        counts = [cell.execution_count for cell in code]
        assert counts == list(range(1, len(code) + 1)), (
            f"{path.name}: outputs not from one run from top to bottom ({counts}); "
            "run `python -m tests.notebooks.refresh_outputs`"
        )
        for cell in code:
            for output in cell.outputs:
                assert output.output_type in {"stream", "display_data", "execute_result"}, (
                    f"{path.name}: an {output.output_type} output"
                )
                assert output.get("name", "stdout") == "stdout", f"{path.name}: stderr output"
                assert set(output.get("data", {})) <= _KINDS, f"{path.name}: {output.data.keys()}"
                assert len(output.get("data", {}).get("image/png", "")) <= MAX_IMAGE, (
                    f"{path.name}: a figure over {MAX_IMAGE // 1000} kB"
                )
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
