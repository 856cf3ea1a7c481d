"""Issue 14, finding 8 (deposit part): what a killed deposit leaves behind.

Before: a dataset directory appeared in ``public/`` (visible to every storage mount)
before its catalog commit; a re-run of a deposit killed after publication exited 1
("already deposited"); a deposit killed while converting left its staging directory for
good; ``nanorepo demo`` failed when ``NANOREPO_ALLOWED_ROOTS`` was set.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import write_ome_tiff


def _run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "nanorepo", *args],
        env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip


def _inputs(tmp_path: Path) -> list[str]:
    p = tmp_path / "inputs" / "cell0.ome.tif"
    p.parent.mkdir(parents=True, exist_ok=True)
    write_ome_tiff(p)
    return [str(p)]


def _catalog_versions(env: dict[str, str]) -> int:
    """Committed versions, read straight from the catalog (no command runs recovery)."""
    db = Path(env["NANOREPO_HOME"]) / "catalog.sqlite"
    with sqlite3.connect(db) as con:
        return int(con.execute("select count(*) from version").fetchone()[0])


@pytest.mark.parametrize("failpoint", ["before-publish", "after-publish"])
def test_no_dataset_directory_before_its_catalog_commit_and_rerun_exits_0(
    cli_env: dict[str, str], tmp_path: Path, metadata_file: Path, failpoint: str
) -> None:
    args = ["deposit", *_inputs(tmp_path), "--title", "Crash", "--metadata", str(metadata_file)]
    p = _run(dict(cli_env, NANOREPO_FAILPOINT=failpoint), *args)
    assert p.returncode == -signal.SIGKILL
    public = Path(cli_env["NANOREPO_HOME"]) / "storage" / "public"
    dirs = list(public.glob("S-NANO*")) if public.exists() else []
    # whatever storage mounts show, the catalog knows already
    assert len(dirs) <= _catalog_versions(cli_env)
    again = _run(cli_env, *args)
    assert again.returncode == 0, again.stderr
    assert "S-NANO1@v1" in again.stdout + again.stderr
    listed = json.loads(_run(cli_env, "list", "--json").stdout)
    assert listed["total"] == 1
    assert os.listdir(Path(cli_env["NANOREPO_HOME"]) / "staging") == []


def test_an_abandoned_deposit_does_not_stay_in_staging_for_good(
    cli_env: dict[str, str], tmp_path: Path, metadata_file: Path
) -> None:
    args = ["deposit", *_inputs(tmp_path), "--title", "Left", "--metadata", str(metadata_file)]
    p = _run(dict(cli_env, NANOREPO_FAILPOINT="after-image"), *args)
    assert p.returncode == -signal.SIGKILL
    staging = Path(cli_env["NANOREPO_HOME"]) / "staging"
    (left,) = [d for d in staging.iterdir() if d.name != "uploads"]
    assert (left / "dataset").exists()
    _run(cli_env, "list", "--json")  # recent: kept, so the same command can resume it
    assert left.exists()
    old = time.time() - 4 * 24 * 3600
    for q in [left, *left.rglob("*")]:
        os.utime(q, (old, old), follow_symlinks=False)
    _run(cli_env, "list", "--json")  # any command recovers and sweeps
    assert not left.exists()
    db = Path(cli_env["NANOREPO_HOME"]) / "catalog.sqlite"
    with sqlite3.connect(db) as con:
        assert con.execute("select count(*) from deposit").fetchone()[0] == 0


def test_demo_works_with_allowed_roots(cli_env: dict[str, str], tmp_path: Path) -> None:
    dropbox = tmp_path / "dropbox"
    dropbox.mkdir()
    r = _run(dict(cli_env, NANOREPO_ALLOWED_ROOTS=str(dropbox)), "demo", "--json")
    assert r.returncode == 0, r.stderr[-2000:]
    assert all(d["accession"].startswith("S-NANO") for d in json.loads(r.stdout))
    assert [d.name for d in (Path(cli_env["NANOREPO_HOME"]) / "staging").iterdir()] == []


def test_a_revision_killed_after_publication_reports_its_version_when_run_again(
    cli_env: dict[str, str], tmp_path: Path, metadata_file: Path
) -> None:
    assert _run(cli_env, "deposit", *_inputs(tmp_path), "--title", "R",
                "--metadata", str(metadata_file)).returncode == 0  # fmt: skip
    extra = tmp_path / "inputs" / "cell9.ome.tif"
    write_ome_tiff(extra, seed=9)
    args = ["revise", "S-NANO1", "--add", str(extra), "--note", "add cell9"]
    p = _run(dict(cli_env, NANOREPO_FAILPOINT="revise-mid-publish"), *args)
    assert p.returncode == -signal.SIGKILL
    _run(cli_env, "list", "--json")  # another command finishes the publication
    again = _run(cli_env, *args)
    assert again.returncode == 0, again.stderr
    assert "S-NANO1@v2" in again.stdout + again.stderr
    shown = json.loads(_run(cli_env, "show", "S-NANO1", "--json").stdout)
    assert shown["version"] == 2  # not a duplicate v3
