"""End-to-end UI tests of the JupyterLab extension: Playwright drives Debian's Chromium
against a real JupyterHub (configured like ``nanorepo up``) with the nanorepo service over
a seeded repository; the tests themselves are ``extension/ui-tests/tests/*.spec.ts``.

alice finds a dataset, opens it, filters its images, discusses an image (thread, reply,
edit, resolve), inserts the code cell, runs it and sees the image's shape; she reads the
dataset's provenance (runs with inputs and outputs, a failed run's error, the lineage to a
derived dataset) and opens a run's executed notebook; bob must not see the embargoed
dataset nobody granted him, nor the run that read it. The tests save the README's
screenshots to ``docs/images/lab-panel.png``, ``lab-dataset.png``, ``lab-provenance.png``
and ``landing.png`` (the service's landing page).

The hub runs on SQLite only: the catalog backends are the service's business, covered by
its own suite; one browser run is what this machine can afford.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from nanorepo.repository import Repository
from tests.extension._seed import deposit_image_dataset, record_provenance
from tests.extension.conftest import UI_TESTS

pytestmark = [
    pytest.mark.slow,
    pytest.mark.parametrize("jupyterhub", ["sqlite"], indirect=True),
]

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "docs" / "images"
CHROMIUM = "/usr/bin/chromium"


def _chromium() -> str:
    exe = os.environ.get("CHROMIUM") or (CHROMIUM if Path(CHROMIUM).exists() else None)
    exe = exe or shutil.which("chromium")
    if exe is None:
        pytest.fail("the UI tests need Chromium: apt-get install chromium (./dev test does)")
    return exe


def test_ui(jupyterhub: Any, hub_servers: Any, playwright_test: list[str], tmp_path: Path) -> None:
    hub = jupyterhub
    with Repository(hub.settings) as repo:
        images = deposit_image_dataset(repo, tmp_path / "images")
        provenance = record_provenance(repo, images, hub.seed, tmp_path / "runs")
    for user in ("alice", "bob"):
        hub_servers(user)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shots = {name: SCREENSHOTS / f"lab-{name}.png" for name in ("panel", "dataset", "provenance")}
    shots["landing"] = SCREENSHOTS / "landing.png"
    before = {p: p.stat().st_mtime_ns if p.exists() else 0 for p in shots.values()}
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NANOREPO_", "JUPYTER"))}
    env.update(
        NANOREPO_UI_HUB=hub.url,
        NANOREPO_UI_PASSWORD=hub.password,
        NANOREPO_UI_SEED=json.dumps(images.seed(hub.seed, provenance)),
        NANOREPO_UI_SCREENSHOTS=str(SCREENSHOTS),
        NANOREPO_UI_OUTPUT=str(tmp_path / "results"),
        CHROMIUM=_chromium(),
        CI="true",
    )
    proc = subprocess.run(
        [*playwright_test, "test", "tests/nanorepo.spec.ts"],
        cwd=UI_TESTS, env=env, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    (tmp_path / "playwright.log").write_text(proc.stdout + proc.stderr)
    out = proc.stdout[-8000:] + proc.stderr[-4000:]
    assert proc.returncode == 0, f"{out}\n--- hub log ---\n{hub.log_tail(40)}"
    assert "4 passed" in proc.stdout, out
    for path in shots.values():
        assert path.stat().st_mtime_ns > before[path], f"{path} was not written"
        data = path.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
        assert 5_000 < len(data) < 600_000, (path, len(data))
