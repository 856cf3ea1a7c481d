"""Staging: converting into a private directory, manifests, records, publication, recovery.

A deposit is identified by a key derived from what was asked (input files with their
sizes and modification times, title, metadata, embargo). The same command run again
after a crash finds the same key, the same reserved accession and the same staging
directory, and skips every image whose conversion had finished. Nothing is visible in
the repository until the complete directory is renamed into place and the catalog rows
are committed; a crash between the two is completed by :func:`recover`.
"""

from __future__ import annotations

import fcntl
import json
import mimetypes
import os
import shutil
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nanorepo.catalog import Catalog, ImageRecord, VersionRecord
from nanorepo.deposition._inputs import Inputs, SourcedImage, is_zarr_dir, safe_name
from nanorepo.deposition._metadata import ImageFacts
from nanorepo.errors import Conflict, InvalidInput
from nanorepo.settings import Settings
from nanorepo.storage import (
    FileDigest,
    ImageEntry,
    Layout,
    Manifest,
    build_image_manifest,
    canonical_json,
    copy_beneath,
    fsync_tree,
    hash_file,
    publish_dir,
    sha256_hex,
    write_atomic,
    write_manifest,
)

if TYPE_CHECKING:
    from nanorepo.ome import ImageSource

Progress = Callable[[str], None]


@dataclass(frozen=True)
class DepositResult:
    """What a deposit or revision published."""

    accession: str
    version: int
    images: list[str]
    files: list[str]
    manifest_digest: str
    resumed: bool = False

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def failpoint(settings: Settings, name: str) -> None:
    """Die here, as by ``kill -9``, when the crash tests ask for it (see Settings.failpoint)."""
    if settings.failpoint == name:
        import signal

        os.kill(os.getpid(), signal.SIGKILL)


@contextmanager
def locked(staging: Path) -> Iterator[None]:
    staging.mkdir(parents=True, exist_ok=True)
    with open(staging / ".lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise Conflict(
                f"this deposit is already running in another process (staging {staging})",
                hint="wait for it to finish; run the same command again afterwards to resume",
            ) from None
        yield


@contextmanager
def abandon_on_bad_input(catalog: Catalog, key: str, root: Path) -> Iterator[None]:
    """Damage found only while converting (e.g. inside compressed pixel data) is still bad
    input: drop the staging and the deposit's rows so the catalog is as it was before."""
    try:
        yield
    except InvalidInput:
        with catalog.session() as s:
            catalog.abandon_deposit(s, key)
            s.commit()
        shutil.rmtree(root / "dataset", ignore_errors=True)
        shutil.rmtree(root / "done", ignore_errors=True)
        raise


def convert_image(
    src: ImageSource, facts: ImageFacts, stage: Path, relpath: str, progress: Progress | None
) -> tuple[ImageRecord, ImageEntry]:
    """Convert one image into ``stage/relpath`` unless a previous run finished it."""
    done = stage.parent / "done" / f"{src.name}.json"
    target = stage / relpath
    manifest_rel = Layout.image_manifest_relpath(relpath)
    if done.exists():
        if progress:
            progress(f"{src.name}: converted by an earlier run, reusing it")
        info = json.loads(done.read_text())
        return ImageRecord(**info["record"]), ImageEntry(**info["entry"])
    if target.exists():
        shutil.rmtree(target)
    if progress:
        progress(f"{src.name}: converting {'x'.join(map(str, src.shape))} {src.dtype} to OME-Zarr")
    from nanorepo.ome import write_image

    sourced = SourcedImage(src, facts)
    written = write_image(sourced, target)
    manifest = build_image_manifest(target, relpath)
    digest = write_manifest(manifest, stage / manifest_rel)
    entry = ImageEntry(manifest_rel, digest, len(manifest.objects), manifest.size)
    channels = [dict(c) for c in facts["channels"]]
    if written.windows:
        for c, w in zip(channels, written.windows, strict=False):
            c.setdefault("window", list(w))
    record = ImageRecord(
        name=src.name,
        path=relpath,
        dims=list(src.dims),
        shape=[int(s) for s in src.shape],
        dtype=str(src.dtype),
        pixel_sizes=dict(facts["pixel_sizes"]),
        channels=channels,
        levels=[[int(n) for n in lv.shape] for lv in written.levels],
        key_values=dict(facts["key_values"]),
        technique=str(facts["acquisition"].get("technique", "")),
        manifest_digest=digest,
        size_bytes=manifest.size,
    )
    fsync_tree(target)
    write_atomic(done, json.dumps({"record": asdict(record), "entry": asdict(entry)}).encode())
    return record, entry


def media_type(p: Path) -> str:
    if p.suffix.lower() == ".parquet":
        return "application/vnd.apache.parquet"
    return mimetypes.guess_type(p.name)[0] or "application/octet-stream"


def stage_file(
    src: Path, stage: Path, relpath: str, role: str, summary: Mapping[str, Any] | None = None
) -> tuple[dict[str, Any], FileDigest]:
    target = stage / relpath
    # The deposit's own bytes, through the confined open: never a link's target.
    d = copy_beneath(src.parent, src.name, target)
    row = {
        "name": Path(relpath).name,
        "path": relpath,
        "role": role,
        "media_type": media_type(target),
        "size_bytes": d.size,
        "sha256": d.sha256,
        "summary": dict(summary or {}),
    }
    return row, d


