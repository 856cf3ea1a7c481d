"""Fixity: re-hash every stored object of a version and report what differs.

Zarr reads a missing chunk or shard as fill values without complaint, so only the
manifest can tell that one is gone: verification walks the manifests, not the arrays.
Objects are hashed in parallel (threads; hashlib and file reads release the GIL).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from nanorepo.errors import IntegrityError
from nanorepo.storage import Layout, hash_files, load_manifest, walk_files

__all__ = ["Problem", "VerifyReport", "verify_version"]


@dataclass(frozen=True)
class Problem:
    """One fixity problem: ``kind`` is mismatch, missing, unexpected or unreadable."""

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


def verify_version(
    dataset_dir: Path,
    accession: str,
    version: int,
    manifest_digest: str,
    *,
    workers: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> VerifyReport:
    """Check every object of ``accession@vversion`` under ``dataset_dir`` against its digest."""
    import time

    t0 = time.perf_counter()
    report = VerifyReport(accession, version, manifest_digest)
    mpath = dataset_dir / Layout.version_relpath(version) / "manifest.json"
    try:
        manifest = load_manifest(mpath, manifest_digest)
    except FileNotFoundError:
        report.problems.append(Problem("missing", str(mpath.relative_to(dataset_dir))))
        return report
    except IntegrityError as exc:
        report.problems.append(
            Problem("mismatch", str(mpath.relative_to(dataset_dir)), detail=exc.message)
        )
        return report

    expected: dict[Path, tuple[str, str, int]] = {}  # abs path -> (relpath, sha256, size)
    for rel, d in manifest.objects.items():
        expected[dataset_dir / rel] = (rel, d.sha256, d.size)
    image_dirs: list[tuple[Path, str, set[Path]]] = []
    for rel, entry in manifest.images.items():
        ipath = dataset_dir / entry.manifest
        try:
            im = load_manifest(ipath, entry.sha256)
        except FileNotFoundError:
            report.problems.append(Problem("missing", entry.manifest, expected=entry.sha256))
            continue
        except IntegrityError as exc:
            report.problems.append(
                Problem("mismatch", entry.manifest, expected=entry.sha256, detail=exc.message)
            )
            continue
        listed: set[Path] = set()
        for orel, d in im.objects.items():
            p = dataset_dir / rel / orel
            expected[p] = (f"{rel}/{orel}", d.sha256, d.size)
            listed.add(p)
        image_dirs.append((dataset_dir / rel, rel, listed))

    def unreadable(p: Path, exc: OSError) -> None:
        rel = expected[p][0]
        if isinstance(exc, FileNotFoundError):
            report.problems.append(Problem("missing", rel, expected=expected[p][1]))
        else:
            report.problems.append(Problem("unreadable", rel, detail=str(exc)))

    digests = hash_files(expected, workers=workers, on_error=unreadable, progress=progress)
    for p, d in digests.items():
        rel, sha, size = expected[p]
        report.objects_checked += 1
        report.bytes_checked += d.size
        if d.sha256 != sha or d.size != size:
            report.problems.append(
                Problem("mismatch", rel, expected=sha, actual=d.sha256, detail=f"{d.size} bytes")
            )
    # Objects inside an image that no manifest lists (zarr would read them as data).
    for top, rel, listed in image_dirs:
        if not top.exists():
            continue
        for p in walk_files(top):
            if p not in listed:
                report.problems.append(
                    Problem("unexpected", f"{rel}/{p.relative_to(top).as_posix()}")
                )
    report.problems.sort(key=lambda pr: (pr.kind, pr.path))
    report.seconds = time.perf_counter() - t0
    return report
