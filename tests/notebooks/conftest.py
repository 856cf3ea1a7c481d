"""Fixtures for running the notebooks: a demo repository and a Jupyter kernel from this venv.

The demo reference datasets are deposited once per test session into a temporary home;
kernels find it through ``NANOREPO_HOME`` in their environment. A ``python3`` kernel spec
written into a private ``JUPYTER_PATH`` directory (searched before the user's and the
system's) makes every kernel run this interpreter, so the notebooks import the nanorepo
under test, whatever kernels the machine has installed.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from nanorepo.cli._demo import deposit_demo
from nanorepo.policy import Role, create_token
from nanorepo.repository import Repository
from nanorepo.settings import Settings
from nanorepo.testing._service import live_service

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"

#: Demo datasets by role, found by a phrase of their title.
_DEMO_TITLES = {
    "npc_sted": "confocal and STED",
    "npc_smlm": "dSTORM",
    "sim": "3D-SIM",
    "chromatin": "Chromatin nanodomains",
}


@dataclass(frozen=True)
class DemoRepository:
    """A repository holding the demo datasets, and the environment a kernel needs for it.

    Attributes
    ----------
    home:
        The repository home (``NANOREPO_HOME``).
    accessions:
        Accession per demo dataset role (``npc_sted``, ``npc_smlm``, ``sim``, ``chromatin``).
    env:
        Environment for kernels and notebook runners: ``NANOREPO_HOME``, a ``JUPYTER_PATH``
        whose ``python3`` kernel is this interpreter, no other ``NANOREPO_*`` settings.
    """

    home: Path
    accessions: dict[str, str]
    env: dict[str, str]


def _kernel_path(root: Path) -> Path:
    spec = root / "kernels" / "python3"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "Python 3 (nanorepo tests)",
                "language": "python",
                "metadata": {"debugger": False},
            }
        )
    )
    return root


@pytest.fixture(scope="session")
def demo_repository(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoRepository]:
    """The demo reference datasets, deposited once per session, and a live service over
    them (kernels get ``NANOREPO_URL`` and a token of user ``trainee``, as on the hub)."""
    root = tmp_path_factory.mktemp("notebooks")
    settings = Settings.from_env(root / "home", env={"NANOREPO_USER": "trainee"})
    with Repository(settings) as repo:
        deposited = deposit_demo(repo)
    accessions = {}
    for role, phrase in _DEMO_TITLES.items():
        found = [d["accession"] for d in deposited if phrase in d["title"]]
        assert len(found) == 1, f"no single demo dataset titled with {phrase!r}: {deposited}"
        accessions[role] = found[0]
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("NANOREPO_") and k != "MPLBACKEND"
    }
    repo = Repository(settings)
    with repo.catalog.session() as s:
        token = create_token(s, "trainee", role=Role.reader, note="training notebooks")
        s.commit()
    service = live_service(settings, repo=repo)
    live = service.__enter__()
    env.update(
        NANOREPO_HOME=str(settings.home),
        NANOREPO_USER="trainee",
        NANOREPO_URL=live.url,
        NANOREPO_TOKEN=token,
        JUPYTER_PATH=str(_kernel_path(root / "jupyter")),
        IPYTHONDIR=str(root / "ipython"),  # no user profile or startup files in the kernels
        # jupyter_core warns (an error under our filterwarnings) unless this is set.
        JUPYTER_PLATFORM_DIRS="1",
        PYDEVD_DISABLE_FILE_VALIDATION="1",
    )
    try:
        yield DemoRepository(settings.home, accessions, env)
    finally:
        service.__exit__(None, None, None)
        repo.close()


@pytest.fixture
def kernel_env(demo_repository: DemoRepository, monkeypatch: pytest.MonkeyPatch) -> None:
    """Put the demo repository's kernel environment into ``os.environ`` for one test."""
    for key in [k for k in os.environ if k.startswith("NANOREPO_")]:
        monkeypatch.delenv(key)
    for key, value in demo_repository.env.items():
        monkeypatch.setenv(key, value)
