"""Fixtures of the run tests: small notebooks, a seeded repository and settings for it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import nbformat
import pytest

from nanorepo.repository import Repository
from nanorepo.settings import Settings
from nanorepo.testing._service import SeededRepository, seed_repository

NotebookFactory = Callable[..., Path]


@pytest.fixture
def notebook(tmp_path: Path) -> NotebookFactory:
    """``notebook(body, name=..., **parameters)``: write a notebook whose cell tagged
    ``parameters`` assigns ``parameters`` and whose next cell is ``body``."""

    def make(body: str, name: str = "analysis.ipynb", **parameters: Any) -> Path:
        nb = nbformat.v4.new_notebook()
        nb.metadata["kernelspec"] = {
            "name": "python3",
            "display_name": "Python 3",
            "language": "python",
        }
        cells = []
        if parameters:
            p = nbformat.v4.new_code_cell("\n".join(f"{k} = {v!r}" for k, v in parameters.items()))
            p.metadata["tags"] = ["parameters"]
            cells.append(p)
        cells.append(nbformat.v4.new_code_cell(body))
        nb.cells = cells
        path = tmp_path / "notebooks" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, path)
        return path

    return make


@pytest.fixture
def seeded(sqlite_repo: Repository, tmp_path: Path) -> SeededRepository:
    """The three access cases (public, granted, hidden) in a SQLite repository."""
    return seed_repository(sqlite_repo, tmp_path / "seed")


@pytest.fixture
def as_alice(sqlite_repo: Repository) -> Settings:
    """The repository's settings with alice acting (the runs' agent)."""
    return sqlite_repo.settings.with_(user="alice")
