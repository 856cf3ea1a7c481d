"""The layers of STYLE.md and docs/architecture.md, enforced: import-linter's contract in
``.importlinter`` must be kept (imports run one way; no package imports a higher one)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_imports_run_one_way() -> None:
    lint = Path(sys.executable).with_name("lint-imports")
    proc = subprocess.run(
        [str(lint), "--config", str(ROOT / ".importlinter"), "--no-cache"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
    assert "1 kept, 0 broken" in proc.stdout


#: Which of the four (and the front door) may not reach which, even by function-level imports.
FORBIDDEN = {
    "access": ["client", "provenance", "repository", "connection"],
    "provenance": ["client", "repository", "connection"],
    "repository": ["client", "connection"],
    "client": ["repository", "connection"],
}


def test_access_client_provenance_and_repository_import_no_circle() -> None:
    """The circle the front door broke (access -> client -> provenance -> repository ->
    access) stays broken: features are handed what they need, they do not import it."""
    import grimp

    graph = grimp.build_graph("nanorepo", cache_dir=None, exclude_type_checking_imports=True)
    for low, highs in FORBIDDEN.items():
        for high in highs:
            chain = graph.find_shortest_chain(
                importer=f"nanorepo.{low}", imported=f"nanorepo.{high}", as_packages=True
            )
            assert chain is None, f"nanorepo.{low} reaches nanorepo.{high}: {' -> '.join(chain)}"
