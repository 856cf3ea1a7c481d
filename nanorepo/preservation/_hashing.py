"""Hash many stored objects at disk speed, still through confined opens.

The per-object path of :func:`nanorepo.storage.hash_beneath` walks every directory
component again, wraps the descriptor in a file object and allocates a 4 MiB buffer for
each object: for tens of thousands of small Zarr shards and metadata files that set-up
costs more than the hashing. Here objects are grouped by their directory:

* each directory is opened once, below the dataset directory, with
  :func:`nanorepo.storage.open_dir_beneath` (``openat`` + ``O_NOFOLLOW`` per component);
* each object is opened relative to that descriptor with ``O_NOFOLLOW | O_NONBLOCK``
  (a link is refused, a FIFO cannot hang the reader), ``fstat``-checked to be a regular
  file, and read with ``readv`` into one buffer per worker thread, reused for every object;
* at most ``limit`` bytes are read of an object (the manifest's size plus one).

Small objects (up to 64 KiB) are hashed by one thread; medium ones in folder batches and
large ones (over one buffer) each alone, by the other pool threads alongside it. Measured on 2 cores (``benchmarks/bench_verify.py``): for objects of a
few KiB, hashlib holds the GIL for most of its work and releases it on every read, so two
threads hashing small objects ping-pong the GIL and are *slower* than one (1.2 s against
0.9 s for 20,000 objects); large objects release the GIL for megabytes at a time and gain
from the pool.
"""

from __future__ import annotations

import hashlib
import os
import stat
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from nanorepo.storage import FileDigest, NotRegularFile, kind_of, open_dir_beneath
from nanorepo.storage._digest import default_workers

__all__ = ["HashResult", "hash_objects"]

#: Read size and the per-worker buffer: large enough for disk throughput, small enough that
#: one buffer per thread costs nothing.
BLOCK = 4 * 1024 * 1024

#: Objects up to this size are all hashed by one thread (see the module docstring).
SMALL = 64 * 1024

#: Objects per pool task: amortises the pool's per-task cost over many small objects.
BATCH = 256

_FLAGS = os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK

#: What one object gave: its digest, or the error that stopped it (``FileNotFoundError``,
#: :class:`NotRegularFile` naming the refused component, or another ``OSError``).
HashResult = FileDigest | OSError

_local = threading.local()


def _buffer() -> memoryview:
    """This thread's reused read buffer."""
    view: memoryview | None = getattr(_local, "view", None)
    if view is None:
        view = memoryview(bytearray(BLOCK))
        _local.view = view
    return view


def _hash_fd(fd: int, st_size: int, limit: int | None, view: memoryview) -> FileDigest:
    """SHA-256 of at most ``limit`` bytes of ``fd``. A short read that reaches the size
    ``fstat`` gave at open ends the loop (a regular file reads short only at its end),
    saving the extra empty read per small object; if the file grew meanwhile, the next
    read finds the rest."""
    h = hashlib.sha256()
    size = 0
    while limit is None or size < limit:
        want = BLOCK if limit is None else min(BLOCK, limit - size)
        n = os.readv(fd, [view[:want]])
        if not n:
            break
        h.update(view[:n])
        size += n
        if n < want and size == st_size:
            break
    return FileDigest(h.hexdigest(), size)


def _open_in(dirfd: int, name: str, rel: str) -> tuple[int, int]:
    """``name`` opened in ``dirfd`` as a regular file (descriptor, size), or the reason it
    is refused."""
    try:
        fd = os.open(name, _FLAGS, dir_fd=dirfd)
    except FileNotFoundError:
        raise
    except OSError:
        try:
            st = os.stat(name, dir_fd=dirfd, follow_symlinks=False)
        except OSError:
            raise NotRegularFile(rel, "not readable") from None
        raise NotRegularFile(rel, kind_of(st.st_mode)) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise NotRegularFile(rel, kind_of(st.st_mode))
    except BaseException:
        os.close(fd)
        raise
    return fd, st.st_size  # O_NONBLOCK does not change reads of a regular file


def _batch(
    base: Path, folder: str, items: list[tuple[str, int | None]]
) -> list[tuple[str, HashResult]]:
    """Hash ``items`` (``(name, limit)``) of the directory ``base/folder``."""
    prefix = f"{folder}/" if folder else ""
    try:
        dirfd = open_dir_beneath(base, folder)
    except OSError as exc:
        return [(prefix + name, exc) for name, _ in items]
    view = _buffer()
    out: list[tuple[str, HashResult]] = []
    try:
        for name, limit in items:
            rel = prefix + name
            try:
                fd, st_size = _open_in(dirfd, name, rel)
            except OSError as exc:
                out.append((rel, exc))
                continue
            try:
                out.append((rel, _hash_fd(fd, st_size, limit, view)))
            except OSError as exc:
                out.append((rel, exc))
            finally:
                os.close(fd)
    finally:
        os.close(dirfd)
    return out


Batch = tuple[str, list[tuple[str, int | None]]]  # a folder and (name, limit) of objects in it


def _jobs(objects: Iterable[tuple[str, int | None]]) -> list[list[Batch]]:
    """Pool tasks: all small objects in one (a thread of their own), medium ones in folder
    batches of at most :data:`BATCH`, each large one alone."""
    small: dict[str, list[tuple[str, int | None]]] = {}
    medium: dict[str, list[tuple[str, int | None]]] = {}
    jobs: list[list[Batch]] = []
    for rel, limit in objects:
        folder, _, name = rel.rpartition("/")
        if limit is None or limit > BLOCK:
            jobs.append([(folder, [(name, limit)])])
        else:
            (small if limit <= SMALL else medium).setdefault(folder, []).append((name, limit))
    for folder, items in medium.items():
        jobs += [[(folder, items[i : i + BATCH])] for i in range(0, len(items), BATCH)]
    one = [
        (f, items[i : i + BATCH]) for f, items in small.items() for i in range(0, len(items), BATCH)
    ]
    return [one, *jobs] if one else jobs


def hash_objects(
    base: Path,
    objects: Iterable[tuple[str, int | None]],
    *,
    workers: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> Iterator[tuple[str, HashResult]]:
    """SHA-256 of every ``(relative path, byte limit)`` below ``base``, in parallel.

    Yields ``(relative path, FileDigest or OSError)``; no link below ``base`` is followed
    and only regular files are read. ``progress`` receives byte counts.
    """
    jobs = _jobs(objects)

    def run(job: list[Batch]) -> list[tuple[str, HashResult]]:
        res = [r for folder, items in job for r in _batch(base, folder, items)]
        if progress is not None:
            progress(sum(r.size for _, r in res if isinstance(r, FileDigest)))
        return res

    if len(jobs) <= 1:
        for job in jobs:
            yield from run(job)
        return
    with ThreadPoolExecutor(max_workers=workers or default_workers()) as pool:
        for res in pool.map(run, jobs):
            yield from res
