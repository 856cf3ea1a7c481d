"""Every stored object of a version, for verified bulk download (``nanorepo download``).

- ``GET /datasets/{acc}/versions/{v}/manifest``: the version manifest, byte for byte as
  stored (canonical JSON); its SHA-256 is the version's ``manifest_sha256``.
- ``GET /datasets/{acc}/versions/{v}/objects/{path}``: one object of the version's Merkle
  tree by its path in the dataset: a file, an original, ``versions/vN/*.json``, an image
  manifest, or an object of an image (``images/v1/x.ome.zarr/zarr.json``). ``Range`` and
  ``If-Range`` supported (resumed downloads), ETag = the object's SHA-256.

The manifests are the allowlist: a path that neither the version manifest nor one of its
image manifests lists is a 404, so nothing else in the dataset's folder (or outside it) is
reachable; reads go through the one confined open of stored data (no symlinks). A client
checks the version manifest against the catalog's digest, each image manifest against the
version manifest, and each object against its manifest: the whole download is verified
end to end, as the Merkle tree of D1 allows.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request, Response

from nanorepo.catalog.models import Dataset, Version
from nanorepo.service._app import CurrentPrincipal, DbSession, state_of
from nanorepo.service._datasets import version_row
from nanorepo.service._zarr import ObjectNotFound, serve_object
from nanorepo.storage import Manifest, check_relpath, load_manifest

__all__ = ["router", "version_objects"]

#: (the routes are blocking ``def``s: FastAPI runs them in its thread pool)
router = APIRouter()

MANIFEST_NAME = "manifest.json"
_OCTETS = "application/octet-stream"
_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "the object (manifests and Zarr metadata: JSON)",
        "content": {"application/octet-stream": {}, "application/json": {}},
    },
    206: {"description": "the requested byte range"},
    304: {"description": "not modified (If-None-Match names the object's SHA-256)"},
    416: {"description": "the range lies beyond the end of the object"},
}


def _dataset_dir(request: Request, ds: Dataset) -> Path:
    return Path(state_of(request).repo.layout.dataset_dir(ds.accession, ds.access)).resolve()


@lru_cache(maxsize=256)
def _load(path: str, digest: str) -> Manifest:
    """A manifest checked against its digest (immutable once published: kept)."""
    return load_manifest(Path(path), digest)


def version_objects(dataset_dir: Path, v: Version) -> dict[str, tuple[str, int]]:
    """Every object of version ``v`` (path in the dataset -> (sha256, size)): its own
    objects, each image manifest, and every object of every image."""
    vpath = f"versions/v{v.number}/{MANIFEST_NAME}"
    m = _load(str(dataset_dir / vpath), v.manifest_digest)
    out = {k: (d.sha256, d.size) for k, d in m.objects.items()}
    for key, entry in m.images.items():
        im = _load(str(dataset_dir / entry.manifest), entry.sha256)
        out[entry.manifest] = (entry.sha256, len(im.to_bytes()))
        for k, d in im.objects.items():
            out[f"{key}/{k}"] = (d.sha256, d.size)
    return out


def _cache(ds: Dataset) -> str:
    # objects of a published version never change; embargoed ones stay out of shared caches
    return "public, max-age=31536000, immutable" if ds.access == "public" else "private"


@router.get(
    "/datasets/{accession}/versions/{version}/manifest",
    tags=["files"],
    response_class=Response,
    responses=_RESPONSES,
)
def version_manifest(
    accession: str, version: str, request: Request, s: DbSession, p: CurrentPrincipal
) -> Response:
    """The version manifest as stored (canonical JSON; SHA-256 = ``manifest_sha256``)."""
    ds, v = version_row(s, p, accession, version)
    return _serve(request, ds, f"versions/v{v.number}/{MANIFEST_NAME}", v.manifest_digest)


@router.get(
    "/datasets/{accession}/versions/{version}/objects/{object:path}",
    tags=["files"],
    response_class=Response,
    responses=_RESPONSES,
)
def version_object(
    accession: str, version: str, object: str, request: Request, s: DbSession, p: CurrentPrincipal
) -> Response:
    """One object of the version by its path in the dataset (listed by its manifests)."""
    ds, v = version_row(s, p, accession, version)
    base = _dataset_dir(request, ds)
    objects = version_objects(base, v)
    path = object
    found = objects.get(path) if len(path) <= 1024 else None
    if found is None:
        raise ObjectNotFound(
            f"{ds.accession}@v{v.number} has no object {path[:200]!r}",
            hint=f"GET datasets/{ds.accession}/versions/v{v.number}/manifest lists them",
        )
    digest, size = found
    return _serve(request, ds, path, digest, size)


def _serve(
    request: Request, ds: Dataset, path: str, digest: str, size: int | None = None
) -> Response:
    base = _dataset_dir(request, ds)
    try:
        return serve_object(
            method=request.method,
            headers=request.headers,
            base=str(base),
            parts=check_relpath(path).parts,
            tag=f'"{digest}"',
            media_type="application/json" if path.endswith(".json") else _OCTETS,
            cache=_cache(ds),
            expected_size=size,
        )
    except FileNotFoundError:
        raise ObjectNotFound(
            f"{ds.accession}: object {path[:200]!r} is missing from storage",
            hint="tell the operator: `nanorepo verify` finds missing objects",
        ) from None
