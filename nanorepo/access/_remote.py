"""``nanorepo.open`` over HTTP: the same :class:`Dataset` and :class:`Image`, backed by the
service instead of a mounted storage.

Used when this process reaches the repository through its service (:mod:`nanorepo.connection`
decides: a laptop, or a hub user's server) and the dataset is not on a mount here. Metadata comes from the API; images are read through the
service's read-only Zarr endpoint with tensorstore (:meth:`OmeZarrImage.open` on the URL,
with the token as a header), which fetches only the chunks a region touches, so reading a
region costs what the region costs, wherever the data is.

Stored files are not on this machine, so :meth:`RemoteDataset.file_path` refuses with a
clear error pointing at :meth:`RemoteDataset.download`; we chose that over an implicit
download cache because a stored file can be many gigabytes and a silent copy into a home
directory is the surprise invariant 3 ("data stays where it is") rules out. Localisation
tables, which analyses need as DataFrames anyway, are read from the download in memory.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from nanorepo.access._open import (
    Dataset,
    Image,
    find_dataset_dir,
    pick_localisation_table,
    read_version,
)
from nanorepo.errors import DatasetNotFound, NanorepoError
from nanorepo.storage import Layout, parse_ref

if TYPE_CHECKING:
    import pandas

    from nanorepo.ome import OmeZarrImage

__all__ = ["NotOnThisMachine", "RemoteDataset", "RemoteImage", "ServiceClient", "open_remote"]


class ServiceClient(Protocol):
    """What opening over HTTP needs of a client of the service (:class:`nanorepo.Client`
    is one): the access layer sits below the client and is handed one, never imports it."""

    url: str

    @property
    def auth_headers(self) -> dict[str, str]: ...

    def clone(self) -> ServiceClient: ...

    def close(self) -> None: ...

    def __enter__(self) -> ServiceClient: ...

    def __exit__(self, *exc: object) -> None: ...

    def dataset(self, accession: str) -> dict[str, Any]: ...

    def version(self, accession: str, version: int | str | None = None) -> dict[str, Any]: ...

    def sealed_metadata(self, accession: str, version: int | str | None = None) -> Any: ...

    def images(self, accession: str, version: int | str | None = None) -> Any: ...

    def files(self, accession: str, version: int | str | None = None) -> Any: ...

    def download(
        self, accession: str, version: int | str | None, name: str, dest: Any = None
    ) -> Path | bytes: ...


class NotOnThisMachine(NanorepoError, FileNotFoundError):
    """A stored file of a dataset opened over HTTP has no local path."""


@dataclass(repr=False)
class RemoteImage(Image):
    """An :class:`Image` read over HTTP from the service's Zarr endpoint.

    ``path`` is the image's path on the service (``zarr/ACC/vN/NAME``); ``url`` the full URL.
    """

    url: str = ""
    headers: dict[str, str] = field(default_factory=dict, repr=False)

    @cached_property
    def zarr(self) -> OmeZarrImage:
        """The underlying OME-Zarr image, read with HTTP range requests."""
        from nanorepo.ome import OmeZarrImage

        return OmeZarrImage.open(self.url, headers=self.headers)


@dataclass(repr=False)
class RemoteDataset(Dataset):
    """A :class:`Dataset` whose metadata and bytes come from a nanorepo service.

    ``url`` is the dataset on the service (``path`` its path there, ``datasets/ACC``);
    ``client`` is the :class:`nanorepo.Client` used, with its token.
    """

    url: str = ""
    client: ServiceClient | None = field(default=None, repr=False, compare=False)

    def _client(self) -> ServiceClient:
        """A client for one call (closed after it: a dataset object may live long and be
        copied to workers, so it holds no open connections)."""
        assert self.client is not None
        return self.client.clone()

    def file_path(self, name: str) -> Path:
        """Refused: the file is on the service, not here. Use :meth:`download`."""
        self._file(name)
        raise NotOnThisMachine(
            f"{self.ref} was opened over HTTP: {name!r} has no path on this machine",
            hint=f"download it: dataset.download({name!r}, 'some/dir') (or "
            f"nanorepo.Client().download({self.accession!r}, {self.version}, {name!r}, dest))",
        )

    def _file(self, name: str) -> dict[str, Any]:
        for f in self.files:
            if f["name"] == name:
                return f
        raise FileNotFoundError(
            f"{self.ref} has no file {name!r}; files: {', '.join(f['name'] for f in self.files)}"
        )

    def download(self, name: str, dest: str | os.PathLike[str]) -> Path:
        """Download a stored file to ``dest`` (a file or a directory), checked by SHA-256."""
        self._note_file(self._file(name))
        with self._client() as c:
            out = c.download(self.accession, self.version, name, dest)
        assert isinstance(out, Path)
        return out

    def localisations(self, name: str | None = None) -> pandas.DataFrame:
        """A localisation table as a DataFrame (columns in nm), downloaded into memory."""
        import pyarrow.parquet as pq

        table = pick_localisation_table(self.ref, self.files, name)
        self._note_file(table)
        with self._client() as c:
            data = c.download(self.accession, self.version, table["name"])
        assert isinstance(data, bytes)
        return pq.read_table(io.BytesIO(data)).to_pandas()

    def __repr__(self) -> str:
        return f"<Dataset {self.ref} {self.title!r} images={len(self.images)} (remote)>"


def open_remote(ref: str, client: ServiceClient, *, mount: Layout | None = None) -> Dataset:
    """Open ``ACCESSION[@vN]`` through the service ``client`` speaks to.

    The service says which version is meant, whether the caller may see it, and the current
    administrative metadata; the bytes are read from ``mount`` (a user server's read-only
    view of the storage, where it holds the dataset: the fast path) or else over HTTP
    (:class:`RemoteDataset`). Raises what the service answers:
    :class:`~nanorepo.errors.DatasetNotFound` (with the service's message) for a dataset
    that does not exist or the caller may not see.
    """
    accession, version = parse_ref(ref)
    detail = client.dataset(accession)
    v = client.version(accession, version)
    number = int(v["version"])
    if mount is not None:
        try:
            dataset_dir, _area = find_dataset_dir(mount, accession)
        except DatasetNotFound:
            pass
        else:
            if (dataset_dir / Layout.version_relpath(number) / "version.json").is_file():
                return read_version(
                    mount, dataset_dir, accession, number,
                    latest=int(detail["latest_version"]),
                    mutable=dict(detail.get("mutable") or {}),
                    metadata_digest=v.get("metadata_sha256") or None,
                )  # fmt: skip
    sealed = client.sealed_metadata(accession, number)
    headers = client.auth_headers
    images: list[Image] = [
        RemoteImage(
            name=im["name"],
            path=Path(im["zarr"]),
            dims=tuple(im["dims"]),
            shape=tuple(im["shape"]),
            dtype=im["dtype"],
            pixel_sizes=dict(im["pixel_sizes"]),
            channels=list(im["channels"]),
            key_values=dict(im["key_values"]),
            levels=[tuple(lv) for lv in im["levels"]],
            technique=im.get("technique", ""),
            dataset=f"{accession}@v{number}",
            manifest_digest=str(im.get("manifest_sha256") or ""),
            url=f"{client.url}/{im['zarr'].lstrip('/')}",
            headers=headers,
        )
        for im in client.images(accession, number)
    ]
    return RemoteDataset(
        accession=accession,
        version=number,
        latest_version=int(detail["latest_version"]),
        path=Path("datasets", accession),
        url=f"{client.url}/datasets/{accession}",
        metadata=dict(sealed["metadata"]),
        mutable=dict(detail.get("mutable") or {}),
        images=images,
        files=list(client.files(accession, number)),
        manifest_digest=str(v.get("manifest_sha256") or ""),
        client=client,
    )
