"""Issue 14, finding 7: ``verify`` hung or passed on damage.

Before: a shard replaced by a FIFO or by a link to ``/dev/zero`` made it never finish; a
shard replaced by a link to identical bytes passed; an altered catalog digest passed;
extra files outside image folders and a dataset in the wrong storage area went
unreported. Now it reads regular files only, at most size + 1 bytes each, and reports
each of these by name, with exit 1; ``nanorepo verify --all`` checks every dataset.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from sqlmodel import select

from nanorepo.catalog.models import Image
from nanorepo.repository import Repository
from nanorepo.settings import Settings


def _deposit(repo: Any, tmp_path: Path, metadata_file: Path, n: int = 0) -> tuple[str, Path]:
    from tests.conftest import write_ome_tiff

    src = tmp_path / "inputs" / f"cell{n}.ome.tif"
    src.parent.mkdir(parents=True, exist_ok=True)
    write_ome_tiff(src, seed=n)
    res = repo.deposit([src], title=f"T{n}", metadata=metadata_file)
    return res.accession, repo.layout.dataset_dir(res.accession, "public")


def _shards(dataset: Path) -> list[Path]:
    """The objects of the stored image (chunks or shards first, then zarr.json files)."""
    objs = [p for p in (dataset / "images").rglob("*.ome.zarr/**/*") if p.is_file()]
    return sorted(objs, key=lambda p: (p.name == "zarr.json", str(p)))


def _verify(repo: Any, acc: str) -> dict[tuple[str, str], Any]:
    done: list[Any] = []
    t = threading.Thread(target=lambda: done.append(repo.verify(acc)), daemon=True)
    t.start()
    t.join(60)
    assert not t.is_alive(), "verify hangs"
    (rep,) = done[0]
    return {(p.kind, p.path): p for p in rep.problems}


def test_fifo_dev_zero_and_identical_links_are_reported_without_hanging(
    sqlite_repo: Any, tmp_path: Path, metadata_file: Path
) -> None:
    acc, ds = _deposit(sqlite_repo, tmp_path, metadata_file)
    a, b, c = _shards(ds)[:3]
    rel = [p.relative_to(ds).as_posix() for p in (a, b, c)]
    a.unlink()
    os.mkfifo(a)
    b.unlink()
    b.symlink_to("/dev/zero")
    copy = tmp_path / "identical"
    shutil.copyfile(c, copy)
    c.unlink()
    c.symlink_to(copy)
    found = _verify(sqlite_repo, acc)
    assert ("special", rel[0]) in found
    assert ("link", rel[1]) in found
    assert ("link", rel[2]) in found


def test_a_grown_object_is_read_only_to_its_size_plus_one(
    sqlite_repo: Any, tmp_path: Path, metadata_file: Path
) -> None:
    acc, ds = _deposit(sqlite_repo, tmp_path, metadata_file)
    shard = _shards(ds)[0]
    size = shard.stat().st_size
    with open(shard, "ab") as f:
        f.write(b"\0" * (8 << 20))
    (rep,) = sqlite_repo.verify(acc)
    (p,) = [p for p in rep.problems if p.kind == "mismatch"]
    assert f"{size + 1} or more bytes" in p.detail
    assert rep.bytes_checked < (8 << 20)


def test_catalog_digests_extra_files_and_wrong_area_are_reported(
    sqlite_repo: Any, tmp_path: Path, metadata_file: Path
) -> None:
    acc, ds = _deposit(sqlite_repo, tmp_path, metadata_file)
    with sqlite_repo.catalog.session() as s:
        im = s.exec(select(Image)).one()
        im.manifest_digest = "0" * 64
        s.add(im)
        s.commit()
    for extra in ("files/v1/planted.bin", "versions/v1/extra.json", "stray.txt"):
        (ds / extra).parent.mkdir(parents=True, exist_ok=True)
        (ds / extra).write_bytes(b"x")
    shutil.copytree(ds, sqlite_repo.layout.dataset_dir(acc, "embargoed"))
    found = _verify(sqlite_repo, acc)
    assert ("catalog", im.path) in found
    for extra in ("files/v1/planted.bin", "versions/v1/extra.json", "stray.txt"):
        assert ("unexpected", extra) in found, extra
    assert any(k == "wrong-area" for k, _ in found)


def test_verify_all_checks_every_dataset_and_exits_1_naming_each(
    cli_env: dict[str, str], tmp_path: Path, metadata_file: Path
) -> None:
    settings = Settings.from_env(env=cli_env)
    with Repository(settings) as repo:
        acc1, ds1 = _deposit(repo, tmp_path, metadata_file, 1)
        acc2, ds2 = _deposit(repo, tmp_path, metadata_file, 2)
    cmd = [sys.executable, "-m", "nanorepo", "verify", "--all", "--json"]
    ok = subprocess.run(cmd, env=cli_env, capture_output=True, text=True, timeout=300)
    assert ok.returncode == 0, ok.stderr
    assert {r["accession"] for r in json.loads(ok.stdout)} == {acc1, acc2}
    _shards(ds2)[0].write_bytes(b"damaged")
    (ds1 / "stray.txt").write_bytes(b"x")
    bad = subprocess.run(cmd, env=cli_env, capture_output=True, text=True, timeout=300)
    assert bad.returncode == 1
    problems = {(r["accession"], p["kind"]) for r in json.loads(bad.stdout) for p in r["problems"]}
    assert {(acc1, "unexpected"), (acc2, "mismatch")} <= problems
