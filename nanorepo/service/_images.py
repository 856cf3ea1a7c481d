"""Images, files and thumbnails of a dataset version.

Every route finds the version through :func:`~nanorepo.service._datasets.version_row`, so an
embargoed dataset the caller may not see answers exactly like one that does not exist, on
every one of them (lists, details, thumbnails, downloads).

The image table of a version can hold 100,000 images. Filtering on file-level key/value
metadata and sorting by a key run in the database on the indexed side table
``image_key_value`` (one row per image and key, kept in step with the ``key_values`` JSON
column by triggers; see :class:`~nanorepo.catalog.models.ImageKeyValue`): a filter is an
index range per key, not a JSON function over every image of the version. The JSON column
stays what the API returns. Pages are keyset cursors, never offsets, and the total is
counted once, on the first page, and carried in the cursor: a published version never
changes, so the count stays true.

Thumbnails are rendered by :func:`nanorepo.ome.thumbnail` (maximum over z, channel colours
and stored contrast windows) from the coarsest pyramid level of at least the requested size
and 128 px, a few hundred kB of I/O whatever the image size, and cached on disk under
``home/cache/thumbnails`` by the digest of the image's manifest, so a cached thumbnail can never show other pixels than the image it names.
Downloads are ``attachment`` only: deposited bytes must never render in the service's origin.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar
from urllib.parse import quote

from fastapi import APIRouter, Query, Request, Response
from sqlalchemy import ColumnElement
from sqlmodel import Session, col

import nanorepo.catalog._queries as queries
from nanorepo.catalog.models import Dataset, File, Image, Version
from nanorepo.errors import ImageNotFound, InvalidInput
from nanorepo.repository import Repository
from nanorepo.schemas import FileInfo, ImageInfo, Page
from nanorepo.service._app import CurrentPrincipal, DbSession, state_of
from nanorepo.service._datasets import Cursor, Limit, version_row
from nanorepo.service._http import decode_cursor, encode_cursor, etag, not_modified
from nanorepo.service._zarr import (
    PRIVATE_CACHE,
    PUBLIC_CACHE,
    ObjectNotFound,
    content_disposition,
    serve_object,
)
from nanorepo.storage import check_relpath
from nanorepo.storage._layout import NAME_RE

__all__ = ["file_info", "image_info", "router"]

router = APIRouter()

F = TypeVar("F", bound=Callable[..., Any])

#: Bumped when thumbnail rendering changes, so cached PNGs of the old rendering are not used.
RENDERING = "r2"
#: Thumbnails rendered at the same time (each reads and decodes the lowest level).
_RENDER_SLOTS = threading.BoundedSemaphore(2)
#: What a key/value key may contain to be filtered or sorted on.
_KEY_RE = re.compile(r"[^\"\\\x00-\x1f\x7f]{1,128}")
_MEDIA_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*")
_MAX_FILTERS = 20
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")


def _get(path: str, **kw: Any) -> Callable[[F], F]:
    """Register a GET route and the same for HEAD (not repeated in the OpenAPI document)."""

    def deco(fn: F) -> F:
        router.add_api_route(path, fn, methods=["GET"], **kw)
        router.add_api_route(path, fn, methods=["HEAD"], include_in_schema=False, **kw)
        return fn

    return deco


def _ref(ds: Dataset, v: Version) -> str:
    return f"{ds.accession}@v{v.number}"


def image_info(accession: str, number: int, im: Image) -> ImageInfo:
    """The API view of an image row, with its Zarr and thumbnail paths (relative to the
    service root)."""
    return ImageInfo(
        name=im.name,
        dims=list(im.dims),
        shape=list(im.shape),
        dtype=im.dtype,
        pixel_sizes=dict(im.pixel_sizes),
        channels=list(im.channels),
        levels=[list(lv) for lv in im.levels],
        key_values=dict(im.key_values),
        technique=im.technique,
        size_bytes=im.size_bytes,
        manifest_sha256=im.manifest_digest,
        zarr=f"zarr/{accession}/v{number}/{im.name}",
        thumbnail=f"datasets/{accession}/versions/v{number}/images/{im.name}/thumbnail.png",
    )


def file_info(accession: str, number: int, f: File) -> FileInfo:
    return FileInfo(
        name=f.name,
        role=f.role,
        media_type=f.media_type,
        size_bytes=f.size_bytes,
        sha256=f.sha256,
        summary=dict(f.summary),
        download=f"datasets/{accession}/versions/v{number}/files/{quote(f.name, safe='/')}",
    )


# -- the image table ------------------------------------------------------------------


def _plain(value: str, what: str) -> str:
    """``value`` if it holds no control characters (which no name or value can contain, and
    which PostgreSQL refuses in text), else a 422."""
    if _CONTROL_RE.search(value):
        raise InvalidInput(
            f"{what} {value[:100]!r} contains control characters",
            hint="names and values are printable text",
        )
    return value


def _parse_filters(filters: list[str]) -> dict[str, list[str]]:
    """``KEY:VALUE`` strings grouped by key (values lower-cased)."""
    if len(filters) > _MAX_FILTERS:
        raise InvalidInput(
            f"{len(filters)} filters given; at most {_MAX_FILTERS} are allowed",
            hint="combine fewer filters, or page through a broader result",
        )
    out: dict[str, list[str]] = {}
    for f in filters:
        key, sep, value = f.partition(":")
        if not sep or not _KEY_RE.fullmatch(key):
            raise InvalidInput(
                f"filter {f[:200]!r} is not KEY:VALUE",
                hint="write e.g. filter=condition:control (repeat filter=: the same key "
                "matches any of its values, different keys must all match)",
            )
        out.setdefault(key, []).append(_plain(value, "filter value"))
    return out


def _check_sort_key(sort: str) -> str:
    if not _KEY_RE.fullmatch(sort):
        raise InvalidInput(
            f"cannot sort by {sort[:200]!r}",
            hint="sort=name, or sort=KEY for a key of the images' key/value metadata",
        )
    return sort


def _fingerprint(*parts: Any) -> str:
    raw = json.dumps(parts, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(raw).hexdigest()[:16]


@_get(
    "/datasets/{accession}/versions/{version}/images",
    response_model=Page[ImageInfo],
    tags=["images"],
)
def list_images(
    accession: str,
    version: str,
    s: DbSession,
    p: CurrentPrincipal,
    filter_: Annotated[
        list[str] | None,
        Query(
            alias="filter",
            description="KEY:VALUE on the images' key/value metadata, exact and "
            "case-insensitive in the value; repeat it: the same key matches any of its "
            "values, different keys must all match",
        ),
    ] = None,
    q: Annotated[str, Query(max_length=200, description="substring of the image name")] = "",
    sort: Annotated[
        str, Query(max_length=128, description="`name` or a key of the key/value metadata")
    ] = "name",
    order: Annotated[Literal["asc", "desc"], Query(description="sort order")] = "asc",
    cursor: Cursor = None,
    limit: Limit = 50,
) -> Page[ImageInfo]:
    """The images of a version, filtered on their key/value metadata, sorted, paginated."""
    ds, v = version_row(s, p, accession, version)
    filters = _parse_filters(filter_ or [])
    by_key = sort != "name"
    if by_key:
        _check_sort_key(sort)
    desc = order == "desc"
    fp = _fingerprint(v.id, sorted(filters.items()), q, sort, order)
    key = decode_cursor(cursor)
    if key is not None and (
        key.get("f") != fp
        or not isinstance(key.get("n"), str)
        or not isinstance(key.get("t"), int)
        or not isinstance(key.get("s"), str | None)
    ):
        raise InvalidInput(
            "the cursor belongs to another query (other filters, sort or version)",
            hint="pass `next` with the same parameters as the page it came from, or omit it",
        )

    name_part = _plain(q, "q") if q else ""
    after = None if key is None else (str(key.get("s", "")) if by_key else None, key["n"])
    head, window_total, images = queries.image_page(
        s, v.id, filters, name_part, sort if by_key else None, desc, after, limit
    )
    if key is not None:
        total = int(key.get("t", 0))
    elif window_total is not None:
        total = window_total
    else:
        total = queries.count_where(s, Image, *queries.image_conditions(v.id, filters, name_part))
    ids = [h.id for h in head[:limit]]
    by_id = {im.id: im for im in images}
    items = [image_info(ds.accession, v.number, by_id[i]) for i in ids]
    nxt = None
    if len(head) > limit:
        last = head[limit - 1]
        nxt = encode_cursor({"f": fp, "n": last.name, "s": last.sv if by_key else None,
                             "t": total})  # fmt: skip
    return Page(items=items, next=nxt, total=total)


def _image(s: Session, ds: Dataset, v: Version, name: str) -> Image:
    im = None
    if NAME_RE.fullmatch(name):  # image names are checked at deposit; others cannot exist
        im = queries.image_named(s, v.id, name)
    if im is None:
        raise ImageNotFound(
            f"{_ref(ds, v)} has no image {name[:200]!r}",
            hint=f"GET datasets/{ds.accession}/versions/v{v.number}/images lists them",
        )
    return im


def _cache(ds: Dataset) -> str:
    return PUBLIC_CACHE if ds.access == "public" else PRIVATE_CACHE


@_get(
    "/datasets/{accession}/versions/{version}/images/{name}",
    response_model=ImageInfo,
    tags=["images"],
    responses={304: {"description": "not modified (If-None-Match)"}},
)
def get_image(
    accession: str,
    version: str,
    name: str,
    request: Request,
    response: Response,
    s: DbSession,
    p: CurrentPrincipal,
) -> Any:
    """One image: shape, pixel sizes (nm), channels, pyramid, key/value metadata, and
    where its Zarr and thumbnail are."""
    ds, v = version_row(s, p, accession, version)
    im = _image(s, ds, v, name)
    tag = etag(ds.accession, v.number, im.manifest_digest)
    if not_modified(request, tag):
        return Response(status_code=304, headers={"ETag": tag, "Cache-Control": _cache(ds)})
    response.headers["ETag"] = tag
    response.headers["Cache-Control"] = _cache(ds)
    return image_info(ds.accession, v.number, im)


# -- thumbnails -------------------------------------------------------------------------


def thumbnail_png(repo: Repository, ds: Dataset, im: Image, size: int) -> bytes:
    """The PNG thumbnail of ``im`` at ``size``, from the disk cache or rendered now."""
    from nanorepo.ome import OmeZarrImage, png_bytes, thumbnail

    cache_dir = repo.settings.home / "cache" / "thumbnails"
    path = cache_dir / f"{im.manifest_digest}-{size}-{RENDERING}.png"
    try:
        return path.read_bytes()
    except FileNotFoundError:
        pass
    with _RENDER_SLOTS:
        if path.exists():  # rendered by another request meanwhile
            return path.read_bytes()
        # Stored data is read through the confined open only: a link or special file
        # planted in the image is refused, never followed (docs/security.md).
        dataset_dir = repo.layout.dataset_dir(ds.accession, ds.access)
        image_dir = dataset_dir / check_relpath(im.path)
        opened = OmeZarrImage.open(image_dir, confined="strict", within=dataset_dir)
        png = png_bytes(thumbnail(opened, size))
        cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = cache_dir / f".{path.name}.{uuid.uuid4().hex}.tmp"
        tmp.write_bytes(png)
        os.replace(tmp, path)
    return png


@_get(
    "/datasets/{accession}/versions/{version}/images/{name}/thumbnail.png",
    tags=["images"],
    response_class=Response,
    responses={
        200: {"description": "a PNG whose longer side is `size`", "content": {"image/png": {}}},
        304: {"description": "not modified (If-None-Match)"},
    },
)
def get_thumbnail(
    accession: str,
    version: str,
    name: str,
    request: Request,
    s: DbSession,
    p: CurrentPrincipal,
    size: Annotated[int, Query(ge=32, le=1024, description="longer side in pixels")] = 256,
) -> Response:
    """A PNG of the image in its channel colours and stored contrast windows (maximum over z,
    first t), from the coarsest pyramid level of at least `size` and 128 px."""
    ds, v = version_row(s, p, accession, version)
    im = _image(s, ds, v, name)
    tag = etag("thumbnail", im.manifest_digest, size, RENDERING)
    headers = {"ETag": tag, "Cache-Control": _cache(ds)}
    if not_modified(request, tag):
        return Response(status_code=304, headers=headers)
    png = thumbnail_png(state_of(request).repo, ds, im, size)
    return Response(png, media_type="image/png", headers=headers)


# -- files ------------------------------------------------------------------------------


@_get(
    "/datasets/{accession}/versions/{version}/files",
    response_model=Page[FileInfo],
    tags=["files"],
)
def list_files(
    accession: str,
    version: str,
    s: DbSession,
    p: CurrentPrincipal,
    role: Annotated[
        str | None,
        Query(max_length=32, description="only files of this role (original, ome-xml, ...)"),
    ] = None,
    cursor: Cursor = None,
    limit: Limit = 100,
) -> Page[FileInfo]:
    """The files of a version other than images (originals, OME-XML, localisation tables),
    by name."""
    ds, v = version_row(s, p, accession, version)
    fp = _fingerprint(v.id, role)
    key = decode_cursor(cursor)
    if key is not None and (
        key.get("f") != fp or not isinstance(key.get("n"), str) or not isinstance(key.get("t"), int)
    ):
        raise InvalidInput(
            "the cursor belongs to another query (other role or version)",
            hint="pass `next` with the same parameters as the page it came from, or omit it",
        )
    conds: list[ColumnElement[bool]] = [col(File.version_id) == v.id]
    if role:
        _plain(role, "role")
        conds.append(col(File.role) == role)
    if key is None:
        total = queries.count_where(s, File, *conds)
    else:
        total = int(key.get("t", 0))
        conds.append(col(File.name) > key["n"])
    rows = queries.files_by_name(s, conds, limit + 1)
    items = [file_info(ds.accession, v.number, f) for f in rows[:limit]]
    nxt = None
    if len(rows) > limit:
        nxt = encode_cursor({"f": fp, "n": rows[limit - 1].name, "t": total})
    return Page(items=items, next=nxt, total=total)


@_get(
    "/datasets/{accession}/versions/{version}/files/{file:path}",
    tags=["files"],
    response_class=Response,
    responses={
        200: {"description": "the file, as an attachment", "content": {"*/*": {}}},
        206: {"description": "the requested byte range"},
        304: {"description": "not modified (If-None-Match names the file's SHA-256)"},
        416: {"description": "the range lies beyond the end of the file"},
    },
)
def download_file(
    accession: str, version: str, file: str, request: Request, s: DbSession, p: CurrentPrincipal
) -> Response:
    """Download a stored file (``Range`` supported, ETag = its SHA-256), always as an
    attachment."""
    ds, v = version_row(s, p, accession, version)
    f = None
    if len(file) <= 512 and not _CONTROL_RE.search(file):  # no stored name is otherwise
        f = queries.file_named(s, v.id, file)
    if f is None:
        raise ObjectNotFound(
            f"{_ref(ds, v)} has no file {file[:200]!r}",
            hint=f"GET datasets/{ds.accession}/versions/v{v.number}/files lists them",
        )
    dataset_dir = state_of(request).repo.layout.dataset_dir(ds.accession, ds.access)
    media = f.media_type if _MEDIA_RE.fullmatch(f.media_type) else "application/octet-stream"
    try:
        return serve_object(
            method=request.method,
            headers=request.headers,
            base=str(Path(dataset_dir).resolve()),
            parts=check_relpath(f.path).parts,
            tag=f'"{f.sha256}"',
            media_type=media,
            cache=_cache(ds),
            expected_size=f.size_bytes,
            extra={"Content-Disposition": content_disposition(f.name)},
        )
    except FileNotFoundError:
        raise ObjectNotFound(
            f"{_ref(ds, v)}: file {f.name!r} is missing from storage",
            hint="tell the operator: `nanorepo verify` finds and repairs missing files",
        ) from None
