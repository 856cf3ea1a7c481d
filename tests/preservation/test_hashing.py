"""The batched confined hasher verify uses: right digests, nothing followed, bounded reads."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from nanorepo.preservation._hashing import BATCH, BLOCK, SMALL, hash_objects
from nanorepo.storage import FileDigest, NotRegularFile


def _digest(data: bytes) -> FileDigest:
    return FileDigest(hashlib.sha256(data).hexdigest(), len(data))


def test_many_objects_across_batches_and_a_large_one(tmp_path: Path) -> None:
    """Every object of several folders (more than one batch each), medium objects and one
    larger than the read buffer get hashlib's digest, each reported once."""
    want: dict[str, FileDigest] = {}
    for folder in ("a", "a/b/c", ""):
        (tmp_path / folder).mkdir(parents=True, exist_ok=True)
        for i in range(BATCH + 3):
            data = f"{folder}:{i}".encode() * (i % 7)
            rel = f"{folder}/{i}" if folder else f"f{i}"
            (tmp_path / rel).write_bytes(data)
            want[rel] = _digest(data)
    for i in range(3):  # medium objects: hashed in folder batches by the pool
        data = os.urandom(SMALL + i)
        (tmp_path / f"a/m{i}").write_bytes(data)
        want[f"a/m{i}"] = _digest(data)
    big = os.urandom(BLOCK * 2 + 5)
    (tmp_path / "a/big").write_bytes(big)
    want["a/big"] = _digest(big)
    seen: list[int] = []
    got = dict(
        hash_objects(
            tmp_path, [(r, d.size + 1) for r, d in want.items()], workers=2,
            progress=seen.append,
        )
    )  # fmt: skip
    assert got == want
    assert sum(seen) == sum(d.size for d in want.values())


def test_links_special_files_and_missing_objects_are_reported_not_read(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "real/x").write_bytes(b"x")
    (tmp_path / "linkdir").symlink_to(tmp_path / "real")
    (tmp_path / "real/link").symlink_to(tmp_path / "real/x")
    os.mkfifo(tmp_path / "real/fifo")
    got = dict(
        hash_objects(
            tmp_path,
            [("linkdir/x", 2), ("real/link", 2), ("real/fifo", 2), ("real/gone", 2),
             ("nodir/x", 2), ("real/x", 2)],
            workers=2,
        )
    )  # fmt: skip
    assert got["real/x"] == _digest(b"x")
    assert isinstance(got["linkdir/x"], NotRegularFile)
    assert (got["linkdir/x"].where, got["linkdir/x"].kind) == ("linkdir", "a symbolic link")
    assert isinstance(got["real/link"], NotRegularFile)
    assert got["real/link"].kind == "a symbolic link"
    assert isinstance(got["real/fifo"], NotRegularFile)
    assert got["real/fifo"].kind == "a FIFO (named pipe)"
    assert isinstance(got["real/gone"], FileNotFoundError)
    assert isinstance(got["nodir/x"], FileNotFoundError)


def test_reads_stop_at_the_limit(tmp_path: Path) -> None:
    """An object that grew is read only to the manifest's size plus one byte."""
    (tmp_path / "grown").write_bytes(b"y" * 1000)
    [(rel, res)] = hash_objects(tmp_path, [("grown", 11)])
    assert rel == "grown"
    assert res == _digest(b"y" * 11)
