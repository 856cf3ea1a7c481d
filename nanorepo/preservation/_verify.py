"""Fixity: re-hash every stored object of a version and report what differs.

Zarr reads a missing chunk or shard as fill values without complaint, so only the
manifest can tell that one is gone: verification walks the manifests, not the arrays.
Objects are hashed in parallel by :func:`~nanorepo.preservation._hashing.hash_objects`
(threads, one reused buffer each, one confined directory open per folder).

Storage may hold damage or planted objects, so verification trusts nothing it finds:

* every object is read through the one confined open
  (:func:`nanorepo.storage.open_beneath`): a symbolic link, a FIFO or a device file is
  reported as such, never followed or read (a FIFO cannot hang it, a link to ``/dev/zero``
  cannot feed it forever);
* at most the manifest's size plus one byte is read of each object, so one that grew is a
  mismatch after one byte too many;
* the whole dataset tree is scanned (:func:`check_tree`): any object no manifest of any
  version lists (in ``images/``, ``files/``, ``originals/``, ``versions/`` or the dataset
  root), and a copy of the dataset in the other storage area, is reported;
* the catalog's own digests (image manifests, files, sealed metadata) are compared with
  what storage holds (:class:`CatalogVersion`), because the service serves by them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from nanorepo.errors import IntegrityError
from nanorepo.preservation._hashing import hash_objects
from nanorepo.storage import (
    FileDigest,
    Layout,
    Manifest,
    NotRegularFile,
    read_beneath,
    scan_beneath,
    sha256_hex,
)

__all__ = ["CatalogVersion", "Problem", "VerifyReport", "check_tree", "verify_version"]

#: Largest manifest verification reads (an image manifest lists every shard: ~120 bytes each).
MAX_MANIFEST_BYTES = 1 << 30

#: Problem kinds, in the order a report lists them.
KINDS = ("mismatch", "missing", "link", "special", "unexpected", "unreadable", "catalog",
         "wrong-area")  # fmt: skip


@dataclass(frozen=True)
class Problem:
    """One fixity problem.

    ``kind`` is ``mismatch`` (other bytes than the manifest says), ``missing``, ``link``
    (a symbolic link where an object or folder should be), ``special`` (a FIFO, socket or
    device file), ``unexpected`` (an object no manifest lists), ``unreadable``,
    ``catalog`` (the catalog's digest disagrees with storage) or ``wrong-area`` (the
    dataset also lies in the storage area it does not belong to). ``path`` is relative to
    the dataset directory.
    """

    kind: str
    path: str
    expected: str | None = None
    actual: str | None = None
    detail: str = ""


@dataclass
class VerifyReport:
    """Outcome of verifying one version."""

    accession: str
    version: int
    manifest_digest: str
    objects_checked: int = 0
    bytes_checked: int = 0
    seconds: float = 0.0
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["ok"] = self.ok
        return d


@dataclass(frozen=True)
class CatalogVersion:
    """What the catalog records of a version, to compare with storage.

    ``images`` maps an image's path to the digest of its image manifest; ``files`` maps a
    file's path to ``(sha256, size)``; ``metadata_digest`` is the sealed metadata's.
    """

    number: int
    manifest_digest: str
    images: Mapping[str, str] = field(default_factory=dict)
    files: Mapping[str, tuple[str, int]] = field(default_factory=dict)
    metadata_digest: str | None = None


def _not_regular(rel: str, exc: NotRegularFile) -> Problem:
    kind = "link" if exc.kind == "a symbolic link" else "special"
    where = f" ({exc.where} is {exc.kind})" if exc.where != rel else f" ({exc.kind})"
    return Problem(kind, rel, detail=f"refused, not read{where}")


def _load(dataset_dir: Path, rel: str, digest: str) -> Manifest | Problem:
    """A manifest of the dataset read through the confined open and checked against
    ``digest``, or the problem that prevents it."""
    try:
        data = read_beneath(dataset_dir, rel, limit=MAX_MANIFEST_BYTES)
    except FileNotFoundError:
        return Problem("missing", rel, expected=digest)
    except NotRegularFile as exc:
        return _not_regular(rel, exc)
    except OSError as exc:
        return Problem("unreadable", rel, detail=exc.strerror or str(exc))
    actual = sha256_hex(data)
    if actual != digest:
        return Problem("mismatch", rel, expected=digest, actual=actual,
                       detail="the manifest was altered")  # fmt: skip
    try:
        return Manifest.from_json(json.loads(data))
    except (ValueError, KeyError, TypeError, IntegrityError) as exc:
        return Problem("unreadable", rel, detail=f"not a manifest ({exc})")


def _objects(
    dataset_dir: Path, manifest: Manifest, problems: list[Problem]
) -> dict[str, FileDigest]:
    """Every object a version manifest covers (its own and its images'), by relative
    path; image manifests that cannot be read are added to ``problems``."""
    out = dict(manifest.objects)
    for rel, entry in manifest.images.items():
        im = _load(dataset_dir, entry.manifest, entry.sha256)
        if isinstance(im, Problem):
            problems.append(im)
            continue
        out[entry.manifest] = FileDigest(entry.sha256, -1)  # size: not recorded, not checked
        for orel, d in im.objects.items():
            out[f"{rel}/{orel}"] = d
    return out


def verify_version(
    dataset_dir: Path,
    accession: str,
    version: int,
    manifest_digest: str,
    *,
    catalog: CatalogVersion | None = None,
    workers: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> VerifyReport:
    """Check every object of ``accession@vversion`` under ``dataset_dir`` against its digest.

    With ``catalog``, the catalog's digests of the version's images, files and sealed
    metadata are compared with the manifests in storage too.
    """
    t0 = time.perf_counter()
    report = VerifyReport(accession, version, manifest_digest)
    mrel = f"{Layout.version_relpath(version)}/manifest.json"
    manifest = _load(dataset_dir, mrel, manifest_digest)
    if isinstance(manifest, Problem):
        report.problems.append(manifest)
        report.seconds = time.perf_counter() - t0
        return report
    problems: list[Problem] = []
    objects = _objects(dataset_dir, manifest, problems)
    if catalog is not None:
        problems += _catalog_problems(manifest, catalog, version)

    items = [(r, d.size + 1) for r, d in objects.items() if d.size >= 0]  # image manifests: done
    for rel, res in hash_objects(dataset_dir, items, workers=workers, progress=progress):
        if isinstance(res, FileNotFoundError):
            problems.append(Problem("missing", rel, expected=objects[rel].sha256))
            continue
        if isinstance(res, NotRegularFile):
            problems.append(_not_regular(rel, res))
            continue
        if isinstance(res, OSError):
            problems.append(Problem("unreadable", rel, detail=res.strerror or str(res)))
            continue
        want = objects[rel]
        report.objects_checked += 1
        report.bytes_checked += res.size
        if res.sha256 != want.sha256 or res.size != want.size:
            grew = " or more" if res.size > want.size else ""
            problems.append(
                    Problem("mismatch", rel, expected=want.sha256, actual=res.sha256,
                            detail=f"{res.size}{grew} bytes, the manifest says {want.size}")
                )  # fmt: skip
    report.objects_checked += len(objects) - len(items) + 1  # the manifests read above
    report.problems = sorted(problems, key=lambda p: (KINDS.index(p.kind), p.path))
    report.seconds = time.perf_counter() - t0
    return report


def _catalog_problems(manifest: Manifest, cat: CatalogVersion, version: int) -> list[Problem]:
    """Where the catalog's digests disagree with the version manifest in storage."""
    out: list[Problem] = []
    for rel, digest in cat.images.items():
        entry = manifest.images.get(rel)
        if entry is None:
            out.append(Problem("catalog", rel, expected=digest,
                               detail="the catalog lists an image the manifest does not"))  # fmt: skip
        elif entry.sha256 != digest:
            out.append(Problem("catalog", rel, expected=entry.sha256, actual=digest,
                               detail="the catalog's image manifest digest differs from storage"))  # fmt: skip
    for rel in sorted(set(manifest.images) - set(cat.images)):
        out.append(Problem("catalog", rel, detail="an image the catalog does not list"))
    for rel, (sha, size) in cat.files.items():
        d = manifest.objects.get(rel)
        if d is None:
            out.append(Problem("catalog", rel, expected=sha,
                               detail="the catalog lists a file the manifest does not"))  # fmt: skip
        elif (d.sha256, d.size) != (sha, size):
            out.append(Problem("catalog", rel, expected=d.sha256, actual=sha,
                               detail="the catalog's file digest or size differs from storage"))  # fmt: skip
    meta_rel = f"{Layout.version_relpath(version)}/metadata.json"
    d = manifest.objects.get(meta_rel)
    if cat.metadata_digest is not None and (d is None or d.sha256 != cat.metadata_digest):
        out.append(Problem("catalog", meta_rel, expected=d.sha256 if d else None,
                           actual=cat.metadata_digest,
                           detail="the catalog's sealed-metadata digest differs from storage"))  # fmt: skip
    return out


def check_tree(
    dataset_dir: Path,
    versions: Iterable[tuple[int, str]],
    *,
    other_area_dir: Path | None = None,
) -> list[Problem]:
    """Scan the whole dataset tree (no link followed) for what no manifest accounts for.

    ``versions`` are ``(number, manifest digest)`` of every version of the dataset, so
    objects of other versions are expected. Reports links and special files anywhere,
    regular files no manifest lists (in ``images/``, ``files/``, ``originals/``,
    ``versions/`` or the dataset root), and, with ``other_area_dir``, the dataset's
    presence in the storage area it does not belong to.
    """
    problems: list[Problem] = []
    expected: set[str] = set()
    for number, digest in versions:
        mrel = f"{Layout.version_relpath(number)}/manifest.json"
        expected.add(mrel)
        m = _load(dataset_dir, mrel, digest)
        if isinstance(m, Problem):
            continue  # verify_version reports it
        expected.update(_objects(dataset_dir, m, []))
    try:
        entries = scan_beneath(dataset_dir)
    except FileNotFoundError:
        problems.append(Problem("missing", ".", detail="the dataset directory is missing"))
        entries = []
    except (NotADirectoryError, NotRegularFile) as exc:
        problems.append(Problem("special", ".", detail=f"not a directory ({exc})"))
        entries = []
    for e in entries:
        if e.kind == "a symbolic link":
            problems.append(Problem("link", e.rel, detail="a symbolic link in storage"))
        elif not e.regular:
            problems.append(Problem("special", e.rel, detail=e.kind))
        elif e.rel not in expected:
            problems.append(Problem("unexpected", e.rel, detail="no manifest lists it"))
    if other_area_dir is not None and (other_area_dir.exists() or other_area_dir.is_symlink()):
        problems.append(
            Problem(
                "wrong-area",
                str(other_area_dir.parent.name + "/" + other_area_dir.name),
                detail="the dataset also lies in the other storage area: a user mount of "
                "that area would show it",
            )
        )
    return problems
