"""The shared notebooks in each user's home: copied on first start, updated when untouched,
never over the user's edits, deletions respected."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import httpx
import pytest

from nanorepo.jupyter import bundled_notebooks, sync_notebooks
from nanorepo.jupyter._notebooks import MANIFEST
from tests.jupyter._servers import jupyter_server

NB = "training/01_intro.ipynb"
SIDE = "training/01_intro (updated).ipynb"


def _nb(text: str) -> str:
    cell = {"cell_type": "markdown", "metadata": {}, "source": [text]}
    return json.dumps({"cells": [cell], "metadata": {}, "nbformat": 4, "nbformat_minor": 5})


@pytest.fixture
def source(tmp_path: Path) -> Path:
    src = tmp_path / "shipped"
    (src / "training").mkdir(parents=True)
    (src / "analyses").mkdir()
    (src / NB).write_text(_nb("version 1"))
    (src / "analyses/rings.ipynb").write_text(_nb("rings"))
    (src / "README.md").write_text("# notebooks\n")
    (src / "training/.ipynb_checkpoints").mkdir()
    (src / "training/.ipynb_checkpoints/01_intro-checkpoint.ipynb").write_text("{}")
    return src


def test_first_start_copies_everything(source: Path, tmp_path: Path) -> None:
    home = tmp_path / "home" / "nanorepo-notebooks"
    report = sync_notebooks(home, source)
    assert sorted(report.copied) == ["README.md", "analyses/rings.ipynb", NB]
    assert (home / NB).read_text() == (source / NB).read_text()
    assert not (home / "training/.ipynb_checkpoints").exists()
    manifest = json.loads((home / MANIFEST).read_text())
    assert set(manifest["files"]) == {"README.md", "analyses/rings.ipynb", NB}
    again = sync_notebooks(home, source)
    assert not again.changed and again.kept_edited == []


def test_untouched_notebooks_are_updated(source: Path, tmp_path: Path) -> None:
    home = tmp_path / "nb"
    sync_notebooks(home, source)
    (source / NB).write_text(_nb("version 2"))
    (source / "training/02_new.ipynb").write_text(_nb("new"))
    report = sync_notebooks(home, source)
    assert report.updated == [NB] and report.copied == ["training/02_new.ipynb"]
    assert "version 2" in (home / NB).read_text()
    assert not (home / SIDE).exists()


def test_edited_notebook_is_kept_and_new_version_goes_next_to_it(
    source: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    home = tmp_path / "nb"
    sync_notebooks(home, source)
    mine = _nb("version 1 with my notes")
    (home / NB).write_text(mine)
    # nothing new shipped: the edit simply stands
    report = sync_notebooks(home, source)
    assert report.kept_edited == [NB] and not report.changed
    # a new version: theirs untouched, ours next to it, and the log says where
    (source / NB).write_text(_nb("version 2"))
    with caplog.at_level(logging.WARNING, logger="nanorepo.jupyter"):
        report = sync_notebooks(home, source)
    assert report.side_copies == [SIDE]
    assert (home / NB).read_text() == mine
    assert "version 2" in (home / SIDE).read_text()
    assert "kept your edited" in caplog.text and "(updated)" in caplog.text
    # idempotent; a later version refreshes the offer as long as they did not edit it
    assert not sync_notebooks(home, source).changed
    (source / NB).write_text(_nb("version 3"))
    assert sync_notebooks(home, source).side_copies == [SIDE]
    assert "version 3" in (home / SIDE).read_text() and (home / NB).read_text() == mine
    # if they edit the offer too, neither is touched
    (home / SIDE).write_text(_nb("merged by hand"))
    (source / NB).write_text(_nb("version 4"))
    with caplog.at_level(logging.WARNING, logger="nanorepo.jupyter"):
        report = sync_notebooks(home, source)
    assert not report.changed and "both hold your edits" in caplog.text
    assert (home / NB).read_text() == mine and "merged by hand" in (home / SIDE).read_text()


def test_deletions_are_respected(source: Path, tmp_path: Path) -> None:
    """A deleted notebook stays deleted; only a newer version of it is offered again."""
    home = tmp_path / "nb"
    sync_notebooks(home, source)
    (home / NB).unlink()
    report = sync_notebooks(home, source)
    assert report.kept_deleted == [NB] and not (home / NB).exists()
    (source / NB).write_text(_nb("version 2"))
    assert sync_notebooks(home, source).copied == [NB]
    # a deleted offer of an edited notebook is not brought back either
    (home / NB).write_text(_nb("mine"))
    (source / NB).write_text(_nb("version 3"))
    assert sync_notebooks(home, source).side_copies == [SIDE]
    (home / SIDE).unlink()
    report = sync_notebooks(home, source)
    assert report.kept_deleted == [SIDE] and not (home / SIDE).exists()


def test_a_users_own_file_of_the_same_name_is_never_overwritten(
    source: Path, tmp_path: Path
) -> None:
    """Files there before the first copy, or after the manifest was lost, are the user's."""
    home = tmp_path / "nb"
    (home / "training").mkdir(parents=True)
    (home / NB).write_text("my own notebook")
    report = sync_notebooks(home, source)
    assert (home / NB).read_text() == "my own notebook"
    assert report.side_copies == [SIDE] and "version 1" in (home / SIDE).read_text()
    (home / MANIFEST).write_text("{not json")
    sync_notebooks(home, source)
    assert (home / NB).read_text() == "my own notebook"


def test_bundled_notebooks_are_found() -> None:
    found = bundled_notebooks()
    assert (found / "training").is_dir() and list((found / "training").glob("*.ipynb"))


def test_server_start_copies_and_later_starts_keep_edits(tmp_path: Path) -> None:
    """The real extension on a real server: the first start fills the home; after the user
    edits a notebook a restart leaves it alone. Without NANOREPO_URL the forwarder says
    what to set."""
    shipped = sorted(
        p.relative_to(bundled_notebooks()).as_posix()
        for p in bundled_notebooks().rglob("*.ipynb")
        if ".ipynb_checkpoints" not in p.parts
    )
    with jupyter_server(tmp_path / "j", {}) as jp:
        copied = jp.root / "nanorepo-notebooks"
        assert sorted(p.relative_to(copied).as_posix() for p in copied.rglob("*.ipynb")) == shipped
        r = httpx.get(jp.api("datasets"), headers=jp.headers, timeout=30)
        conf = httpx.get(jp.api("_config"), headers=jp.headers, timeout=30).json()
    assert r.status_code == 502 and "NANOREPO_URL" in r.json()["hint"]
    assert conf["service_url_set"] is False and conf["notebooks"] == str(copied)
    edited = copied / shipped[0]
    edited.write_text(_nb("my analysis"))
    deleted = copied / shipped[-1]
    deleted.unlink()
    with jupyter_server(tmp_path / "j", {}):
        pass
    assert edited.read_text() == _nb("my analysis")
    assert not deleted.exists()
