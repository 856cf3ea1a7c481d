"""The read-only Zarr endpoint, and the byte serving it shares with file downloads.

``GET|HEAD /zarr/{accession}/{version}/{image}/{path}`` serves the stored OME-Zarr of an
image object by object, so remote viewers (napari, neuroglancer, zarr-python, tensorstore,
ome-zarr-py) read it in place over HTTP with ``Range`` requests, including the suffix ranges
(``bytes=-N``) that sharded Zarr v3 uses to read a shard's index.

Security: the object key never reaches a path unchecked. A key must be ``/``-separated parts
of ``A-Z a-z 0-9 . _ -`` (no ``.``/``..`` part), and it must be **listed in the image's
manifest** (the SHA-256 of every object, written at publication): that is the allowlist.
The file is then opened component by component below the image directory with
``O_NOFOLLOW`` (``openat``), so a symlink planted inside a stored image is refused, never
followed. Percent-decoding happens once (in the ASGI server), so ``%2e%2e%2f``,
``%252e``, overlong UTF-8 and NUL all arrive as characters the allowlist refuses.

Speed: a viewer fetches hundreds of chunks per second, so a chunk GET must not pay for a
database session. Two in-process caches with a short time to live (:data:`ACCESS_TTL_S`)
hold *credentials → principal* and *(principal, dataset, version, image) → image directory,
visibility and manifest*; the manifest of an image is immutable, so its copy is kept by
digest. Consequences, by design: a revoked grant or token stops working on this endpoint
within :data:`ACCESS_TTL_S` seconds (every other route checks at once); a release or an
embargo moves the dataset's directory between the ``public/`` and ``embargoed/`` areas, which
the cache notices at the next request (the cached directory is gone) and looks up afresh.
The remaining per-request work (a few ``openat`` calls, ``fstat``, one ``pread``) runs in one
trip to a thread pool. ETags are the objects' SHA-256 from the manifest, so ``If-None-Match``
is answered without touching the disk, and a missing chunk (normal in Zarr) is a plain 404
without touching it either.

Why not Starlette's ``FileResponse``/``StaticFiles``: they do honour single, suffix and
multiple ranges (``tests/service/test_zarr.py`` checks it), but they follow symlinks, answer
416 in plain text outside the service's problem+json, and read in 64 kB pieces with a thread
hop each; :func:`serve_object` answers a chunk with one hop and streams large objects in
1 MiB blocks. ``benchmarks/bench_service_zarr.py`` measures the difference.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache, partial
from typing import Any, TypeVar
from urllib.parse import quote

from fastapi import APIRouter, Request
from sqlmodel import select
from starlette.convertors import Convertor, register_url_convertor
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from nanorepo.catalog.models import Image
from nanorepo.errors import (
    DatasetNotFound,
    ImageNotFound,
    IntegrityError,
    InvalidInput,
    NanorepoError,
)
from nanorepo.policy import Principal
from nanorepo.service._app import ServiceState, state_of
from nanorepo.service._datasets import version_row
from nanorepo.service._identity import resolve_principal
from nanorepo.storage import (
    ACCESSION_RE,
    Layout,
    Manifest,
    NotRegularFile,
    check_relpath,
    open_beneath,
    read_beneath,
    sha256_hex,
)
from nanorepo.storage._layout import NAME_RE

__all__ = [
    "ACCESS_TTL_S",
    "ObjectNotFound",
    "ObjectResponse",
    "open_beneath",
    "parse_range",
    "router",
    "serve_object",
    "split_key",
]

log = logging.getLogger("nanorepo.service")

router = APIRouter()

#: Seconds a cached principal or image lookup is trusted on the Zarr endpoint (see above).
ACCESS_TTL_S = 5.0
#: Cache policy of public objects (immutable once published; a re-embargo, rare and done by
#: a curator, reaches shared caches within this time) and of embargoed ones (never shared).
PUBLIC_CACHE = "public, max-age=3600"
PRIVATE_CACHE = "private, max-age=600"
#: Responses up to this size are read in one ``pread`` and sent in one message.
INLINE_BYTES = 4 << 20
#: Larger ones are streamed in blocks of this size.
BLOCK_BYTES = 1 << 20

_KEY_PART = re.compile(r"[A-Za-z0-9._-]{1,255}")
_MAX_KEY = 1024
_RANGE = re.compile(r"\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*", re.IGNORECASE)

# One pool for file I/O of this module, apart from the pool that runs sync routes, so a
# burst of chunk reads cannot starve catalog queries (and the other way round).
_io_pool: ThreadPoolExecutor | None = None
_io_lock = threading.Lock()

T = TypeVar("T")


def _pool() -> ThreadPoolExecutor:
    global _io_pool
    if _io_pool is None:
        with _io_lock:
            if _io_pool is None:
                _io_pool = ThreadPoolExecutor(max_workers=32, thread_name_prefix="nanorepo-io")
    return _io_pool


async def in_io_thread(fn: Callable[..., T], *args: Any) -> T:
    """Run blocking ``fn(*args)`` in the I/O pool."""
    return await asyncio.get_running_loop().run_in_executor(_pool(), fn, *args)


class ObjectNotFound(NanorepoError, LookupError):
    """No such object (a Zarr key or a file) in the image or version (404)."""


def split_key(key: str) -> tuple[str, ...] | None:
    """The parts of a Zarr key if it is well formed (allowlisted characters, no ``.``/``..``
    part, no empty part), else ``None``."""
    if not key or len(key) > _MAX_KEY:
        return None
    parts = tuple(key.split("/"))
    for p in parts:
        if p in {".", ".."} or not _KEY_PART.fullmatch(p):
            return None
    return parts


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The byte range ``[start, end)`` a ``Range`` header asks of a ``size``-byte object.

    ``None`` means "send the whole object": no header, a unit other than bytes, several
    ranges, or a malformed one, all of which RFC 9110 lets a server ignore. A well-formed
    single range that selects nothing (start beyond the end, a zero-length suffix) raises
    the 416 answer.
    """
    if not header:
        return None
    m = _RANGE.fullmatch(header)
    if m is None:
        return None
    first, last = m.group(1), m.group(2)
    if first:
        start = int(first)
        end = size if not last else int(last) + 1
        if last and end <= start:
            return None  # "5-3" is malformed: ignored
        if start >= size:
            raise _unsatisfiable(size)
        return start, min(end, size)
    if not last:
        return None  # "bytes=-"
    n = int(last)
    if n == 0 or size == 0:
        raise _unsatisfiable(size)
    return max(0, size - n), size


