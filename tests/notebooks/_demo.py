"""A demo repository and the environment a notebook kernel needs for it.

Shared by the notebook tests (``conftest.py``) and by ``refresh_outputs.py``, which writes
the training notebooks' reference outputs: both must run the notebooks under exactly the
same conditions, or nbval would compare outputs made under different ones.

The demo reference datasets are deposited into a fresh home. Kernels see it as a hub user's
server does: no ``NANOREPO_HOME`` and no catalog, a live service over it at ``NANOREPO_URL``
with a token of user ``trainee``, the storage at ``NANOREPO_STORAGE`` (the server's read-only
mount) and a ``HOME`` of their own, in which nothing may create a repository. A ``python3`` kernel spec written into a private
``JUPYTER_PATH`` directory (searched before the user's and the system's) makes every kernel
run this interpreter, so the notebooks import the nanorepo under test, whatever kernels the
machine has installed.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

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
        Environment for kernels and notebook runners, a hub user's: ``NANOREPO_URL``,
        ``NANOREPO_TOKEN``, ``NANOREPO_STORAGE``, ``HOME`` (:attr:`user_home`), a
        ``JUPYTER_PATH`` whose ``python3`` kernel is this interpreter, no other
        ``NANOREPO_*`` settings (no home: nothing to create a catalog in).
    user_home:
        The kernels' ``HOME``; tests check that no repository appears in it.
    """

    home: Path
    accessions: dict[str, str]
    env: dict[str, str]
    user_home: Path


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


@contextmanager
def demo_repository(root: Path) -> Iterator[DemoRepository]:
    """Deposit the demo datasets under ``root`` (an empty directory) and serve them until
    the block ends."""
    settings = Settings.from_env(root / "home", env={"NANOREPO_USER": "trainee"})
    with Repository(settings, create=True) as repo:
        deposited = deposit_demo(repo)
    accessions = {}
    for role, phrase in _DEMO_TITLES.items():
        found = [d["accession"] for d in deposited if phrase in d["title"]]
        if len(found) != 1:
            raise RuntimeError(f"no single demo dataset titled with {phrase!r}: {deposited}")
        accessions[role] = found[0]
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("NANOREPO_") and k != "MPLBACKEND"
    }
    repo = Repository(settings)
    with repo.catalog.session() as s:
        token = create_token(s, "trainee", role=Role.reader, note="training notebooks")
        s.commit()
    try:
        with live_service(settings, repo=repo) as live:
            user_home = root / "trainee"
            user_home.mkdir()
            import matplotlib

            env.update(
                HOME=str(user_home),
                MPLCONFIGDIR=matplotlib.get_configdir(),  # its font cache, not a new one
                NANOREPO_USER="trainee",
                NANOREPO_URL=live.url,
                NANOREPO_TOKEN=token,
                NANOREPO_STORAGE=str(settings.storage),
                JUPYTER_PATH=str(_kernel_path(root / "jupyter")),
                IPYTHONDIR=str(root / "ipython"),  # no user profile or startup files in kernels
                # jupyter_core warns (an error under our filterwarnings) unless this is set.
                JUPYTER_PLATFORM_DIRS="1",
                PYDEVD_DISABLE_FILE_VALIDATION="1",
            )
            yield DemoRepository(settings.home, accessions, env, user_home)
    finally:
        repo.close()
