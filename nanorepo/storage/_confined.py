"""The one confined open: read a file below a directory without following any link.

Deposit inputs (uploads, staging areas) and stored data (the repository storage) may hold
planted symbolic links, FIFOs or device files. Everything nanorepo reads from either goes
through :func:`open_beneath`: the base directory is opened once, every component below it
is opened relative to the one before with ``O_NOFOLLOW`` (``openat``), the last one
non-blocking (a FIFO cannot hang the reader) and it must be a regular file. So neither a
linked directory nor a linked file below ``base`` is ever followed, whatever ``realpath``
said a moment earlier.

:func:`scan_beneath` walks a tree the same way (directory descriptors, ``lstat`` semantics)
and reports what it holds: regular files with their identity (device, inode, size, mtime),
and anything else (links, FIFOs, sockets, devices) by name, for the caller to refuse.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from nanorepo.storage._digest import FileDigest

__all__ = [
    "Entry",
    "NotRegularFile",
    "copy_beneath",
    "hash_beneath",
    "kind_of",
    "open_beneath",
    "open_dir_beneath",
    "read_beneath",
    "scan_beneath",
]

_FLAGS = os.O_RDONLY | os.O_CLOEXEC
_BLOCK = 4 * 1024 * 1024


class NotRegularFile(OSError):
    """A path component is a link, or the object is not a regular file (FIFO, device...)."""

    def __init__(self, where: str, kind: str) -> None:
        super().__init__(f"{where} is {kind}")
        self.where = where
        self.kind = kind


def kind_of(mode: int) -> str:
    """What an ``st_mode`` is, in words for an error message."""
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device file"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISREG(mode):
        return "a regular file"
    return "not a regular file"


def _parts(rel: str | PurePosixPath | Sequence[str]) -> tuple[str, ...]:
    if isinstance(rel, str):
        parts = tuple(rel.split("/"))
    elif isinstance(rel, PurePosixPath):
        parts = rel.parts
    else:
        parts = tuple(rel)
    if not parts or any(p in {"", ".", ".."} or "\x00" in p for p in parts):
        raise NotRegularFile("/".join(parts) or "''", "not a path below its base")
    return parts


def _refusal(dirfd: int, name: str, where: str) -> NotRegularFile:
    """Why ``name`` (in ``dirfd``) could not be opened as asked: what it really is."""
    try:
        st = os.stat(name, dir_fd=dirfd, follow_symlinks=False)
    except OSError:
        return NotRegularFile(where, "not readable")
    return NotRegularFile(where, kind_of(st.st_mode))


def open_beneath(
    base: str | os.PathLike[str], rel: str | PurePosixPath | Sequence[str]
) -> tuple[int, os.stat_result]:
    """Open ``base/rel`` for reading without following any link below ``base``.

    ``base`` itself is opened as given (the caller chose it: a storage area, a staging
    area); every component of ``rel`` is opened with ``openat(..., O_NOFOLLOW)`` relative
    to the previous one. Returns the descriptor and its ``fstat``; the caller closes it.

    Raises
    ------
    FileNotFoundError
        ``base`` or a component does not exist.
    NotRegularFile
        A component is a link or not a directory, or the object is not a regular file;
        ``.where`` names it relative to ``base``.
    """
    parts = _parts(rel)
    dirfd = os.open(base, _FLAGS | os.O_DIRECTORY)
    try:
        for i, part in enumerate(parts[:-1]):
            try:
                nxt = os.open(part, _FLAGS | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=dirfd)
            except FileNotFoundError:
                raise
            except OSError:
                raise _refusal(dirfd, part, "/".join(parts[: i + 1])) from None
            os.close(dirfd)
            dirfd = nxt
        try:
            fd = os.open(parts[-1], _FLAGS | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=dirfd)
        except FileNotFoundError:
            raise
        except OSError:
            raise _refusal(dirfd, parts[-1], "/".join(parts)) from None
    finally:
        os.close(dirfd)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise NotRegularFile("/".join(parts), kind_of(st.st_mode))
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd, st


def read_beneath(
    base: str | os.PathLike[str],
    rel: str | PurePosixPath | Sequence[str],
    *,
    limit: int | None = None,
) -> bytes:
    """The bytes of ``base/rel`` read through :func:`open_beneath`.

    ``limit`` bounds what is read (at most ``limit`` bytes): a stored object far larger
    than expected cannot exhaust memory.
    """
    fd, st = open_beneath(base, rel)
    try:
        want = st.st_size if limit is None else min(st.st_size, limit)
        with os.fdopen(fd, "rb", closefd=False) as f:
            return f.read(want)
    finally:
        os.close(fd)


def hash_beneath(
    base: str | os.PathLike[str],
    rel: str | PurePosixPath | Sequence[str],
    *,
    limit: int | None = None,
    copy_to: Path | None = None,
) -> FileDigest:
    """SHA-256 and size of ``base/rel`` (through :func:`open_beneath`), reading at most
    ``limit`` bytes (``None``: all); with ``copy_to`` the bytes are also written there.

    Verification passes the manifest's size plus one as ``limit``: a damaged object that
    grew is reported as a mismatch after reading one byte too many, never read to the end.
    """
    fd, _st = open_beneath(base, rel)
    h = hashlib.sha256()
    buf = bytearray(_BLOCK)
    view = memoryview(buf)
    size = 0
    with os.fdopen(fd, "rb", buffering=0) as f:  # owns (and closes) the descriptor
        out = open(copy_to, "wb") if copy_to is not None else None  # noqa: SIM115
        try:
            while limit is None or size < limit:
                want = _BLOCK if limit is None else min(_BLOCK, limit - size)
                n = f.readinto(view[:want])
                if not n:
                    break
                h.update(view[:n])
                if out is not None:
                    out.write(view[:n])
                size += n
            if out is not None:
                out.flush()
                os.fsync(out.fileno())
        finally:
            if out is not None:
                out.close()
    return FileDigest(h.hexdigest(), size)


def copy_beneath(
    base: str | os.PathLike[str], rel: str | PurePosixPath | Sequence[str], dst: Path
) -> FileDigest:
    """Copy ``base/rel`` (through :func:`open_beneath`) to ``dst``; returns its digest."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    return hash_beneath(base, rel, copy_to=dst)