def _unsatisfiable(size: int) -> HTTPException:
    return HTTPException(
        416,
        f"the range asks for bytes beyond the end of the object ({size} bytes)",
        headers={"Content-Range": f"bytes */{size}"},
    )


class ObjectResponse(Response):
    """Stored bytes: sent at once (small) or streamed from an open descriptor (large).

    Owns the descriptor: it is closed when the body has been sent, when the client goes
    away, or on error.
    """

    def __init__(
        self,
        status: int,
        headers: list[tuple[bytes, bytes]],
        body: bytes = b"",
        *,
        fd: int | None = None,
        start: int = 0,
        end: int = 0,
    ) -> None:
        self.status_code = status
        self.body = body
        self.background = None
        self.raw_headers = headers
        self._fd, self._start, self._end = fd, start, end

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code,
                    "headers": self.raw_headers})  # fmt: skip
        if self._fd is None:
            await send({"type": "http.response.body", "body": self.body})
            return
        fd, pos, end = self._fd, self._start, self._end
        self._fd = None
        gone = asyncio.Event()

        async def watch() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            gone.set()

        watcher = asyncio.ensure_future(watch())
        try:
            while pos < end and not gone.is_set():
                chunk = await in_io_thread(os.pread, fd, min(BLOCK_BYTES, end - pos), pos)
                if not chunk:
                    raise IntegrityError(f"a stored object shrank while it was being sent ({fd})")
                pos += len(chunk)
                await send({"type": "http.response.body", "body": chunk, "more_body": pos < end})
        finally:
            watcher.cancel()
            os.close(fd)

    def __del__(self) -> None:  # never sent (e.g. the request failed after the open)
        if getattr(self, "_fd", None) is not None:
            os.close(self._fd)  # type: ignore[arg-type]


def _tags(header: str) -> list[str]:
    return [t.strip().removeprefix("W/") for t in header.split(",") if t.strip()]


