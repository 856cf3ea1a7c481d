"""Deposit and revise datasets: staging, conversion, manifests, atomic publication.

A deposit is identified by a key derived from what was asked (input files with their
sizes and modification times, title, metadata, embargo). The same command run again
after a crash finds the same key, the same reserved accession and the same staging
directory, and skips every image whose conversion had finished. Nothing is visible in
the repository until the complete dataset directory is renamed into place and the
catalog rows are committed; a crash between the two is completed by :func:`recover`.
"""

from __future__ import annotations

import fcntl
import json
import mimetypes
import os
import re
import shutil
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nanorepo.catalog import Catalog, ImageRecord, VersionRecord
from nanorepo.deposition._metadata import (
    ImageFacts,
    build_record,
    load_metadata_file,
    mutable_from_file,
)
from nanorepo.errors import (
    Conflict,
    ImageNotFound,
    InvalidInput,
    PathNotAllowed,
)
from nanorepo.settings import Settings
from nanorepo.storage import (
    FileDigest,
    ImageEntry,
    Layout,
    Manifest,
    build_image_manifest,
    canonical_json,
    check_name,
    fsync_tree,
    hash_file,
    load_manifest,
    publish_dir,
    sha256_hex,
    write_atomic,
    write_manifest,
)

if TYPE_CHECKING:
    from nanorepo.ome import ImageSource

# nanorepo.ome (tensorstore, zarr, dask, xarray) is imported where images are handled, so
# commands that only read the catalog (list, show, history) start in a fraction of a second.

__all__ = ["DepositResult", "deposit", "recover", "revise"]

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


def _failpoint(settings: Settings, name: str) -> None:
    """Die here, as by ``kill -9``, when the crash tests ask for it (see Settings.failpoint)."""
    if settings.failpoint == name:
        import signal

        os.kill(os.getpid(), signal.SIGKILL)


# -- inputs -----------------------------------------------------------------------------


def _check_input_path(settings: Settings, path: Path) -> Path:
    p = Path(path).expanduser()
    try:
        real = p.resolve(strict=True)
    except (OSError, RuntimeError):
        raise InvalidInput(f"{p}: no such file or directory", hint="check the path") from None
    if settings.allowed_roots and not any(
        real == r or r in real.parents for r in settings.allowed_roots
    ):
        raise PathNotAllowed(
            f"{p}: outside the directories deposits may come from",
            hint="allowed: " + ", ".join(str(r) for r in settings.allowed_roots),
        )
    storage = settings.storage.resolve()
    if real == storage or storage in real.parents:
        raise PathNotAllowed(
            f"{p}: is inside the repository storage",
            hint="deposit from a copy outside the repository; to correct a dataset use `nanorepo revise`",
        )
    return real


def _safe_name(stem: str) -> str:
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", stem).strip("._-") or "image"
    if not name[0].isalnum():
        name = "i" + name
    return name[:128]


