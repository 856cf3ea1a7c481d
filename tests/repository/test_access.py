"""Embargo, release (by hand and by date), grants: catalog, storage area and history agree,
and an interrupted move is finished on the next start."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest

from nanorepo.errors import InvalidInput
from nanorepo.repository import Repository
from nanorepo.testing._service import seed_repository


def _area(repo: Repository, acc: str) -> str:
    areas = [a for a in ("public", "embargoed") if repo.layout.dataset_dir(acc, a).is_dir()]
    assert len(areas) == 1, areas
    return areas[0]


def test_embargo_then_release_by_date_moves_storage_and_records(
    repo: Repository, tmp_path: Path
) -> None:
    seed = seed_repository(repo, tmp_path / "seed")
    acc = seed.public
    until = date.today() + timedelta(days=3)
    repo.embargo(acc, until, reason="paper in review", who="cur")
    assert repo.show(acc)["access"] == "embargoed"
    assert _area(repo, acc) == "embargoed"
    assert repo.release_due(date.today()) == []  # not yet
    assert repo.release_due(until) == [acc]
    assert repo.show(acc)["access"] == "public"
    assert _area(repo, acc) == "public"
    changes = [h for h in repo.history(acc) if h["key"] == "access"]
    assert [(c["old"]["access"], c["new"]["access"]) for c in changes] == [
        ("public", "embargoed"),
        ("embargoed", "public"),
    ]
    assert changes[0]["who"] == "cur" and changes[1]["who"] == "nanorepo"
    assert "embargo ended" in changes[1]["reason"]
    # the data is readable where it now is
    assert repo.open(acc).images[0].to_xarray().shape[-1] == 48


def test_interrupted_move_is_finished_on_next_start(repo: Repository, tmp_path: Path) -> None:
    seed = seed_repository(repo, tmp_path / "seed")
    acc = seed.hidden
    # a crash after the catalog said "public" but before the directory moved
    with repo.catalog.session() as s:
        repo.catalog.set_access(s, acc, "public", None)
        s.commit()
    assert _area(repo, acc) == "embargoed"
    fresh = Repository(repo.settings)
    fresh.ready()
    assert _area(fresh, acc) == "public"
    fresh.close()


def test_grants_and_revocations_are_revisions(repo: Repository, tmp_path: Path) -> None:
    seed = seed_repository(repo, tmp_path / "seed")
    acc = seed.hidden
    repo.grant(acc, "group", "imaging-core", who="alice")
    repo.grant(acc, "group", "imaging-core", who="alice")  # idempotent: one revision
    assert repo.revoke(acc, "group", "imaging-core", who="alice")
    assert not repo.revoke(acc, "group", "imaging-core", who="alice")
    grants = [h for h in repo.history(acc) if h["key"] == "grant"]
    assert [(g["old"], g["new"]) for g in grants] == [
        (None, {"kind": "group", "principal": "imaging-core"}),
        ({"kind": "group", "principal": "imaging-core"}, None),
    ]
    with pytest.raises(InvalidInput, match="user or a group"):
        repo.grant(acc, "robot", "x", who="alice")