def serve_object(
    *,
    method: str,
    headers: Headers,
    base: str,
    parts: Sequence[str],
    tag: str,
    media_type: str,
    cache: str,
    expected_size: int | None = None,
    extra: Mapping[str, str] | None = None,
) -> Response:
    """Answer a GET or HEAD for one stored object (blocking: call it from a thread).

    Handles ``If-None-Match`` (304, no disk access), a single ``Range`` (206, 416) with
    ``If-Range``, and HEAD. ``base`` is a directory the caller already resolved and
    checked; ``parts`` are checked components below it, opened through the one confined
    open of stored data (:func:`nanorepo.storage.open_beneath`).
    ``expected_size`` (from the manifest or the catalog) guards against serving an object
    that no longer matches the digest its ETag claims.

    Raises
    ------
    FileNotFoundError
        ``base`` or the object does not exist.
    ObjectNotFound
        The object is not a regular file reached without symlinks.
    """
    common = [(b"etag", tag.encode()), (b"cache-control", cache.encode())]
    inm = headers.get("if-none-match")
    if inm is not None and (inm.strip() == "*" or tag in _tags(inm)):
        return ObjectResponse(304, common)
    where = "/".join(parts)
    try:
        fd, st = open_beneath(base, parts)
    except FileNotFoundError:
        raise
    except OSError:
        log.warning("refused to serve %s below %s (a symlink or not a file)", where, base)
        raise ObjectNotFound(f"no object {where!r} here") from None
    handed_over = False
    try:
        size = st.st_size
        if expected_size is not None and size != expected_size:
            log.error("%s/%s is %d bytes, its manifest says %d", base, where, size, expected_size)
            raise IntegrityError(
                f"stored object {where!r} does not match its manifest",
                hint="tell the operator: `nanorepo verify` finds damaged objects",
            )
        if_range = headers.get("if-range")
        rng = None
        if if_range is None or if_range.strip() == tag:
            rng = parse_range(headers.get("range"), size)
        start, end = rng if rng is not None else (0, size)
        out = [
            *common,
            (b"content-type", media_type.encode()),
            (b"content-length", str(end - start).encode()),
            (b"accept-ranges", b"bytes"),
        ]
        if rng is not None:
            out.append((b"content-range", f"bytes {start}-{end - 1}/{size}".encode()))
        if extra:
            out += [(k.lower().encode(), v.encode("latin-1")) for k, v in extra.items()]
        status = 206 if rng is not None else 200
        if method == "HEAD":
            return ObjectResponse(status, out)
        if end - start <= INLINE_BYTES:
            body = os.pread(fd, end - start, start) if end > start else b""
            if len(body) != end - start:
                raise IntegrityError(f"stored object {where!r} shrank while it was read")
            return ObjectResponse(status, out, body)
        handed_over = True
        return ObjectResponse(status, out, fd=fd, start=start, end=end)
    finally:
        if not handed_over:
            os.close(fd)


def content_disposition(filename: str) -> str:
    """``attachment`` with the file's name (RFC 6266 / 5987), never ``inline``: deposited
    bytes must not render in the service's origin."""
    base = filename.rsplit("/", 1)[-1] or "download"
    ascii_name = "".join(c if c.isascii() and c.isprintable() and c not in '"\\' else "_"
                         for c in base)  # fmt: skip
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(base, safe='')}"


# -- the in-process access cache ---------------------------------------------------------


class _TTLCache:
    """A small time-limited mapping (used from the event loop thread only)."""

    def __init__(self, ttl: float, maxsize: int) -> None:
        self.ttl, self.maxsize = ttl, maxsize
        self._data: dict[Any, tuple[float, Any]] = {}

    def get(self, key: Any) -> Any:
        hit = self._data.get(key)
        if hit is None:
            return None
        if hit[0] < time.monotonic():
            self._data.pop(key, None)
            return None
        return hit[1]

    def put(self, key: Any, value: Any) -> None:
        if len(self._data) >= self.maxsize:
            now = time.monotonic()
            self._data = {k: v for k, v in self._data.items() if v[0] >= now}
            if len(self._data) >= self.maxsize:
                self._data.clear()
        self._data[key] = (time.monotonic() + self.ttl, value)


@dataclass(frozen=True)
class _Served:
    """What a chunk request needs to know about an image, once access is established.

    ``root`` is the storage root and ``prefix`` the components from it down to the image
    (area, accession, ``images``, version, image): every object is opened from the root
    through the confined open, so a link planted anywhere below the root, also after this
    was cached, is never followed."""

    root: str
    prefix: tuple[str, ...]
    public: bool
    objects: Mapping[str, tuple[str, int]]  # key -> (sha256, size)

    @property
    def image_dir(self) -> str:
        """Where the image is (for log messages and the missing-object check)."""
        return os.path.join(self.root, *self.prefix)


