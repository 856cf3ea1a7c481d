"""Deposit and revise datasets: from instrument files to a sealed, published version.

The steps live in :mod:`._inputs` (what the files are), :mod:`._metadata` (the sealed
record) and :mod:`._staging` (conversion, manifests, atomic publication, recovery); this
module puts them in order for a new dataset and for a revision.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nanorepo.catalog import Catalog, ImageRecord, VersionRecord
from nanorepo.deposition._inputs import (
    Inputs,
    check_unchanged,
    classify,
    confine_input,
    fingerprint,
    image_facts,
)
from nanorepo.deposition._metadata import (
    ImageFacts,
    build_record,
    mutable_from_file,
    parse_metadata,
)
from nanorepo.deposition._staging import (
    DepositResult,
    Progress,
    abandon_on_bad_input,
    convert_image,
    deposit_key,
    failpoint,
    locked,
    mark,
    publish,
    recover,
    result_of,
    save_record,
    stage_files,
    write_version_docs,
)
from nanorepo.errors import Conflict, ImageNotFound, InvalidInput
from nanorepo.settings import Settings
from nanorepo.storage import (
    FileDigest,
    ImageEntry,
    Layout,
    fsync_tree,
    load_manifest,
    read_beneath,
    sha256_hex,
)

if TYPE_CHECKING:
    from nanorepo.ome import ImageSource

__all__ = ["DepositResult", "deposit", "recover", "revise"]


def read_metadata(settings: Settings, path: Path) -> dict[str, Any]:
    """A deposit's metadata file, read like every other input (no link followed, inside
    the caller's area) and checked against the metadata limits of ``settings``."""
    real, _ = confine_input(settings, path)
    data = read_beneath(real.parent, real.name, limit=settings.metadata_max_bytes + 1)
    return parse_metadata(
        data,
        source=str(path),
        json_format=real.suffix.lower() == ".json",
        max_chars=settings.metadata_max_chars,
        max_depth=settings.metadata_max_depth,
        max_bytes=settings.metadata_max_bytes,
    )


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
    inputs = classify(settings, paths, supporting, pattern, set())
    meta = read_metadata(settings, metadata) if metadata else {}
    facts = [image_facts(s) for s in inputs.sources]
    tables = [{"name": n, "summary": t.summary()} for n, _p, t in inputs.tables]
    record, merged = build_record(
        meta, facts, tables=tables, source=str(metadata) if metadata else None
    )
    if not inputs.sources and not inputs.tables:
        raise InvalidInput("no image or localisation table among the inputs")
    mutable = {"title": title.strip(), **mutable_from_file(meta)}
    key = deposit_key(
        "new",
        {
            "inputs": [fingerprint(p, inputs.checked) for p in inputs.originals],
            "supporting": [fingerprint(p, inputs.checked) for p in inputs.supporting],
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
    if dep.state == "recovered":
        # Killed after publication and finished by a later process: this run of the same
        # command is the one that reports it.
        mark(catalog, key, "published")
        return result_of(catalog, accession, 1, resumed=True)
    if dep.state == "published":
        raise Conflict(
            f"these files were deposited already as {accession}",
            hint=f"`nanorepo show {accession}`; to change it use `nanorepo revise {accession}`",
        )

    root = settings.staging / key
    with locked(root):
        if dep.state == "publishing":
            recover(settings, layout, catalog, index=index)
            mark(catalog, key, "published")
            return result_of(catalog, accession, 1, resumed=True)
        stage = root / "dataset"
        stage.mkdir(parents=True, exist_ok=True)
        images: list[ImageRecord] = []
        entries: dict[str, ImageEntry] = {}
        with abandon_on_bad_input(catalog, key, root):
            for src in inputs.sources:
                rel = Layout.image_relpath(1, src.name)
                rec, entry = convert_image(src, merged[src.name], stage, rel, progress)
                images.append(rec)
                entries[rel] = entry
                failpoint(settings, "after-image")
            files, digests = stage_files(settings, inputs, stage, 1, progress)
            check_unchanged(inputs.checked)
        metadata_json, manifest_digest, manifest = write_version_docs(
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
        moves = [(".", layout.dataset_dir(accession, access))]
        save_record(root, vrec, moves)
        with catalog.session() as s:
            d = catalog.deposit(s, key)
            assert d is not None
            catalog.touch_deposit(s, d, "publishing")
            s.commit()
        if progress:
            progress(f"publishing {accession}")
        failpoint(settings, "before-publish")
        # Catalog first, then the rename into storage: a storage mount never shows a
        # dataset directory the catalog does not know (not even for a moment).
        publish(catalog, layout, key, vrec, stage, moves, index)
        failpoint(settings, "after-publish")
        mark(catalog, key, "published")
    shutil.rmtree(root, ignore_errors=True)
    return DepositResult(
        accession, 1, [i.name for i in images], [f["name"] for f in files], manifest_digest, resumed
    )


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

    # The request's identity, from the checked inputs alone (no reader opened yet).
    given = Inputs([], [], [], [])
    reals = [given.confine(settings, p) for p in [*add, *replace.values()]]
    sup_reals = [given.confine(settings, p) for p in supporting]
    new_meta = read_metadata(settings, metadata) if metadata is not None else None
    key_parts = {
        "accession": accession,
        "after": prev.number,
        "metadata": json.loads(json.dumps(new_meta, default=str)) if new_meta is not None else None,
        "inputs": [fingerprint(p, given.checked) for p in reals],
        "supporting": [fingerprint(p, given.checked) for p in sup_reals],
        "replace": sorted(replace),
        "note": note,
    }
    key = deposit_key("revision", key_parts)
    if prev.number > 1:
        # Killed after publication and finished by a later process: the latest version is
        # this very revision (the key of the same request made after the one before it).
        earlier = deposit_key("revision", {**key_parts, "after": prev.number - 1})
        with catalog.session() as s:
            done = catalog.deposit(s, earlier)
            found = done is not None and done.state == "recovered" and done.version == prev.number
        if found:
            mark(catalog, earlier, "published")
            return result_of(catalog, accession, prev.number, resumed=True)

    kept = {n: im for n, im in prev_images.items() if n not in replace}
    inputs = classify(settings, list(add), supporting, pattern, set(kept))
    from nanorepo.ome import open_source

    rep_sources: list[ImageSource] = []
    for name, path in replace.items():
        p = inputs.confine(settings, path)
        src = open_source(p, pattern=pattern, name=name)
        inputs.check_origins([src])
        rep_sources.append(src)
        inputs.originals.append(p)
    new_sources = inputs.sources + rep_sources

    # The metadata of the new version: the new file if given, else the previous one.
    if new_meta is not None:
        meta = new_meta
    else:
        meta = {
            k: v
            for k, v in prev_record.items()
            if k not in {"schema", "images", "localisation_tables"}
        }
    old_images = prev_record.get("images", {})
    facts = [image_facts(s) for s in new_sources]
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
    with locked(root):
        if dep.state == "publishing":
            recover(settings, layout, catalog, index=index)
            mark(catalog, key, "published")
            return result_of(catalog, accession, number, resumed=True)
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
        with abandon_on_bad_input(catalog, key, root):
            for src in new_sources:
                rel = Layout.image_relpath(number, src.name)
                rec, entry = convert_image(src, merged[src.name], stage, rel, progress)
                images.append(rec)
                entries[rel] = entry
            new_files, digests = stage_files(settings, inputs, stage, number, progress)
            check_unchanged(inputs.checked)
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
        metadata_json, manifest_digest, manifest = write_version_docs(
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
        save_record(root, vrec, moves)
        with catalog.session() as s:
            d = catalog.deposit(s, key)
            assert d is not None
            catalog.touch_deposit(s, d, "publishing")
            s.commit()
        publish(catalog, layout, key, vrec, stage, moves, index,
                failpoint_after=lambda: failpoint(settings, "revise-mid-publish"))  # fmt: skip
        mark(catalog, key, "published")
    shutil.rmtree(root, ignore_errors=True)
    return DepositResult(
        accession, number, [i.name for i in images], [f["name"] for f in files], manifest_digest
    )