def _stem(p: Path) -> str:
    name = p.name
    for suffix in (".ome.tiff", ".ome.tif", ".ome.zarr", ".tiff", ".tif", ".zarr"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return p.stem


def _is_zarr_dir(p: Path) -> bool:
    return any((p / marker).exists() for marker in ("zarr.json", ".zattrs", ".zgroup"))


def _fingerprint(path: Path) -> list[Any]:
    """Identity of an input for the deposit key: path, size and mtime of every file."""
    if path.is_dir():
        out = []
        for dirpath, _dirs, files in sorted(os.walk(path)):
            for f in sorted(files):
                st = os.stat(os.path.join(dirpath, f))
                out.append(
                    [
                        os.path.relpath(os.path.join(dirpath, f), path),
                        st.st_size,
                        str(st.st_mtime_ns),
                    ]
                )
        return [str(path), out]
    st = path.stat()
    return [str(path), st.st_size, str(st.st_mtime_ns)]  # ns exceed JSON-safe integers


@dataclass
class _Inputs:
    sources: list[ImageSource]
    tables: list[tuple[str, Path, Any]]  # name, path, LocalisationTable
    supporting: list[Path]
    originals: list[Path]


def _classify(
    settings: Settings,
    paths: Sequence[Path],
    supporting: Sequence[Path],
    pattern: str | None,
    taken: set[str],
) -> _Inputs:
    from nanorepo.ome import is_localisation_table, open_sources, read_localisations

    sources: list[ImageSource] = []
    tables: list[tuple[str, Path, Any]] = []
    originals: list[Path] = []
    names = set(taken)
    errors: list[InvalidInput] = []
    for raw in paths:
        p = _check_input_path(settings, raw)
        originals.append(p)
        try:
            if p.is_file() and is_localisation_table(p):
                name = _safe_name(_stem(p))
                tables.append((name, p, read_localisations(p)))
                new = [name]
            else:
                # Every series of a multi-series file becomes an image (<name>_s<i>).
                # A plane folder names its image(s) from the file-name pattern's {name}.
                image_name = None if p.is_dir() and not _is_zarr_dir(p) else _safe_name(_stem(p))
                found = open_sources(p, pattern=pattern, name=image_name)
                sources.extend(found)
                new = [src.name for src in found]
        except InvalidInput as exc:
            errors.append(exc)
            continue
        for n in new:
            check_name(n)
            if n in names:
                errors.append(
                    InvalidInput(
                        f"{p}: a second image or table named {n!r}; rename one of the files"
                    )
                )
            names.add(n)
    if len(errors) == 1:
        raise errors[0]
    if errors:
        raise InvalidInput(
            f"{len(errors)} inputs cannot be deposited:\n" + "\n".join(f"  - {e}" for e in errors),
            hint="nothing was deposited; fix or remove the files named above",
        )
    sup = [_check_input_path(settings, s) for s in supporting]
    for s in sup:
        if not s.is_file():
            raise InvalidInput(f"{s}: supporting files must be regular files")
    return _Inputs(sources, tables, sup, originals)


def _facts(src: ImageSource) -> ImageFacts:
    return ImageFacts(
        name=src.name,
        dims=list(src.dims),
        shape=[int(s) for s in src.shape],
        dtype=str(src.dtype),
        pixel_sizes=dict(src.pixel_sizes),
        channels=[{k: v for k, v in asdict(c).items() if v is not None} for c in src.channels],
        acquisition=dict(src.acquisition),
        key_values=dict(src.key_values),
        origin=list(src.origin),
        origin_names=[Path(o).name for o in src.origin] + [_stem(Path(o)) for o in src.origin],
    )


class _Sourced:
    """An ImageSource with metadata overrides from the deposit applied."""

    def __init__(self, src: ImageSource, facts: ImageFacts) -> None:
        from nanorepo.ome import Channel

        self._src = src
        self.name = src.name
        self.dims = tuple(src.dims)
        self.shape = tuple(src.shape)
        self.dtype = src.dtype
        self.pixel_sizes: Mapping[str, float] = dict(facts["pixel_sizes"])
        fields = set(Channel.__dataclass_fields__)
        self.channels: tuple[Channel, ...] = tuple(
            Channel(
                **{k: (tuple(v) if k == "window" and v else v) for k, v in c.items() if k in fields}  # type: ignore[arg-type]
            )
            for c in facts["channels"]
        ) or tuple(src.channels)
        self.acquisition: Mapping[str, Any] = dict(facts["acquisition"])
        self.key_values: Mapping[str, str] = dict(facts["key_values"])
        self.origin = tuple(src.origin)

    def read(self, region: tuple[slice, ...]) -> Any:
        return self._src.read(region)


# -- staging ----------------------------------------------------------------------------


@contextmanager
def _locked(staging: Path) -> Iterator[None]:
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
def _abandon_on_bad_input(catalog: Catalog, key: str, root: Path) -> Iterator[None]:
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


def _convert_image(
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

    sourced = _Sourced(src, facts)
    written = write_image(sourced, target)
    manifest = build_image_manifest(target, relpath)
    digest = write_manifest(manifest, stage / manifest_rel)
    entry = ImageEntry(manifest_rel, digest, len(manifest.objects), manifest.size)
    channels = [dict(c) for c in facts["channels"]]
    windows = getattr(written, "channel_windows", None)
    if windows:
        for c, w in zip(channels, windows, strict=False):
            c.setdefault("window", list(w))
    record = ImageRecord(
        name=src.name,
        path=relpath,
        dims=list(src.dims),
        shape=[int(s) for s in src.shape],
        dtype=str(src.dtype),
        pixel_sizes=dict(facts["pixel_sizes"]),
        channels=channels,
        levels=[list(map(int, lv)) for lv in _level_shapes(written)],
        key_values=dict(facts["key_values"]),
        technique=str(facts["acquisition"].get("technique", "")),
        manifest_digest=digest,
        size_bytes=manifest.size,
    )
    fsync_tree(target)
    write_atomic(done, json.dumps({"record": asdict(record), "entry": asdict(entry)}).encode())
    return record, entry


def _level_shapes(written: Any) -> list[Sequence[int]]:
    levels = getattr(written, "levels", None)
    if levels is None:
        raise RuntimeError("OME-Zarr writer returned no level information")
    return [getattr(lv, "shape", lv) for lv in levels]


def _media_type(p: Path) -> str:
    if p.suffix.lower() == ".parquet":
        return "application/vnd.apache.parquet"
    return mimetypes.guess_type(p.name)[0] or "application/octet-stream"


def _stage_file(
    src: Path, stage: Path, relpath: str, role: str, summary: Mapping[str, Any] | None = None
) -> tuple[dict[str, Any], FileDigest]:
    target = stage / relpath
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, target)
    d = hash_file(target)
    row = {
        "name": Path(relpath).name,
        "path": relpath,
        "role": role,
        "media_type": _media_type(target),
        "size_bytes": d.size,
        "sha256": d.sha256,
        "summary": dict(summary or {}),
    }
    return row, d


def _write_version_docs(
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


# -- deposit ----------------------------------------------------------------------------


def _deposit_key(kind: str, parts: Any) -> str:
    return sha256_hex(canonical_json({"kind": kind, "parts": parts}))[:40]


def deposit(
    settings: Settings,
    layout: Layout,
    catalog: Catalog,
    paths: Sequence[Path],
    *,
    title: str,
    metadata: Path | None = None,
    embargo_until: date | None = None,
    supporting: Sequence[Path] = (),
    pattern: str | None = None,
    progress: Progress | None = None,
    index: Callable[[Any, int], None] | None = None,
) -> DepositResult:
    """Deposit a new dataset from instrument files; returns its accession.

    Parameters
    ----------
    paths:
        Image files (OME-TIFF, TIFF, ImageJ hyperstack), plane directories, OME-Zarr
        directories and SMLM localisation tables (CSV/TSV/Parquet).
    title:
        Dataset title (mutable metadata).
    metadata:
        Deposit metadata file (YAML/JSON, REMBI-shaped); see ``docs/metadata.md``.
    embargo_until:
        Keep the dataset embargoed (visible only to its owner and grantees) until this date.
    supporting:
        Further files kept with the dataset as supporting files (ground truth, protocols).
    index:
        Called with ``(session, dataset_id)`` inside the publishing transaction to update
        the search index (the search layer sits above deposition).
    """
    if not title or not title.strip():
        raise InvalidInput("a title is required", hint='add --title "What this dataset shows"')
    if not paths:
        raise InvalidInput("nothing to deposit", hint="name at least one image or table file")
    if embargo_until is not None and embargo_until <= date.today():
        raise InvalidInput(
            f"embargo date {embargo_until} is not in the future",
            hint="give a future date, or leave out --embargo-until to publish openly",
        )
    meta = load_metadata_file(metadata) if metadata else {}
    inputs = _classify(settings, paths, supporting, pattern, set())
    facts = [_facts(s) for s in inputs.sources]
    tables = [{"name": n, "summary": t.summary()} for n, _p, t in inputs.tables]
    record, merged = build_record(
        meta, facts, tables=tables, source=str(metadata) if metadata else None
    )
    if not inputs.sources and not inputs.tables:
        raise InvalidInput("no image or localisation table among the inputs")
    mutable = {"title": title.strip(), **mutable_from_file(meta)}
    key = _deposit_key(
        "new",
        {
            "inputs": [_fingerprint(p) for p in inputs.originals],
            "supporting": [_fingerprint(p) for p in inputs.supporting],
            "title": title.strip(),
            "metadata": json.loads(json.dumps(meta, default=str)),
            "embargo": str(embargo_until),
            "pattern": pattern,
        },
    )
    access = "embargoed" if embargo_until else "public"

    with catalog.session() as s:
        accession = catalog.reserve_accession(s, key)
        dep = catalog.deposit(s, key)
        resumed = dep is not None
        if dep is None:
            from nanorepo.catalog.models import Deposit

            dep = Deposit(key=key, accession=accession, kind="new", version=1, owner=settings.user)
            s.add(dep)
        s.commit()
    if dep.state == "published":
        raise Conflict(
            f"these files were deposited already as {accession}",
            hint=f"`nanorepo show {accession}`; to change it use `nanorepo revise {accession}`",
        )

    root = settings.staging / key
    with _locked(root):
        if dep.state == "publishing":
            recover(settings, layout, catalog, index=index)
            return _result_of(catalog, accession, 1, resumed=True)
        stage = root / "dataset"
        stage.mkdir(parents=True, exist_ok=True)
        images: list[ImageRecord] = []
        entries: dict[str, ImageEntry] = {}
        with _abandon_on_bad_input(catalog, key, root):
            for src in inputs.sources:
                rel = Layout.image_relpath(1, src.name)
                rec, entry = _convert_image(src, merged[src.name], stage, rel, progress)
                images.append(rec)
                entries[rel] = entry
                _failpoint(settings, "after-image")
            files, digests = _stage_files(settings, inputs, stage, 1, progress)
        metadata_json, manifest_digest, manifest = _write_version_docs(
            stage, accession, 1, record, images, entries, files, digests,
            created_by=settings.user, note="deposited",
        )  # fmt: skip
        vrec = VersionRecord(
            accession=accession,
            number=1,
            created_by=settings.user,
            metadata_json=metadata_json,
            metadata_digest=sha256_hex(metadata_json.encode()),
            manifest_digest=manifest_digest,
            size_bytes=manifest.size,
            images=images,
            files=files,
            note="deposited",
            title=title.strip(),
            access=access,
            embargo_until=embargo_until,
            mutable=mutable,
        )
        fsync_tree(stage)
        _save_record(root, vrec, [(".", layout.dataset_dir(accession, access))])
        with catalog.session() as s:
            d = catalog.deposit(s, key)
            assert d is not None
            catalog.touch_deposit(s, d, "publishing")
            s.commit()
        if progress:
            progress(f"publishing {accession}")
        _failpoint(settings, "before-publish")
        publish_dir(stage, layout.dataset_dir(accession, access), layout.incoming)
        _failpoint(settings, "after-publish")
        _commit(catalog, key, vrec, index)
    shutil.rmtree(root, ignore_errors=True)
    return DepositResult(
        accession, 1, [i.name for i in images], [f["name"] for f in files], manifest_digest, resumed
    )


def _stage_files(
    settings: Settings, inputs: _Inputs, stage: Path, number: int, progress: Progress | None
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
        rel = Layout.file_relpath(number, _safe_name(p.name))
        row, d = _stage_file(p, stage, rel, "supporting")
        files.append(row)
        digests[rel] = d
    if settings.keep_originals:
        for p in inputs.originals:
            if p.is_dir() and _is_zarr_dir(p):
                continue  # an OME-Zarr submission is kept as its (lossless) conversion
            if progress:
                progress(f"keeping original {p.name}")
            # A plane folder is kept file by file under originals/vN/<folder>/.
            if p.is_dir():
                members = [
                    (q, [_safe_name(p.name), *(_safe_name(x) for x in q.relative_to(p).parts)])
                    for q in sorted(p.rglob("*"))
                    if q.is_file()
                ]
            else:
                members = [(p, [_safe_name(p.name)])]
            for q, parts in members:
                rel = Layout.original_relpath(number, parts)
                row, d = _stage_file(q, stage, rel, "original")
                row["name"] = "originals/" + "/".join(parts)
                files.append(row)
                digests[rel] = d
    return files, digests


def _save_record(root: Path, vrec: VersionRecord, moves: list[tuple[str, Path]]) -> None:
    doc = asdict(vrec)
    doc["embargo_until"] = str(vrec.embargo_until) if vrec.embargo_until else None
    doc["moves"] = [[rel, str(dst)] for rel, dst in moves]
    write_atomic(root / "record.json", json.dumps(doc).encode())


def _load_record(root: Path) -> tuple[VersionRecord, list[tuple[str, Path]]]:
    doc = json.loads((root / "record.json").read_text())
    moves = [(rel, Path(dst)) for rel, dst in doc.pop("moves")]
    doc["images"] = [ImageRecord(**i) for i in doc["images"]]
    doc["embargo_until"] = (
        date.fromisoformat(doc["embargo_until"]) if doc["embargo_until"] else None
    )
    return VersionRecord(**doc), moves


def _commit(
    catalog: Catalog, key: str, vrec: VersionRecord, index: Callable[[Any, int], None] | None
) -> None:
    with catalog.session() as s:
        ds, _v = catalog.add_version(s, vrec)
        if index is not None:
            index(s, ds.id)  # type: ignore[arg-type]
        d = catalog.deposit(s, key)
        if d is not None:
            catalog.touch_deposit(s, d, "published")
        s.commit()


def _result_of(catalog: Catalog, accession: str, number: int, *, resumed: bool) -> DepositResult:
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


def recover(
    settings: Settings,
    layout: Layout,
    catalog: Catalog,
    *,
    index: Callable[[Any, int], None] | None = None,
) -> list[str]:
    """Finish publications that a crash interrupted between rename and catalog commit.

    Returns the ``accession@vN`` it completed. Deposits still in staging are left alone:
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
            with _locked(root):
                vrec, moves = _load_record(root)
                stage = root / "dataset"
                for rel, dst in moves:
                    src = stage if rel == "." else stage / rel
                    if src.exists() and not dst.exists():
                        publish_dir(src, dst, layout.incoming)
                with catalog.session() as s:
                    try:
                        catalog.version(s, vrec.accession, vrec.number)
                        exists = True
                    except LookupError:
                        exists = False
                if not exists:
                    _commit(catalog, dep.key, vrec, index)
                else:
                    with catalog.session() as s:
                        d = catalog.deposit(s, dep.key)
                        assert d is not None
                        catalog.touch_deposit(s, d, "published")
                        s.commit()
                done.append(f"{vrec.accession}@v{vrec.number}")
        except Conflict:
            continue  # another process is on it
        shutil.rmtree(root, ignore_errors=True)
    return done


# -- revise -----------------------------------------------------------------------------


def revise(
    settings: Settings,
    layout: Layout,
    catalog: Catalog,
    accession: str,
    *,
    metadata: Path | None = None,
    add: Sequence[Path] = (),
    replace: Mapping[str, Path] | None = None,
    supporting: Sequence[Path] = (),
    note: str = "",
    pattern: str | None = None,
    progress: Progress | None = None,
    index: Callable[[Any, int], None] | None = None,
) -> DepositResult:
    """Publish version N+1 of ``accession``: new metadata, added or replaced images.

    Unchanged images and files are referenced, never copied: a metadata-only revision
    writes only ``versions/vN+1/`` (a few kB).
    """
    replace = dict(replace or {})
    if metadata is None and not add and not replace and not supporting:
        raise InvalidInput(
            "nothing to revise",
            hint="give --metadata FILE, --add PATH or --replace IMAGE=PATH",
        )
    with catalog.session() as s:
        ds = catalog.dataset(s, accession)
        prev = catalog.version(s, accession)
        prev_images = {i.name: i for i in catalog.images(s, prev.id)}  # type: ignore[arg-type]
        prev_files = list(catalog.files(s, prev.id))  # type: ignore[arg-type]
        access = ds.access
    dataset_dir = layout.dataset_dir(accession, access)
    unknown = sorted(set(replace) - set(prev_images))
    if unknown:
        raise ImageNotFound(
            f"{accession}@v{prev.number} has no image {', '.join(map(repr, unknown))}",
            hint="images: " + ", ".join(sorted(prev_images)),
        )
    number = prev.number + 1
    prev_record = json.loads(prev.metadata_json)
    prev_manifest = load_manifest(
        dataset_dir / Layout.version_relpath(prev.number) / "manifest.json", prev.manifest_digest
    )

    kept = {n: im for n, im in prev_images.items() if n not in replace}
    inputs = _classify(settings, list(add), supporting, pattern, set(kept))
    from nanorepo.ome import open_source

    rep_sources: list[ImageSource] = []
    for name, path in replace.items():
        p = _check_input_path(settings, path)
        src = open_source(p, pattern=pattern, name=name)
        rep_sources.append(src)
        inputs.originals.append(p)
    new_sources = inputs.sources + rep_sources

    # The metadata of the new version: the new file if given, else the previous one.
    if metadata is not None:
        meta = load_metadata_file(metadata)
    else:
        meta = {
            k: v
            for k, v in prev_record.items()
            if k not in {"schema", "images", "localisation_tables"}
        }
    old_images = prev_record.get("images", {})
    facts = [_facts(s) for s in new_sources]
    # Unchanged images keep their harvested facts; the new metadata may override key/values.
    for name in kept:
        f = dict(old_images.get(name, {}))
        facts.append(
            ImageFacts(
                name=name,
                dims=f.get("dims", kept[name].dims),
                shape=f.get("shape", kept[name].shape),
                dtype=f.get("dtype", kept[name].dtype),
                pixel_sizes=f.get("pixel_sizes", kept[name].pixel_sizes),
                channels=f.get("channels", kept[name].channels),
                acquisition=f.get("acquisition", {}),
                key_values=f.get("key_values", kept[name].key_values),
                origin=f.get("origin", []),
                origin_names=[],
            )
        )
    tables = [{"name": n, "summary": t.summary()} for n, _p, t in inputs.tables]
    if metadata is not None:
        tables += [
            {"name": n, "summary": s}
            for n, s in prev_record.get("localisation_tables", {}).items()
            if n not in {t["name"] for t in tables}
        ]
    record, merged = build_record(
        meta,
        facts,
        tables=tables,
        source=str(metadata) if metadata else None,
        require_license=False,  # the licence is mutable metadata, set at deposit
    )
    if metadata is None:
        record["localisation_tables"] = {
            **prev_record.get("localisation_tables", {}),
            **record["localisation_tables"],
        }
        record["study"] = prev_record.get("study", {})

    key = _deposit_key(
        "revision",
        {
            "accession": accession,
            "after": prev.number,
            "metadata": json.loads(json.dumps(meta, default=str)),
            "inputs": [_fingerprint(p) for p in inputs.originals],
            "supporting": [_fingerprint(p) for p in inputs.supporting],
            "replace": sorted(replace),
            "note": note,
        },
    )
    with catalog.session() as s:
        dep = catalog.deposit(s, key)
        if dep is None:
            from nanorepo.catalog.models import Deposit

            dep = Deposit(
                key=key, accession=accession, kind="revision", version=number, owner=settings.user
            )
            s.add(dep)
            s.commit()
    root = settings.staging / key
    with _locked(root):
        if dep.state == "publishing":
            recover(settings, layout, catalog, index=index)
            return _result_of(catalog, accession, number, resumed=True)
        stage = root / "dataset"
        stage.mkdir(parents=True, exist_ok=True)
        images: list[ImageRecord] = []
        entries: dict[str, ImageEntry] = {}
        for name, im in kept.items():
            rec = ImageRecord(
                name=name, path=im.path, dims=list(im.dims), shape=list(im.shape), dtype=im.dtype,
                pixel_sizes=dict(merged[name]["pixel_sizes"]), channels=list(im.channels),
                levels=list(im.levels), key_values=dict(merged[name]["key_values"]),
                technique=im.technique, manifest_digest=im.manifest_digest, size_bytes=im.size_bytes,
            )  # fmt: skip
            images.append(rec)
            entries[im.path] = prev_manifest.images[im.path]
        with _abandon_on_bad_input(catalog, key, root):
            for src in new_sources:
                rel = Layout.image_relpath(number, src.name)
                rec, entry = _convert_image(src, merged[src.name], stage, rel, progress)
                images.append(rec)
                entries[rel] = entry
            new_files, digests = _stage_files(settings, inputs, stage, number, progress)
        images.sort(key=lambda i: i.name)
        new_names = {f["name"] for f in new_files}
        files = [
            {
                "name": f.name, "path": f.path, "role": f.role, "media_type": f.media_type,
                "size_bytes": f.size_bytes, "sha256": f.sha256, "summary": f.summary,
            }
            for f in prev_files
            if f.name not in new_names
        ] + new_files  # fmt: skip
        for f in files:
            if f["path"] not in digests:
                digests[f["path"]] = FileDigest(f["sha256"], f["size_bytes"])
        metadata_json, manifest_digest, manifest = _write_version_docs(
            stage, accession, number, record, images, entries, files, digests,
            created_by=settings.user, note=note or "revised",
        )  # fmt: skip
        vrec = VersionRecord(
            accession=accession,
            number=number,
            created_by=settings.user,
            metadata_json=metadata_json,
            metadata_digest=sha256_hex(metadata_json.encode()),
            manifest_digest=manifest_digest,
            size_bytes=manifest.size,
            images=images,
            files=files,
            note=note or "revised",
        )
        fsync_tree(stage)
        # New images and files first, the version directory last: it is the commit point.
        moves: list[tuple[str, Path]] = []
        for top in ("images", "files", "originals"):
            if (stage / top / f"v{number}").exists():
                moves.append((f"{top}/v{number}", dataset_dir / top / f"v{number}"))
        vrel = Layout.version_relpath(number)
        moves.append((vrel, dataset_dir / vrel))
        _save_record(root, vrec, moves)
        with catalog.session() as s:
            d = catalog.deposit(s, key)
            assert d is not None
            catalog.touch_deposit(s, d, "publishing")
            s.commit()
        for rel, dst in moves:
            publish_dir(stage / rel, dst, layout.incoming)
            _failpoint(settings, "revise-mid-publish")
        _commit(catalog, key, vrec, index)
    shutil.rmtree(root, ignore_errors=True)
    return DepositResult(
        accession, number, [i.name for i in images], [f["name"] for f in files], manifest_digest
    )
