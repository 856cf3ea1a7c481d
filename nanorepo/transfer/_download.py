"""Verified, resumable, parallel download of a whole version (``nanorepo download``).

The version's Merkle tree (D1) is the plan and the proof:

1. the version manifest is fetched and its SHA-256 compared with the catalog's
   ``manifest_sha256`` (the service's version record, or the local catalog);
2. each image manifest is fetched and compared with the digest the version manifest gives;
3. every object is fetched into ``NAME.part``, hashed as it arrives, and renamed into place
   only when size and SHA-256 match its manifest.

An interrupted download resumes: finished objects are re-hashed and kept, a ``.part``
continues where it stopped (HTTP ``Range`` with ``If-Range`` on the object's ETag, so a
changed object restarts rather than splices), so at most the bytes in flight are fetched
twice. Objects are fetched by a pool of threads sharing one HTTP connection pool. Every
path comes from a manifest and is checked to stay inside the destination (a hostile
server cannot write elsewhere). ``bagit=True`` then makes the folder a BagIt bag
(RFC 8493, through the Library of Congress's ``bagit``), so anyone can re-check it later
with any BagIt tool.
"""

from __future__ import annotations

import hashlib
import os
import queue
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Protocol

import httpx

from nanorepo.errors import IntegrityError, InvalidInput, PathNotAllowed
from nanorepo.storage import Manifest, check_relpath, open_beneath, parse_ref

__all__ = ["DownloadResult", "HttpSource", "LocalSource", "download"]

CHUNK = 1 << 20
PART = ".part"


class Source(Protocol):
    """Where a version's objects come from."""

    accession: str
    number: int
    manifest_sha256: str

    def read(self, path: str, sha256: str, offset: int) -> Iterator[bytes]:
        """The object at ``path`` from byte ``offset`` (a restart from 0 is announced by
        raising :class:`_Restart`)."""
        ...

    def whole(self, path: str) -> bytes: ...


class _Restart(Exception):
    """The source sends the object from its start (a changed object, or no Range)."""


@dataclass
class DownloadResult:
    """What a download did: objects and bytes in the version, fetched, and kept from an
    earlier (interrupted) run."""

    ref: str
    root: Path
    objects: int = 0
    bytes_total: int = 0
    bytes_fetched: int = 0
    bytes_reused: int = 0
    bag: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def fetched(self, n: int) -> None:
        with self._lock:
            self.bytes_fetched += n