def write_version_docs(
    stage: Path,
    accession: str,
    number: int,
    record: dict[str, Any],
    images: list[ImageRecord],
    entries: dict[str, ImageEntry],
    files: list[dict[str, Any]],
    file_digests: dict[str, FileDigest],
    *,
    created_by: str,
    note: str,
) -> tuple[str, str, Manifest]:
    vdir = stage / Layout.version_relpath(number)
    vdir.mkdir(parents=True, exist_ok=True)
    metadata_bytes = canonical_json(record)
    (vdir / "metadata.json").write_bytes(metadata_bytes)
    version_doc = {
        "accession": accession,
        "version": number,
        "created_by": created_by,
        "note": note,
        "metadata_sha256": sha256_hex(metadata_bytes),
        "images": [asdict(im) for im in images],
        "files": files,
    }
    (vdir / "version.json").write_bytes(canonical_json(version_doc))
    vrel = Layout.version_relpath(number)
    objects = dict(file_digests)
    for name in ("metadata.json", "version.json"):
        objects[f"{vrel}/{name}"] = hash_file(vdir / name)
    manifest = Manifest(
        root=".",
        objects=objects,
        images={im.path: entries[im.path] for im in images},
        extra={"accession": accession, "version": number},
    )
    digest = write_manifest(manifest, vdir / "manifest.json")
    return metadata_bytes.decode(), digest, manifest


def deposit_key(kind: str, parts: Any) -> str:
    return sha256_hex(canonical_json({"kind": kind, "parts": parts}))[:40]


def stage_files(
    settings: Settings, inputs: Inputs, stage: Path, number: int, progress: Progress | None
) -> tuple[list[dict[str, Any]], dict[str, FileDigest]]:
    files: list[dict[str, Any]] = []
    digests: dict[str, FileDigest] = {}
    for name, _p, table in inputs.tables:
        rel = Layout.file_relpath(number, f"{name}.parquet")
        target = stage / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        table.write_parquet(target)
        d = hash_file(target)
        files.append(
            {
                "name": f"{name}.parquet",
                "path": rel,
                "role": "localisations",
                "media_type": "application/vnd.apache.parquet",
                "size_bytes": d.size,
                "sha256": d.sha256,
                "summary": json.loads(json.dumps(table.summary(), default=str)),
            }
        )
        digests[rel] = d
    for src in inputs.sources:
        xml = getattr(src, "ome_xml", None)
        if xml:
            # The instrument's own OME-XML, kept verbatim: the harvest can be redone later.
            rel = Layout.file_relpath(number, f"{src.name}.ome.xml")
            target = stage / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(xml, encoding="utf-8")
            d = hash_file(target)
            files.append(
                {
                    "name": f"{src.name}.ome.xml", "path": rel, "role": "ome-xml",
                    "media_type": "application/xml", "size_bytes": d.size, "sha256": d.sha256,
                    "summary": {},
                }
            )  # fmt: skip
            digests[rel] = d
    for p in inputs.supporting:
        rel = Layout.file_relpath(number, safe_name(p.name))
        row, d = stage_file(p, stage, rel, "supporting")
        files.append(row)
        digests[rel] = d
    if settings.keep_originals:
        for p in inputs.originals:
            if p.is_dir() and is_zarr_dir(p):
                continue  # an OME-Zarr submission is kept as its (lossless) conversion
            if progress:
                progress(f"keeping original {p.name}")
            # A plane folder is kept file by file under originals/vN/<folder>/.
            if p.is_dir():
                members = [
                    (q, [safe_name(p.name), *(safe_name(x) for x in q.relative_to(p).parts)])
                    for q in sorted(inputs.checked)
                    if p in q.parents
                ]
            else:
                members = [(p, [safe_name(p.name)])]
            for q, parts in members:
                rel = Layout.original_relpath(number, parts)
                row, d = stage_file(q, stage, rel, "original")
                row["name"] = "originals/" + "/".join(parts)
                files.append(row)
                digests[rel] = d
    return files, digests


def save_record(root: Path, vrec: VersionRecord, moves: list[tuple[str, Path]]) -> None:
    doc = asdict(vrec)
    doc["embargo_until"] = str(vrec.embargo_until) if vrec.embargo_until else None
    doc["moves"] = [[rel, str(dst)] for rel, dst in moves]
    write_atomic(root / "record.json", json.dumps(doc).encode())


def load_record(root: Path) -> tuple[VersionRecord, list[tuple[str, Path]]]:
    doc = json.loads((root / "record.json").read_text())
    moves = [(rel, Path(dst)) for rel, dst in doc.pop("moves")]
    doc["images"] = [ImageRecord(**i) for i in doc["images"]]
    doc["embargo_until"] = (
        date.fromisoformat(doc["embargo_until"]) if doc["embargo_until"] else None
    )
    return VersionRecord(**doc), moves


