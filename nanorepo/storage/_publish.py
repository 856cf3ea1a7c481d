"""Atomic publication: staged directories appear in the repository in one rename.

A deposit is assembled in staging; publishing is ``rename(2)`` of a complete directory
into the repository, which POSIX makes atomic on one filesystem. Readers (and user
servers that mount the storage) therefore see either nothing or the complete result.
When staging sits on another filesystem the tree is first copied into ``.incoming/``
next to its destination, then renamed.
"""

from __future__ import annotations

import os
import secrets
import shutil
from pathlib import Path

from nanorepo.errors import Conflict

__all__ = ["fsync_dir", "fsync_tree", "publish_dir", "write_atomic"]


def fsync_dir(path: Path) -> None:
    """Make a directory's entries (renames, new files) durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_tree(top: Path) -> None:
    """fsync every file and directory below ``top``, so a rename publishes durable bytes."""
    for dirpath, _dirnames, filenames in os.walk(top):
        for name in filenames:
            fd = os.open(os.path.join(dirpath, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fsync_dir(Path(dirpath))


def write_atomic(path: Path, data: bytes) -> None:
    """Write a file so that it is either absent, or complete and durable.

    The temporary name is the writer's own (process id and a random part): two processes
    writing the same content-addressed file at once (a batch's runs storing one notebook)
    must not rename each other's temporary file away.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def publish_dir(src: Path, dst: Path, incoming: Path) -> None:
    """Move the complete directory ``src`` to ``dst`` atomically; ``dst`` must not exist."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    if dst.exists():
        raise Conflict(f"{dst} already exists; refusing to overwrite published data")
    if os.stat(src).st_dev != os.stat(dst.parent).st_dev:
        incoming.mkdir(parents=True, exist_ok=True)
        tmp = incoming / f"{dst.name}.{os.getpid()}"
        if tmp.exists():
            shutil.rmtree(tmp)
        shutil.copytree(src, tmp, symlinks=True)
        fsync_tree(tmp)
        os.rename(tmp, dst)
        shutil.rmtree(src)
    else:
        os.rename(src, dst)
    fsync_dir(dst.parent)