class HttpSource:
    """A version on a nanorepo service (its ``manifest`` and ``objects`` routes)."""

    def __init__(self, url: str, headers: dict[str, str], ref: str, *, timeout: float = 30):
        self.http = httpx.Client(
            base_url=url.rstrip("/") + "/",
            headers=headers,
            timeout=httpx.Timeout(timeout, read=None),
            limits=httpx.Limits(max_connections=32, max_keepalive_connections=32),
        )
        acc, ver = parse_ref(ref)
        try:
            r = self._get(f"datasets/{acc}/versions/{f'v{ver}' if ver else 'latest'}", acc)
        except BaseException:
            self.http.close()
            raise
        info = r.json()
        self.accession, self.number = acc, int(info["version"])
        self.manifest_sha256 = str(info["manifest_sha256"])
        self.base = f"datasets/{acc}/versions/v{self.number}"

    def _get(self, path: str, accession: str, **kwargs: Any) -> httpx.Response:
        from nanorepo.client._errors import error_from_response

        r = self.http.get(path, **kwargs)
        if r.status_code >= 300:
            raise error_from_response(r, accession=accession, base_url=str(self.http.base_url))
        return r

    def whole(self, path: str) -> bytes:
        what = "manifest" if path == "" else f"objects/{path}"
        return self._get(f"{self.base}/{what}", self.accession).content

    def read(self, path: str, sha256: str, offset: int) -> Iterator[bytes]:
        headers = {"Accept-Encoding": "identity"}  # objects are sent as stored
        if offset:
            headers.update({"Range": f"bytes={offset}-", "If-Range": f'"{sha256}"'})
        with self.http.stream("GET", f"{self.base}/objects/{path}", headers=headers) as r:
            if r.status_code >= 300:
                r.read()
                from nanorepo.client._errors import error_from_response

                raise error_from_response(r, accession=self.accession)
            if offset and r.status_code != 206:
                raise _Restart
            yield from r.iter_bytes(CHUNK)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> HttpSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class LocalSource:
    """A version in this machine's repository storage (read through the confined open)."""

    def __init__(self, show: dict[str, Any]) -> None:
        self.accession, self.number = str(show["accession"]), int(show["version"])
        self.manifest_sha256 = str(show["manifest_sha256"])
        self.dir = str(Path(show["path"]).resolve())

    def whole(self, path: str) -> bytes:
        path = path or f"versions/v{self.number}/manifest.json"
        return b"".join(self.read(path, "", 0))

    def read(self, path: str, sha256: str, offset: int) -> Iterator[bytes]:
        fd, _ = open_beneath(self.dir, check_relpath(path).parts)
        try:
            while True:
                block = os.pread(fd, CHUNK, offset)
                if not block:
                    return
                offset += len(block)
                yield block
        finally:
            os.close(fd)

    def close(self) -> None:
        pass


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def plan(source: Source) -> tuple[bytes, dict[str, tuple[str, int]]]:
    """The version manifest (checked against the catalog's digest) and every object of the
    version, path -> (sha256, size), each image manifest checked against its entry."""
    raw = source.whole("")
    if _sha256(raw) != source.manifest_sha256:
        raise IntegrityError(
            f"{source.accession}@v{source.number}: the version manifest does not match the "
            "digest the catalog records; nothing was written",
            hint="tell the operator: `nanorepo verify` checks the stored version",
        )
    import json

    m = Manifest.from_json(json.loads(raw))
    objects = {k: (d.sha256, d.size) for k, d in m.objects.items()}
    for key, entry in m.images.items():
        image_raw = source.whole(entry.manifest)
        if _sha256(image_raw) != entry.sha256:
            raise IntegrityError(
                f"{source.accession}@v{source.number}: image manifest {entry.manifest!r} does "
                "not match the version manifest; nothing was written"
            )
        objects[entry.manifest] = (entry.sha256, len(image_raw))
        im = Manifest.from_json(json.loads(image_raw))
        objects.update({f"{key}/{k}": (d.sha256, d.size) for k, d in im.objects.items()})
    for path in objects:
        _safe(path)
    return raw, objects


def _safe(path: str) -> PurePosixPath:
    """``path`` as a relative path that stays inside the destination, or refused."""
    try:
        return check_relpath(path)
    except (InvalidInput, PathNotAllowed):
        raise IntegrityError(
            f"the manifest names {path[:200]!r}, which is not a plain relative path; "
            "refused, nothing was written",
            hint="the service sent a manifest nanorepo never writes: report it",
        ) from None


def _hash_file(path: Path) -> tuple[str, int]:
    h = hashlib.sha256()
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    n = 0
    with open(path, "rb", buffering=0) as f:
        while k := f.readinto(buf):
            h.update(view[:k])
            n += k
    return h.hexdigest(), n


class _Hasher:
    """SHA-256 of a stream in a thread of its own, so hashing one block overlaps receiving
    and writing the next (hashlib releases the GIL): an object arrives at the speed of
    the slower of the two, not of their sum."""

    def __init__(self, h: Any) -> None:
        self.h = h
        self.queue: queue.Queue[bytes | None] = queue.Queue(maxsize=16)
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while (block := self.queue.get()) is not None:
            self.h.update(block)

    def put(self, block: bytes) -> None:
        self.queue.put(block)

    def __enter__(self) -> _Hasher:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.queue.put(None)
        self.thread.join()


