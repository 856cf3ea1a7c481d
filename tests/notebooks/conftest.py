"""Fixtures for running the notebooks: a demo repository and a Jupyter kernel from this venv
(see ``_demo.py``)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.notebooks._demo import NOTEBOOKS, DemoRepository
from tests.notebooks._demo import demo_repository as _demo_repository

__all__ = ["NOTEBOOKS", "DemoRepository"]


@pytest.fixture(scope="session")
def demo_repository(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoRepository]:
    """The demo reference datasets, deposited once per session, and a live service over
    them (kernels get ``NANOREPO_URL`` and a token of user ``trainee``, as on the hub)."""
    with _demo_repository(tmp_path_factory.mktemp("notebooks")) as demo:
        yield demo


@pytest.fixture
def kernel_env(demo_repository: DemoRepository, monkeypatch: pytest.MonkeyPatch) -> None:
    """Put the demo repository's kernel environment into ``os.environ`` for one test."""
    for key in [k for k in os.environ if k.startswith("NANOREPO_")]:
        monkeypatch.delenv(key)
    for key, value in demo_repository.env.items():
        monkeypatch.setenv(key, value)