@lru_cache(maxsize=64)
def _manifest_objects(
    root: str, parts: tuple[str, ...], digest: str
) -> Mapping[str, tuple[str, int]]:
    """An image manifest's objects, key -> (sha256, size), read from the storage root
    through the confined open and checked against the catalog's digest."""
    try:
        data = read_beneath(root, parts, limit=_MAX_MANIFEST)
    except NotRegularFile as exc:
        raise IntegrityError(
            f"{parts[-1]}: {exc}; refused, not read",
            hint="storage was altered: `nanorepo verify` names every such object",
        ) from None
    if sha256_hex(data) != digest:
        raise IntegrityError(
            f"{parts[-1]}: the manifest differs from the catalog's digest",
            hint="the manifest was altered; run `nanorepo verify` and restore it",
        )
    m = Manifest.from_json(json.loads(data))
    return {k: (d.sha256, d.size) for k, d in m.objects.items()}


#: Largest image manifest read (a manifest lists each object in one short line).
_MAX_MANIFEST = 256 << 20


class ZarrAccess:
    """The per-service caches of the Zarr endpoint (kept on the app state)."""

    def __init__(self, ttl: float = ACCESS_TTL_S) -> None:
        self.principals = _TTLCache(ttl, 10_000)
        self.images = _TTLCache(ttl, 10_000)


def _access(request: Request) -> ZarrAccess:
    app_state = request.app.state
    acc: ZarrAccess | None = getattr(app_state, "nanorepo_zarr", None)
    if acc is None:
        acc = app_state.nanorepo_zarr = ZarrAccess()
    return acc


def _credentials(request: Request, st: ServiceState) -> tuple[str | None, str | None]:
    """What identifies the caller: the Authorization header, and the hub's cookie if any."""
    cookie = request.headers.get("cookie") if st.hub is not None else None
    return request.headers.get("authorization"), cookie


def _lookup(
    st: ServiceState,
    request: Request,
    principal: Principal | None,
    accession: str,
    number: int,
    image: str,
) -> tuple[Principal, _Served | NanorepoError]:
    """Who is asking and, if they may see it, where the image is (one catalog session).

    Raises only when the credentials are refused; any other answer (the image, or the 404
    the caller gets) is returned so that it can be cached for this principal.
    """
    repo = st.repo
    with repo.catalog.session() as s:
        if principal is None:
            principal = resolve_principal(
                request, s, hub=st.hub, allow_anonymous=st.settings.allow_anonymous
            )
        try:
            ds, v = version_row(s, principal, accession, str(number))
            im = s.exec(select(Image).where(Image.version_id == v.id, Image.name == image)).first()
            if im is None:
                raise ImageNotFound(
                    f"{ds.accession}@v{v.number} has no image {image!r}",
                    hint=f"GET datasets/{ds.accession}/versions/v{v.number}/images lists them",
                )
            root = repo.layout.root
            top = repo.layout.dataset_dir(ds.accession, ds.access).relative_to(root).parts
            prefix = (*top, *check_relpath(im.path).parts)
            manifest = (*top, *check_relpath(Layout.image_manifest_relpath(im.path)).parts)
            digest, public = im.manifest_digest, ds.access == "public"
        except NanorepoError as exc:
            return principal, exc
    objects = _manifest_objects(str(root), manifest, digest)
    return principal, _Served(str(root), prefix, public, objects)


async def _served(
    request: Request, accession: str, number: int, image: str, *, fresh: bool = False
) -> _Served:
    """The image for this caller, from the cache when it is recent enough."""
    st, access = state_of(request), _access(request)
    creds = _credentials(request, st)
    principal = access.principals.get(creds)
    if isinstance(principal, NanorepoError):
        raise principal.with_traceback(None)
    key = (principal, accession, number, image)
    found: _Served | NanorepoError | None = None
    if principal is not None and not fresh:
        found = access.images.get(key)
    if found is None:
        try:
            principal, found = await in_io_thread(
                _lookup, st, request, principal, accession, number, image
            )
        except PermissionError as exc:  # refused credentials (401): remember them too
            if isinstance(exc, NanorepoError):
                access.principals.put(creds, exc)
            raise
        access.principals.put(creds, principal)
        key = (principal, accession, number, image)
        access.images.put(key, found)
    if isinstance(found, _Served):
        return found
    assert found is not None
    raise found.with_traceback(None)


def _zarr_version(version: str) -> int:
    digits = version[1:] if version[:1] in {"v", "V"} else version
    if not digits.isdigit() or not 0 < int(digits) < 10**9:
        raise InvalidInput(
            f"{version!r} is not a version of the Zarr endpoint",
            hint="write v1 or 1: Zarr URLs name a fixed version, so what they serve never "
            "changes (`latest` is for the dataset routes)",
        )
    return int(digits)


