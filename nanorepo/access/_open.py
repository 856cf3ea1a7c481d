"""Lazy, physical-unit access to a dataset version (what ``nanorepo.open`` returns).

Storage is self-describing: ``versions/vN/version.json`` lists a version's images and
files, so ``open`` needs the catalog only to know which version is the latest and what
the current administrative metadata says. On a user server that mounts the storage
read-only, ``open`` therefore reads straight from the mount.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nanorepo.access._journal import Journal
from nanorepo.errors import DatasetNotFound, ImageNotFound, IntegrityError, VersionNotFound
from nanorepo.settings import Settings
from nanorepo.storage import Layout, parse_ref, sha256_hex

if TYPE_CHECKING:
    import pandas
    import xarray

    from nanorepo.catalog import Catalog
    from nanorepo.ome import OmeZarrImage

__all__ = [
    "Dataset",
    "Image",
    "find_dataset_dir",
    "open_from_storage",
    "open_version",
    "pinned",
    "read_version",
]


_V = re.compile(r"v([1-9][0-9]*)")


@dataclass
class Image:
    """One multiscale image of a dataset version, opened lazily.

    ``pixel_sizes`` are in nanometres for ``z``, ``y``, ``x`` and seconds for ``t``.
    """

    name: str
    path: Path
    dims: tuple[str, ...]
    shape: tuple[int, ...]
    dtype: str
    pixel_sizes: dict[str, float]
    channels: list[dict[str, Any]]
    key_values: dict[str, str]
    levels: list[tuple[int, ...]]
    technique: str = ""
    dataset: str = ""
    manifest_digest: str = ""
    journal: Journal | None = field(default=None, repr=False, compare=False)

    @property
    def channel_names(self) -> list[str]:
        return [str(c.get("name", f"channel {i}")) for i, c in enumerate(self.channels)]

    @cached_property
    def zarr(self) -> OmeZarrImage:
        """The underlying OME-Zarr image (tensorstore-backed), scanned once for planted
        links or special files, which are refused (docs/security.md, "Stored data")."""
        from nanorepo.ome import OmeZarrImage

        self._note_read()
        return OmeZarrImage.open(self.path, confined="scan")

    def _note_read(self) -> None:
        """Tell the run journal (inside ``nanorepo run``) that this image's pixels are read."""
        if self.journal is None or not self.dataset:
            return
        accession, version = parse_ref(self.dataset)
        if not self.manifest_digest:
            # Storage keeps the image manifest next to the image; its bytes are canonical
            # JSON, so their SHA-256 is the image's manifest digest.
            manifest = self.path.with_name(Layout.image_manifest_relpath(self.path.name))
            self.manifest_digest = sha256_hex(manifest.read_bytes())
        self.journal.note_input("image", accession, version or 0, self.manifest_digest, self.name)

    def to_xarray(self, level: int = 0, *, dask: bool = True) -> xarray.DataArray:
        """A lazy ``DataArray`` of pyramid ``level`` with coordinates in nm / s.

        Selecting a region (``.sel(x=slice(...))`` or ``.isel``) and computing it reads
        only the chunks the region overlaps; select in one call, since chained selections
        on a dask array can fetch more. ``dask=False`` gives a lazily indexed array without
        dask, the faster choice for interactive region reads.
        """
        if not 0 <= level < len(self.levels):
            raise IndexError(f"{self.name} has pyramid levels 0..{len(self.levels) - 1}")
        self._note_read()
        da = self.zarr.to_xarray(level, dask=dask)
        da.name = self.name
        da.attrs.update({"dataset": self.dataset, "image": self.name})
        return da

    def __repr__(self) -> str:
        shape = " x ".join(f"{d}={n}" for d, n in zip(self.dims, self.shape, strict=True))
        px = ", ".join(f"{k}={v:g}" for k, v in self.pixel_sizes.items())
        return f"<Image {self.name!r} {shape} {self.dtype} pixel sizes ({px}) levels={len(self.levels)}>"


