"""Verified bulk download (``nanorepo download``, the ``manifest``/``objects`` routes):
every object arrives checked against the version's Merkle tree, an interrupted download
resumes without re-fetching what it has, BagIt bags validate, the embargo holds, and
neither a hostile manifest nor a link planted in storage gets anything out."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import bagit
import httpx
import pytest

from nanorepo.errors import DatasetNotFound, IntegrityError, NanorepoError
from nanorepo.transfer import HttpSource, download, plan


def _storage_objects(live: Any, ref: str) -> tuple[Path, dict[str, tuple[str, int]]]:
    """The version's objects as storage holds them (path -> (sha256, size))."""
    show = live.repo.show(ref)
    from nanorepo.service._download import version_objects

    with live.repo.catalog.session() as s:
        v = live.repo.catalog.version(s, show["accession"], show["version"])
        return Path(show["path"]), version_objects(Path(show["path"]).resolve(), v)


def _tree(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in root.rglob("*")
        if p.is_file()
    }


def test_download_verifies_every_object_and_resumes(live: Any, tmp_path: Path) -> None:
    ref = f"{live.seed.public}@v1"
    dataset_dir, objects = _storage_objects(live, ref)
    with HttpSource(live.url, {}, ref) as source:  # anonymous: public data
        result = download(source, tmp_path, workers=4)
    root = tmp_path / ref
    got = _tree(root)
    # every object of the Merkle tree, byte for byte as stored, plus the version manifest
    assert {k: v[0] for k, v in objects.items()}.items() <= got.items()
    assert set(got) == set(objects) | {"versions/v1/manifest.json"}
    for path in objects:
        assert (root / path).read_bytes() == (dataset_dir / path).read_bytes()
    assert result.bytes_fetched == result.bytes_total == sum(s for _, s in objects.values())
    assert not list(root.rglob("*.part"))

    # as an interrupted run leaves it: a half-fetched object, a damaged part, a damaged
    # and a missing final object
    big, (_, big_size) = max(objects.items(), key=lambda kv: kv[1][1])
    smaller = sorted((k for k in objects if k != big), key=lambda k: -objects[k][1])
    damaged_part, damaged_final, missing = smaller[:3]
    data = (root / big).read_bytes()
    (root / big).unlink()
    Path(f"{root / big}.part").write_bytes(data[: big_size // 2])
    (root / damaged_part).unlink()
    Path(f"{root / damaged_part}.part").write_bytes(b"\0" * (objects[damaged_part][1] // 2))
    final = root / damaged_final
    final.write_bytes(bytes([final.read_bytes()[0] ^ 1]) + final.read_bytes()[1:])
    (root / missing).unlink()
    with HttpSource(live.url, {}, ref) as source:
        again = download(source, tmp_path, workers=4)
    assert _tree(root) == got and not list(root.rglob("*.part"))
    # fetched again: the missing half of the big object, the damaged part (its half was
    # kept, failed the digest, then fetched whole), the damaged and the missing object
    sizes = {k: objects[k][1] for k in (damaged_part, damaged_final, missing)}
    expected = big_size - big_size // 2 + (sizes[damaged_part] - sizes[damaged_part] // 2)
    expected += sizes[damaged_part] + sizes[damaged_final] + sizes[missing]
    assert again.bytes_fetched == expected < again.bytes_total


def test_embargo_holds_and_nothing_is_written(live: Any, tmp_path: Path) -> None:
    ref = f"{live.seed.hidden}@v1"
    with pytest.raises(DatasetNotFound):
        download(HttpSource(live.url, {}, ref), tmp_path)
    assert list(tmp_path.iterdir()) == []
    with httpx.Client(base_url=live.url, timeout=30) as c:
        base = f"/datasets/{live.seed.hidden}/versions/v1"
        assert c.get(f"{base}/manifest").status_code == 404
        assert c.get(f"{base}/objects/versions/v1/metadata.json").status_code == 404
    # a granted reader gets it
    bob = {"Authorization": f"token {live.seed.tokens['bob']}"}
    with HttpSource(live.url, bob, f"{live.seed.granted}@v1") as source:
        granted = download(source, tmp_path)
    assert granted.objects > 0 and granted.bytes_fetched == granted.bytes_total


def test_objects_route_serves_only_what_the_manifests_list(live: Any, tmp_path: Path) -> None:
    ref = f"{live.seed.public}@v1"
    dataset_dir, objects = _storage_objects(live, ref)
    base = f"/datasets/{live.seed.public}/versions/v1/objects"
    with httpx.Client(base_url=live.url, timeout=30) as c:
        for path in ("../../catalog.sqlite", "versions/v1/nope.json", "%2e%2e/%2e%2e/x",
                     "versions/v1/manifest.json", "/etc/passwd"):  # fmt: skip
            r = c.get(f"{base}/{path}")  # (a client may normalise ../ into another route)
            assert r.status_code in (404, 422) and b"SQLite" not in r.content, path
        # a listed object replaced by a link to another dataset's (embargoed) file
        path = next(k for k in objects if k.endswith("metadata.json"))
        target = dataset_dir / path
        secret = Path(live.repo.show(f"{live.seed.hidden}@v1")["path"]) / path
        saved = target.read_bytes()
        target.unlink()
        os.symlink(secret, target)
        try:
            r = c.get(f"{base}/{path}")
            assert r.status_code == 404 and b"zanzibar" not in r.content
            with HttpSource(live.url, {}, ref) as source, pytest.raises(NanorepoError) as info:
                download(source, tmp_path)  # names the object, keeps nothing of it
            assert "metadata.json" in info.value.message
            assert not (tmp_path / ref / path).exists()
        finally:
            target.unlink()
            target.write_bytes(saved)


class _HostileSource:
    """A server whose manifest names paths outside the destination (its digest matches:
    the same server sends both)."""

    accession, number = "S-NANO1", 1

    def __init__(self, paths: list[str]) -> None:
        manifest = {
            "format": "nanorepo-manifest/1", "algorithm": "sha256", "root": ".",
            "objects": {p: {"sha256": "0" * 64, "size": 1} for p in paths}, "images": {},
        }  # fmt: skip
        from nanorepo.storage import canonical_json

        self.raw = canonical_json(manifest)
        self.manifest_sha256 = hashlib.sha256(self.raw).hexdigest()

    def whole(self, path: str) -> bytes:
        return self.raw

    def read(self, path: str, sha256: str, offset: int) -> Any:
        yield b"x"

    def close(self) -> None:
        pass


@pytest.mark.parametrize("path", ["../escaped", "/tmp/abs", "a/../../b", "ok/../../../x"])
def test_a_hostile_manifest_writes_nothing(path: str, tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    with pytest.raises(IntegrityError) as info:
        download(_HostileSource(["files/v1/fine.txt", path]), dest)  # type: ignore[arg-type]
    assert "not a plain relative path" in info.value.message
    assert list(tmp_path.iterdir()) == []  # not even the destination folder
    with pytest.raises(IntegrityError):
        plan(_HostileSource([path]))  # type: ignore[arg-type]


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "nanorepo", *args], env=env,
                          capture_output=True, text=True, timeout=300)  # fmt: skip


def test_cli_bag_validates_and_local_equals_remote(live: Any, tmp_path: Path) -> None:
    base = {k: v for k, v in os.environ.items() if not k.startswith("NANOREPO_")}
    base["HOME"] = str(tmp_path / "home")
    remote = {**base, "NANOREPO_URL": live.url, "NANOREPO_TOKEN": live.seed.tokens["bob"]}
    local = {**base, "NANOREPO_HOME": str(live.settings.home), "NANOREPO_USER": "alice"}
    ref = f"{live.seed.granted}@v1"
    bagged = _cli(remote, "download", ref, str(tmp_path / "bag"), "--bagit")
    assert bagged.returncode == 0, bagged.stderr
    assert "verified" in bagged.stderr and "BagIt bag written" in bagged.stderr
    bag = bagit.Bag(str(tmp_path / "bag" / ref))
    bag.validate()  # bagit's own check: every payload file against manifest-sha256.txt
    assert bag.info["External-Identifier"] == ref
    here = _cli(local, "download", ref, str(tmp_path / "local"))
    assert here.returncode == 0, here.stderr
    assert _tree(tmp_path / "local" / ref) == {
        k.removeprefix("data/"): v
        for k, v in _tree(tmp_path / "bag" / ref).items()
        if k.startswith("data/")
    }
    # running it again on the finished bag is refused, and says why
    again = _cli(remote, "download", ref, str(tmp_path / "bag"), "--bagit")
    assert again.returncode == 1 and "already a finished BagIt bag" in again.stderr
    json.dumps(bag.info)  # plain data