def commit_version(
    catalog: Catalog, key: str, vrec: VersionRecord, index: Callable[[Any, int], None] | None
) -> None:
    """Commit the catalog rows of a staged version. Its deposit stays ``publishing``: the
    staged directories are moved into storage only after this commit (so no storage mount
    ever shows a dataset the catalog does not know), then :func:`mark` ends it."""
    with catalog.session() as s:
        ds, _v = catalog.add_version(s, vrec)
        if index is not None:
            index(s, ds.id)  # type: ignore[arg-type]
        s.commit()


def mark(catalog: Catalog, key: str, state: str) -> None:
    """Set the state of the deposit ``key`` (``published``, or ``recovered`` when a later
    process finished it: the command run again then reports its accession, exit 0)."""
    with catalog.session() as s:
        d = catalog.deposit(s, key)
        if d is not None:
            catalog.touch_deposit(s, d, state)
            s.commit()


def committed(catalog: Catalog, accession: str, number: int) -> bool:
    """Whether the catalog holds ``accession@vnumber``."""
    with catalog.session() as s:
        try:
            catalog.version(s, accession, number)
        except LookupError:
            return False
    return True


def publish(
    catalog: Catalog,
    layout: Layout,
    key: str,
    vrec: VersionRecord,
    stage: Path,
    moves: list[tuple[str, Path]],
    index: Callable[[Any, int], None] | None,
    *,
    failpoint_after: Callable[[], None] | None = None,
) -> None:
    """The catalog commit, then the moves into storage (each an atomic rename); both are
    skipped where an earlier, interrupted run did them already."""
    if not committed(catalog, vrec.accession, vrec.number):
        commit_version(catalog, key, vrec, index)
    for rel, dst in moves:
        src = stage if rel == "." else stage / rel
        if src.exists() and not dst.exists():
            publish_dir(src, dst, layout.incoming)
        if failpoint_after is not None:
            failpoint_after()


def result_of(catalog: Catalog, accession: str, number: int, *, resumed: bool) -> DepositResult:
    with catalog.session() as s:
        v = catalog.version(s, accession, number)
        return DepositResult(
            accession,
            number,
            [i.name for i in catalog.images(s, v.id)],  # type: ignore[arg-type]
            [f.name for f in catalog.files(s, v.id)],  # type: ignore[arg-type]
            v.manifest_digest,
            resumed,
        )


#: A staging directory of a deposit nobody resumed for this long is removed (seconds).
STALE_STAGING_S = 3 * 24 * 3600


def sweep_staging(settings: Settings, catalog: Catalog) -> list[str]:
    """Remove staging directories of deposits abandoned before publication.

    A deposit killed while converting leaves its staging directory so that the same
    command resumes it; one nobody resumed for :data:`STALE_STAGING_S` (and not running:
    its lock is free) is removed with its catalog row and reserved accession, so a killed
    deposit never leaves data behind for good. Returns the keys removed.
    """
    import time

    removed: list[str] = []
    if not settings.staging.is_dir():
        return removed
    cutoff = time.time() - STALE_STAGING_S
    for root in settings.staging.iterdir():
        if root.name == "uploads" or not root.is_dir() or root.is_symlink():
            continue
        try:
            if max(root.stat().st_mtime, (root / ".lock").stat().st_mtime) >= cutoff:
                continue
        except FileNotFoundError:
            if root.stat().st_mtime >= cutoff:
                continue
        with catalog.session() as s:
            dep = catalog.deposit(s, root.name)
            state = dep.state if dep is not None else None
        if state == "publishing":
            continue  # complete: recover() publishes it
        try:
            with locked(root):
                if state == "staging":
                    with catalog.session() as s:
                        catalog.abandon_deposit(s, root.name)
                        s.commit()
                shutil.rmtree(root / "dataset", ignore_errors=True)
                shutil.rmtree(root / "done", ignore_errors=True)
        except Conflict:
            continue  # it is running after all
        shutil.rmtree(root, ignore_errors=True)
        removed.append(root.name)
    return removed


def recover(
    settings: Settings,
    layout: Layout,
    catalog: Catalog,
    *,
    index: Callable[[Any, int], None] | None = None,
) -> list[str]:
    """Finish publications that a crash interrupted between the end of staging and the
    last move into storage, and sweep abandoned staging (:func:`sweep_staging`).

    Returns the ``accession@vN`` it completed. Deposits still converting are left alone:
    running their command again resumes them.
    """
    done: list[str] = []
    with catalog.session() as s:
        pending = [d for d in catalog.open_deposits(s) if d.state == "publishing"]
    for dep in pending:
        root = settings.staging / dep.key
        if not (root / "record.json").exists():
            continue
        try:
            with locked(root):
                vrec, moves = load_record(root)
                publish(catalog, layout, dep.key, vrec, root / "dataset", moves, index)
                mark(catalog, dep.key, "recovered")
                done.append(f"{vrec.accession}@v{vrec.number}")
        except Conflict:
            continue  # another process is on it
        shutil.rmtree(root, ignore_errors=True)
    sweep_staging(settings, catalog)
    return done