@dataclass
class Dataset:
    """A dataset version: immutable metadata, current administrative metadata, images."""

    accession: str
    version: int
    latest_version: int
    path: Path
    metadata: dict[str, Any]
    mutable: dict[str, Any]
    images: list[Image]
    files: list[dict[str, Any]] = field(default_factory=list)
    manifest_digest: str = ""
    journal: Journal | None = field(default=None, repr=False, compare=False)

    @property
    def ref(self) -> str:
        """Citable reference ``ACCESSION@vN``."""
        return f"{self.accession}@v{self.version}"

    @property
    def title(self) -> str:
        return str(self.mutable.get("title", ""))

    def file_path(self, name: str) -> Path:
        """Where a stored file of this version is (checked to lie inside the dataset)."""
        for f in self.files:
            if f["name"] == name:
                self._note_file(f)
                return Layout.resolve(self.path, f["path"])
        raise FileNotFoundError(
            f"{self.ref} has no file {name!r}; files: {', '.join(f['name'] for f in self.files)}"
        )

    def _note_file(self, f: Mapping[str, Any]) -> None:
        if self.journal is not None:
            self.journal.note_input(
                "file", self.accession, self.version, str(f.get("sha256", "")), f["name"]
            )

    def _attach(self, journal: Journal | None) -> Dataset:
        """Report this version and, as they are read, its images and files to ``journal``."""
        if journal is None:
            return self
        self.journal = journal
        for im in self.images:
            im.journal = journal
        if not self.manifest_digest:
            # The manifest file is canonical JSON: the SHA-256 of its bytes is the version's
            # manifest digest, which covers every byte of the version.
            self.manifest_digest = sha256_hex(
                (self.path / Layout.version_relpath(self.version) / "manifest.json").read_bytes()
            )
        journal.note_input("dataset", self.accession, self.version, self.manifest_digest)
        return self

    def localisations(self, name: str | None = None) -> pandas.DataFrame:
        """A localisation table of this version as a DataFrame (columns in nm).

        ``name`` is the table's file name (``locs.parquet``) or stem; ``None`` takes the only
        one. Canonical columns: ``x_nm, y_nm[, z_nm], frame, photons, ...``.
        """
        import pyarrow.parquet as pq

        table = pick_localisation_table(self.ref, self.files, name)
        return pq.read_table(self.file_path(table["name"])).to_pandas()

    def image(self, name: str) -> Image:
        for im in self.images:
            if im.name == name:
                return im
        raise ImageNotFound(
            f"{self.ref} has no image {name!r}",
            hint="images: " + ", ".join(i.name for i in self.images),
        )

    def __getitem__(self, name: str) -> Image:
        return self.image(name)

    def __iter__(self) -> Iterator[Image]:
        return iter(self.images)

    def __len__(self) -> int:
        return len(self.images)

    def __repr__(self) -> str:
        return f"<Dataset {self.ref} {self.title!r} images={len(self.images)}>"


def pick_localisation_table(
    ref: str, files: list[dict[str, Any]], name: str | None
) -> dict[str, Any]:
    """The one localisation table of ``files`` named ``name`` (file name or stem), or the
    only one when ``name`` is None; a clear error otherwise."""
    tables = [f for f in files if f["role"] == "localisations"]
    if name is not None:
        tables = [f for f in tables if name in (f["name"], f["name"].removesuffix(".parquet"))]
    if len(tables) != 1:
        raise ImageNotFound(
            f"{ref}: {'no' if not tables else 'more than one'} localisation table"
            + (f" named {name!r}" if name else ""),
            hint="tables: "
            + (", ".join(f["name"] for f in files if f["role"] == "localisations") or "none"),
        )
    return tables[0]


def find_dataset_dir(layout: Layout, accession: str) -> tuple[Path, str]:
    for access in ("public", "embargoed"):
        d = layout.dataset_dir(accession, access)
        if d.is_dir():
            return d, access
    raise DatasetNotFound(accession)


def _latest_on_storage(dataset_dir: Path) -> int:
    vs = [int(m[1]) for p in (dataset_dir / "versions").iterdir() if (m := _V.fullmatch(p.name))]
    if not vs:
        raise DatasetNotFound(dataset_dir.name)
    return max(vs)


