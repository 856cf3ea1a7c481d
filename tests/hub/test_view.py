"""The storage view of a user's server, from the catalog's grants: which embargoed
datasets, the local view of links, and the KubeSpawner mounts (on SQLite and PostgreSQL).
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from sqlmodel import select
from traitlets.config import Config

import nanorepo
from nanorepo.catalog.models import Dataset
from nanorepo.errors import DatasetNotFound, InvalidInput
from nanorepo.hub import (
    NanorepoHub,
    build_local_view,
    hub_principal,
    kube_storage,
    readable_embargoed,
    view_dir_name,
)
from nanorepo.settings import Settings
from nanorepo.storage import Layout
from nanorepo.testing._service import SeededRepository, seed_repository


@pytest.fixture
def seeded(repo: Any, tmp_path: Path) -> SeededRepository:
    return seed_repository(repo, tmp_path / "seed")


def _readable(repo: Any, user: str, *, admin: bool = False, groups: tuple[str, ...] = ()) -> list:
    with repo.catalog.session() as s:
        return readable_embargoed(s, hub_principal(s, user, admin=admin, groups=groups))


def test_readable_embargoed_follows_the_grants(repo: Any, seeded: SeededRepository) -> None:
    both = sorted([seeded.granted, seeded.hidden])
    assert _readable(repo, "carol") == []  # signed in, granted nothing
    assert _readable(repo, "bob") == [seeded.granted]  # granted by name
    assert _readable(repo, "dave") == [seeded.granted]  # catalog group lab
    assert _readable(repo, "frank", groups=("lab",)) == [seeded.granted]  # hub group only
    assert _readable(repo, "frank", groups=("other",)) == []
    assert _readable(repo, "alice") == both  # the owner
    assert _readable(repo, "cur") == both  # curators see everything
    assert _readable(repo, "nobody-yet", admin=True) == both  # hub admins are admins


def test_taken_down_datasets_leave_readers_views(repo: Any, seeded: SeededRepository) -> None:
    with repo.catalog.session() as s:
        ds = s.exec(select(Dataset).where(Dataset.accession == seeded.granted)).one()
        ds.state = "takedown"
        s.add(ds)
        s.commit()
    assert _readable(repo, "bob") == []
    assert seeded.granted in _readable(repo, "cur")


def test_local_view_holds_public_and_granted_only(
    repo: Any, seeded: SeededRepository, tmp_path: Path
) -> None:
    storage = repo.settings.storage
    view = build_local_view(tmp_path / "views" / "bob", storage, _readable(repo, "bob"))
    assert (view / "public").resolve() == (storage / "public").resolve()
    assert sorted(p.name for p in (view / "embargoed").iterdir()) == [seeded.granted]
    # shaped like the storage root: Layout and nanorepo.open work on it without a catalog
    user_settings = Settings.from_env(tmp_path / "user-home", env={"NANOREPO_STORAGE": str(view)})
    assert not Path(user_settings.database_url.split("///")[1]).exists()
    for acc in (seeded.public, seeded.granted):
        ds = nanorepo.open(acc, settings=user_settings)
        region = ds.images[0].to_xarray(dask=False).isel(x=slice(0, 8), y=slice(0, 8))
        assert region.values.shape[-2:] == (8, 8)
    with pytest.raises(DatasetNotFound):
        nanorepo.open(seeded.hidden, settings=user_settings)
    assert not Layout(view).dataset_dir(seeded.hidden, "embargoed").exists()


def test_local_view_follows_grant_changes_at_rebuild(
    repo: Any, seeded: SeededRepository, tmp_path: Path
) -> None:
    view = tmp_path / "views" / "bob"
    build_local_view(view, repo.settings.storage, _readable(repo, "bob"))
    repo.revoke(seeded.granted, "user", "bob", who="alice")
    assert (view / "embargoed" / seeded.granted).exists()  # a running server keeps it ...
    build_local_view(view, repo.settings.storage, _readable(repo, "bob"))
    assert list((view / "embargoed").iterdir()) == []  # ... until its next start
    repo.grant(seeded.hidden, "user", "bob", who="alice")
    build_local_view(view, repo.settings.storage, _readable(repo, "bob"))
    assert [p.name for p in (view / "embargoed").iterdir()] == [seeded.hidden]


def test_local_view_refuses_what_is_in_its_way(sqlite_settings: Settings, tmp_path: Path) -> None:
    view = tmp_path / "view"
    (view / "embargoed" / "S-NANO7").mkdir(parents=True)
    (view / "embargoed" / "S-NANO7" / "notes.txt").write_text("mine")
    with pytest.raises(InvalidInput, match="in the way"):
        build_local_view(view, sqlite_settings.storage, [])
    assert (view / "embargoed" / "S-NANO7" / "notes.txt").read_text() == "mine"
    with pytest.raises(InvalidInput, match="not an accession"):
        build_local_view(view, sqlite_settings.storage, ["../../etc"])


@pytest.mark.parametrize(
    ("user", "expected"),
    [("bob", "bob"), ("a.b", "a.2eb"), ("a.2eb", "a.2e2eb"), ("Ana/..", ".41na.2f.2e.2e")],
)
def test_view_dir_names_are_one_safe_component(user: str, expected: str) -> None:
    assert view_dir_name(user) == expected
    assert ("/" not in expected and not expected.startswith(".")) or expected[1:3] != ".."


VOLUME = {"name": "nanorepo-storage", "persistentVolumeClaim": {"claimName": "repo"}}


def test_kube_mounts_for_users_with_and_without_grants(repo: Any, seeded: SeededRepository) -> None:
    volumes, mounts = kube_storage(
        _readable(repo, "bob"), volume=VOLUME, mount_path="/srv/data/", sub_path="/nanorepo"
    )
    assert volumes == [VOLUME]
    assert mounts == [
        {"name": "nanorepo-storage", "mountPath": "/srv/data/public",
         "subPath": "nanorepo/public", "readOnly": True},
        {"name": "nanorepo-storage", "mountPath": f"/srv/data/embargoed/{seeded.granted}",
         "subPath": f"nanorepo/embargoed/{seeded.granted}", "readOnly": True},
    ]  # fmt: skip
    _, carol = kube_storage(_readable(repo, "carol"), volume=VOLUME)
    assert carol == [
        {"name": "nanorepo-storage", "mountPath": "/srv/nanorepo/storage/public",
         "subPath": "public", "readOnly": True}
    ]  # fmt: skip
    _, alice = kube_storage(_readable(repo, "alice"), volume=VOLUME)
    assert {m["subPath"] for m in alice} == {
        "public",
        f"embargoed/{seeded.granted}",
        f"embargoed/{seeded.hidden}",
    }
    assert all(m["readOnly"] is True for m in alice)


def test_kube_mounts_refuse_bad_input() -> None:
    with pytest.raises(InvalidInput, match="needs a name"):
        kube_storage([], volume={"persistentVolumeClaim": {"claimName": "x"}})
    with pytest.raises(InvalidInput, match="absolute"):
        kube_storage([], volume=VOLUME, mount_path="srv")
    with pytest.raises(InvalidInput, match="not an accession"):
        kube_storage(["S-NANO1/../../x"], volume=VOLUME)


class _KubeLikeSpawner:
    """The attributes of KubeSpawner the spawn hook touches (kubespawner is not a
    dependency of nanorepo; the chart's hub image has it)."""

    def __init__(self, name: str, *, groups: tuple[str, ...] = ()) -> None:
        self.user = SimpleNamespace(
            name=name, admin=False, groups=[SimpleNamespace(name=g) for g in groups]
        )
        self.volumes: list[dict[str, Any]] = [{"name": "home", "emptyDir": {}}]
        self.volume_mounts: list[dict[str, Any]] = [{"name": "home", "mountPath": "/home"}]
        self.environment: dict[str, str] = {"KEEP": "1"}
        self.user_options: dict[str, Any] = {}
        self.log = logging.getLogger("test")


def test_spawn_hook_on_kubernetes_replaces_its_mounts_each_start(
    repo: Any, seeded: SeededRepository, monkeypatch: pytest.MonkeyPatch
) -> None:
    c = Config()
    c.NanorepoHub.home = str(repo.settings.home)
    c.NanorepoHub.database_url = repo.settings.database_url
    c.NanorepoHub.kube_volume = VOLUME
    c.NanorepoHub.server_service_url = "http://nanorepo:8000/services/nanorepo"
    monkeypatch.setenv("NANOREPO_PROCESS_MARK", "m1")
    hub = NanorepoHub(config=c)
    try:
        spawner = _KubeLikeSpawner("frank", groups=("lab",))
        for _ in range(2):  # a restart must not pile up mounts
            asyncio.run(hub.pre_spawn_hook(spawner))
            assert [m["mountPath"] for m in spawner.volume_mounts] == [
                "/home", "/srv/nanorepo/storage/public",
                f"/srv/nanorepo/storage/embargoed/{seeded.granted}",
            ]  # fmt: skip
            assert [v["name"] for v in spawner.volumes] == ["home", "nanorepo-storage"]
        assert spawner.environment == {
            "KEEP": "1",
            "NANOREPO_PROCESS_MARK": "m1",
            "NANOREPO_STORAGE": "/srv/nanorepo/storage",
            "NANOREPO_URL": "http://nanorepo:8000/services/nanorepo",
        }
        repo.revoke(seeded.granted, "group", "lab", who="alice")
        asyncio.run(hub.pre_spawn_hook(spawner))
        assert [m["mountPath"] for m in spawner.volume_mounts][1:] == [
            "/srv/nanorepo/storage/public"
        ]
    finally:
        hub.close()