def _media_type(key: str) -> str:
    return "application/json" if key.endswith("zarr.json") else "application/octet-stream"


_ZARR_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "the object's bytes (`zarr.json` as JSON, chunks and shards as bytes)",
        "content": {"application/octet-stream": {}, "application/json": {}},
    },
    206: {"description": "the requested byte range (`Range: bytes=a-b` or `bytes=-N`)"},
    304: {"description": "not modified (If-None-Match names the object's SHA-256 ETag)"},
    416: {"description": "the range lies beyond the end of the object"},
}


async def zarr_object(
    request: Request, accession: str, version: str, image: str, path: str
) -> Response:
    """One object of a stored OME-Zarr image, read-only, with Range, ETag and CORS.

    ``version`` is ``v1`` or ``1``; ``path`` is a key inside the image (``zarr.json``,
    ``0/zarr.json``, ``0/c/0/0/0``). An embargoed dataset the caller may not see answers
    exactly like one that does not exist; a key that is not in the image (a missing chunk
    is normal in Zarr) is a plain 404.
    """
    parts = split_key(path)
    if parts is None:
        raise ObjectNotFound(
            f"{path[:200]!r} is not a key of an OME-Zarr image",
            hint="keys are '/'-separated parts of A-Z a-z 0-9 . _ - (no '.' or '..'), "
            "e.g. zarr.json or 0/c/0/0/0",
        )
    number = _zarr_version(version)
    if not ACCESSION_RE.fullmatch(accession):
        raise DatasetNotFound(accession)
    if not NAME_RE.fullmatch(image):
        raise ImageNotFound(f"no image {image!r}", hint="image names are A-Z a-z 0-9 . _ -")
    fresh = False
    while True:
        served = await _served(request, accession, number, image, fresh=fresh)
        entry = served.objects.get(path)
        if entry is None:
            raise ObjectNotFound(
                f"{accession}@v{number} image {image!r} has no object {path!r}",
                hint="a missing chunk is normal in Zarr: it reads as the fill value",
            )
        try:
            return await in_io_thread(
                partial(
                    serve_object,
                    method=request.method,
                    headers=request.headers,
                    base=served.root,
                    parts=(*served.prefix, *parts),
                    tag=f'"{entry[0]}"',
                    media_type=_media_type(path),
                    cache=PUBLIC_CACHE if served.public else PRIVATE_CACHE,
                    expected_size=entry[1],
                )
            )
        except FileNotFoundError:
            # Either the dataset moved between the public and embargoed areas (release,
            # embargo) since it was cached — look it up afresh, once — or an object its
            # manifest lists is missing from storage.
            if fresh or os.path.isdir(served.image_dir):
                log.error("%s/%s is in the manifest but not in storage", served.image_dir, path)
                raise ObjectNotFound(
                    f"{accession}@v{number} image {image!r} has no object {path!r}",
                    hint="the object is missing from storage; the operator has been told",
                ) from None
            fresh = True


_ZARR_PATH = "/zarr/{accession}/{version}/{image}/{path:path}"
router.add_api_route(
    _ZARR_PATH,
    zarr_object,
    methods=["GET"],
    tags=["zarr"],
    response_class=Response,
    responses=_ZARR_RESPONSES,
    summary="Read one object of a stored OME-Zarr image",
)
router.add_api_route(_ZARR_PATH, zarr_object, methods=["HEAD"], include_in_schema=False)


class _AnyPath(Convertor[str]):
    """Like Starlette's ``path`` convertor, but also across line breaks (``%0a``), so that
    no URL under ``/zarr/`` falls through to the framework's trailing-slash redirect."""

    regex = "(?s:.*)"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("nanorepo_any", _AnyPath())


async def zarr_incomplete(rest: str) -> Response:
    """Anything else under ``/zarr/``: a 404 that says what a Zarr URL looks like."""
    raise ObjectNotFound(
        f"zarr/{rest[:200]!r} names no object of an image",
        hint="Zarr URLs are zarr/ACCESSION/vN/IMAGE/KEY, e.g. zarr/S-NANO1/v1/cell0/zarr.json",
    )


router.add_api_route(
    "/zarr/{rest:nanorepo_any}",
    zarr_incomplete,
    methods=["GET", "HEAD"],
    include_in_schema=False,
)