def open_version(
    layout: Layout,
    accession: str,
    version: int | None,
    *,
    catalog: Catalog | None = None,
) -> Dataset:
    """Open ``accession`` (``version`` None: the latest) from storage (+ catalog if given)."""
    mutable: dict[str, Any] = {}
    expected_metadata_digest = None
    if catalog is not None:
        with catalog.session() as s:
            ds = catalog.dataset(s, accession)
            v = catalog.version(s, accession, version)
            latest = ds.latest_version
            number = v.number
            mutable = dict(ds.mutable)
            expected_metadata_digest = v.metadata_digest
            dataset_dir = layout.dataset_dir(accession, ds.access)
    else:
        dataset_dir, _access = find_dataset_dir(layout, accession)
        latest = _latest_on_storage(dataset_dir)
        number = latest if version is None else version
        if not 1 <= number <= latest:
            raise VersionNotFound(accession, number, latest)
    return read_version(
        layout, dataset_dir, accession, number, latest=latest, mutable=mutable,
        metadata_digest=expected_metadata_digest,
    )  # fmt: skip


def read_version(
    layout: Layout,
    dataset_dir: Path,
    accession: str,
    number: int,
    *,
    latest: int,
    mutable: Mapping[str, Any],
    metadata_digest: str | None = None,
) -> Dataset:
    """Version ``number`` of the dataset stored in ``dataset_dir``, its facts from storage
    (``version.json``) and what only the catalog knows given: the latest version, the
    current administrative metadata and the sealed metadata's digest (checked here).

    Used with a catalog (:func:`open_version`) and, on a user server, with what the service
    answered while the pixels are read from the server's read-only mount."""
    vdir = dataset_dir / Layout.version_relpath(number)
    try:
        doc = json.loads((vdir / "version.json").read_bytes())
        meta_bytes = (vdir / "metadata.json").read_bytes()
    except FileNotFoundError as exc:
        raise IntegrityError(
            f"{accession}@v{number}: {exc.filename} is missing from storage",
            hint="run `nanorepo verify` and restore the version from a replica",
        ) from exc
    digest = sha256_hex(meta_bytes)
    if digest != doc.get("metadata_sha256") or (
        metadata_digest is not None and digest != metadata_digest
    ):
        raise IntegrityError(f"{accession}@v{number}: metadata.json does not match its seal")
    images = [
        Image(
            name=im["name"],
            path=layout.resolve(dataset_dir, im["path"]),
            dims=tuple(im["dims"]),
            shape=tuple(im["shape"]),
            dtype=im["dtype"],
            pixel_sizes=dict(im["pixel_sizes"]),
            channels=list(im["channels"]),
            key_values=dict(im["key_values"]),
            levels=[tuple(lv) for lv in im["levels"]],
            technique=im.get("technique", ""),
            dataset=f"{accession}@v{number}",
        )
        for im in doc["images"]
    ]
    return Dataset(
        accession=accession,
        version=number,
        latest_version=latest,
        path=dataset_dir,
        metadata=json.loads(meta_bytes),
        mutable=dict(mutable),
        images=images,
        files=list(doc.get("files", [])),
    )


def open_from_storage(ref: str, settings: Settings) -> Dataset:
    """Open ``ref`` on the machine that holds the repository (``settings``' storage and, if
    it exists, its catalog), with the pins of a re-run applied; the caller attaches the run
    journal. Never creates a catalog: without one, storage alone says what a version holds.
    """
    accession, version = parse_ref(pinned(ref, settings.run_pins))
    layout = Layout(settings.storage)
    catalog = None
    if not settings.database_url.startswith("sqlite") or _sqlite_exists(settings.database_url):
        from nanorepo.catalog import Catalog

        catalog = Catalog(settings.database_url)
    try:
        return open_version(layout, accession, version, catalog=catalog)
    finally:
        if catalog is not None:
            catalog.close()


def pinned(ref: str, pins: tuple[str, ...]) -> str:
    """``ref`` with the version a re-run pinned for it (a bare accession only)."""
    accession, version = parse_ref(ref)
    if version is not None or not pins:
        return ref
    for pin in pins:
        acc, ver = parse_ref(pin)
        if acc == accession and ver is not None:
            return f"{acc}@v{ver}"
    return ref


def _sqlite_exists(url: str) -> bool:
    path = url.split("///", 1)[-1]
    return bool(path) and Path(path).exists()
