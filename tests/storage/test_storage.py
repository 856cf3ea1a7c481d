"""Storage layout, digests and manifests."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from nanorepo.errors import IntegrityError, InvalidInput, PathNotAllowed
from nanorepo.storage import (
    Layout,
    Manifest,
    build_image_manifest,
    canonical_json,
    check_name,
    hash_files,
    load_manifest,
    parse_ref,
    publish_dir,
    write_manifest,
)


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("S-NANO1", ("S-NANO1", None)),
        ("S-NANO12@v3", ("S-NANO12", 3)),
        (" S-NANO7@4 ", ("S-NANO7", 4)),
    ],
)
def test_parse_ref(ref: str, expected: tuple[str, int | None]) -> None:
    assert parse_ref(ref) == expected


@pytest.mark.parametrize(
    "ref",
    [
        "",
        "S-NANO0",
        "S-NANO1@v0",
        "../S-NANO1",
        "S-NANO1/../../etc",
        "s-nano1",
        "S-NANO1@vx",
        "S-NANO1\x00",
    ],
)
def test_parse_ref_rejects(ref: str) -> None:
    with pytest.raises(InvalidInput):
        parse_ref(ref)


@pytest.mark.parametrize(
    "name", ["..", ".", "a/b", "a\\b", "", "-x", "x" * 129, "é", "a b", ".hidden"]
)
def test_check_name_rejects(name: str) -> None:
    with pytest.raises(InvalidInput):
        check_name(name)


@pytest.mark.parametrize(
    "rel", ["../x", "/etc/passwd", "a/../../b", "a\\..\\b", "a//b", "a/./b", "", "a/\x00"]
)
def test_resolve_refuses_escapes(tmp_path: Path, rel: str) -> None:
    layout = Layout(tmp_path)
    with pytest.raises(PathNotAllowed):
        layout.resolve(tmp_path / "public" / "S-NANO1", rel)


def test_resolve_refuses_symlink_escape(tmp_path: Path) -> None:
    d = tmp_path / "public" / "S-NANO1"
    d.mkdir(parents=True)
    (d / "link").symlink_to(tmp_path)
    with pytest.raises(PathNotAllowed):
        Layout(tmp_path).resolve(d, "link/other")


def test_canonical_json_is_order_independent() -> None:
    a = canonical_json({"b": 1, "a": [1.0, "é"], "c": {"y": None, "x": True}})
    b = canonical_json({"c": {"x": True, "y": None}, "a": [1.0, "é"], "b": 1})
    assert a == b
    assert a == '{"a":[1,"é"],"b":1,"c":{"x":true,"y":null}}'.encode()


def test_hash_files_matches_hashlib(tmp_path: Path) -> None:
    files = []
    for i in range(20):
        p = tmp_path / f"f{i}"
        p.write_bytes(bytes([i]) * (i * 100_003))
        files.append(p)
    got = hash_files(files, workers=3)
    for p in files:
        assert got[p].sha256 == hashlib.sha256(p.read_bytes()).hexdigest()
        assert got[p].size == p.stat().st_size


def test_manifest_round_trip_and_tamper(tmp_path: Path) -> None:
    img = tmp_path / "img.ome.zarr"
    (img / "0" / "c").mkdir(parents=True)
    (img / "zarr.json").write_text("{}")
    (img / "0" / "c" / "0").write_bytes(b"\x01" * 1000)
    m = build_image_manifest(img, "images/v1/img.ome.zarr")
    assert set(m.objects) == {"zarr.json", "0/c/0"}
    digest = write_manifest(m, tmp_path / "img.manifest.json")
    again = load_manifest(tmp_path / "img.manifest.json", digest)
    assert again.to_json() == m.to_json()
    assert (
        Manifest.from_json(json.loads((tmp_path / "img.manifest.json").read_bytes())).digest
        == digest
    )
    (tmp_path / "img.manifest.json").write_bytes(m.to_bytes().replace(b"0/c/0", b"0/c/1"))
    with pytest.raises(IntegrityError, match="differs from the recorded"):
        load_manifest(tmp_path / "img.manifest.json", digest)


def test_publish_dir_is_a_rename_and_never_overwrites(tmp_path: Path) -> None:
    src = tmp_path / "staging" / "ds"
    src.mkdir(parents=True)
    (src / "a").write_text("x")
    dst = tmp_path / "storage" / "public" / "S-NANO1"
    inode = src.stat().st_ino
    publish_dir(src, dst, tmp_path / "storage" / ".incoming")
    assert dst.stat().st_ino == inode  # same filesystem: moved, not copied
    assert not src.exists()
    src.mkdir()
    from nanorepo.errors import Conflict

    with pytest.raises(Conflict):
        publish_dir(src, dst, tmp_path / "storage" / ".incoming")