@dataclass(frozen=True)
class Entry:
    """One object below a scanned directory.

    ``rel`` is ``/``-separated relative to the scanned base; ``kind`` is what
    :func:`kind_of` says ("a regular file", "a symbolic link", ...); ``identity`` is
    ``(st_dev, st_ino, st_size, st_mtime_ns)`` for regular files, so a caller can tell
    later whether the same file is still there.
    """

    rel: str
    kind: str
    identity: tuple[int, int, int, int] | None = None

    @property
    def regular(self) -> bool:
        return self.identity is not None


def _scan(dirfd: int, prefix: str, skip: Callable[[str], bool] | None) -> Iterator[Entry]:
    with os.scandir(dirfd) as it:
        entries = sorted(it, key=lambda e: e.name)
    for e in entries:
        rel = f"{prefix}{e.name}"
        if skip is not None and skip(rel):
            continue
        st = os.stat(e.name, dir_fd=dirfd, follow_symlinks=False)
        if stat.S_ISDIR(st.st_mode):
            try:
                sub = os.open(e.name, _FLAGS | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=dirfd)
            except OSError:
                yield Entry(rel, kind_of(st.st_mode))  # swapped for a link meanwhile
                continue
            try:
                yield from _scan(sub, rel + "/", skip)
            finally:
                os.close(sub)
        elif stat.S_ISREG(st.st_mode):
            yield Entry(rel, kind_of(st.st_mode), (st.st_dev, st.st_ino, st.st_size,
                                                    st.st_mtime_ns))  # fmt: skip
        else:
            yield Entry(rel, kind_of(st.st_mode))


def open_dir_beneath(
    base: str | os.PathLike[str], rel: str | PurePosixPath | Sequence[str] = ()
) -> int:
    """A descriptor of the directory ``base/rel``, reached without following any link
    below ``base`` (``rel`` empty: ``base`` itself); the caller closes it.

    Raises
    ------
    FileNotFoundError
        ``base`` or a component does not exist.
    NotRegularFile
        A component of ``rel`` is a link or not a directory.
    """
    parts = _parts(rel) if rel not in ((), "", PurePosixPath(".")) else ()
    dirfd = os.open(base, _FLAGS | os.O_DIRECTORY)
    for i, part in enumerate(parts):
        try:
            nxt = os.open(part, _FLAGS | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=dirfd)
        except FileNotFoundError:
            os.close(dirfd)
            raise
        except OSError:
            err = _refusal(dirfd, part, "/".join(parts[: i + 1]))
            os.close(dirfd)
            raise err from None
        os.close(dirfd)
        dirfd = nxt
    return dirfd


def scan_beneath(
    base: str | os.PathLike[str],
    rel: str | PurePosixPath | Sequence[str] = (),
    *,
    skip: Callable[[str], bool] | None = None,
) -> list[Entry]:
    """Every object below the directory ``base/rel`` (reached as :func:`open_dir_beneath`
    does), links and special files included, none followed; directories are descended
    into (through descriptors) and not listed. Entries are relative to ``base/rel``.

    ``skip(rel)`` leaves an entry (and, for a directory, everything below it) out.

    Raises
    ------
    FileNotFoundError
        ``base`` does not exist.
    NotADirectoryError
        ``base`` is not a directory.
    NotRegularFile
        A component of ``rel`` is a link or not a directory.
    """
    dirfd = open_dir_beneath(base, rel)
    try:
        return list(_scan(dirfd, "", skip))
    finally:
        os.close(dirfd)