def _fetch(
    source: Source, root: Path, path: str, sha256: str, size: int, result: DownloadResult
) -> None:
    final = root / _safe(path)
    if final.is_file() and not final.is_symlink() and final.stat().st_size == size:
        if _hash_file(final) == (sha256, size):
            with result._lock:
                result.bytes_reused += size
            return
        final.unlink()
    final.parent.mkdir(parents=True, exist_ok=True)
    part = final.with_name(final.name + PART)
    for _attempt in (1, 2):
        h = hashlib.sha256()
        offset = 0
        if part.is_file() and not part.is_symlink() and part.stat().st_size <= size:
            with open(part, "rb") as f:  # what an interrupted run already has
                while block := f.read(CHUNK):
                    h.update(block)
                    offset += len(block)
            with result._lock:
                result.bytes_reused += offset
        else:
            part.unlink(missing_ok=True)
        try:
            with open(part, "ab" if offset else "wb") as out, _Hasher(h) as hasher:
                for block in source.read(path, sha256, offset):
                    out.write(block)
                    hasher.put(block)
                    result.fetched(len(block))
                    offset += len(block)
                    if offset > size:
                        break
        except _Restart:
            part.unlink(missing_ok=True)
            continue
        if offset == size and h.hexdigest() == sha256:
            os.replace(part, final)
            return
        part.unlink(missing_ok=True)  # wrong bytes: fetch again from the start, once
    raise IntegrityError(
        f"{source.accession}@v{source.number}: {path!r} arrived twice with bytes that do not "
        "match its manifest; it was not kept",
        hint="run the same command again; if it persists, tell the operator",
    )


def download(
    source: Source,
    dest: Path,
    *,
    workers: int = 8,
    bagit: bool = False,
    on_plan: Callable[[int, int], None] | None = None,
    on_object: Callable[[int], None] | None = None,
) -> DownloadResult:
    """Fetch every object of ``source``'s version into ``dest/ACC@vN/`` and verify it.

    ``on_plan(objects, bytes)`` is called once the plan is known, ``on_object(bytes)``
    after each object (progress bars). Returns what was fetched and reused.
    """
    ref = f"{source.accession}@v{source.number}"
    root = Path(dest) / ref
    if (root / "bagit.txt").exists():
        raise InvalidInput(
            f"{root} is already a finished BagIt bag", hint="choose another destination folder"
        )
    raw, objects = plan(source)
    result = DownloadResult(ref=ref, root=root, objects=len(objects))
    result.bytes_total = sum(size for _, size in objects.values())
    if on_plan:
        on_plan(len(objects), result.bytes_total)
    root.mkdir(parents=True, exist_ok=True)

    def one(item: tuple[str, tuple[str, int]]) -> None:
        path, (sha256, size) = item
        _fetch(source, root, path, sha256, size, result)
        if on_object:
            on_object(size)

    # the largest objects first: the pool's tail is then short
    items = sorted(objects.items(), key=lambda kv: -kv[1][1])
    with ThreadPoolExecutor(max(1, workers), thread_name_prefix="nanorepo-download") as pool:
        for _ in pool.map(one, items):
            pass
    manifest = root / f"versions/v{source.number}/manifest.json"
    manifest.parent.mkdir(parents=True, exist_ok=True)
    manifest.write_bytes(raw)
    if bagit:
        _bag(root, ref, workers)
        result.bag = True
    return result


def _bag(root: Path, ref: str, workers: int) -> None:
    import bagit as bagit_lib

    bagit_lib.make_bag(
        str(root),
        bag_info={
            "External-Identifier": ref,
            "Source-Organization": "nanorepo",
            "External-Description": f"nanorepo {ref}: every object of the version, verified "
            "against its SHA-256 manifest on arrival",
        },
        processes=max(1, workers),
        checksums=["sha256"],
    )
