"""Deposit routes: small datasets uploaded over HTTP, large ones ingested from staging areas.

``POST /deposits`` takes a ``multipart/form-data`` upload. The body is parsed as it arrives
(python-multipart's push parser, the one Starlette uses) and every file part is written
straight into a private directory of the repository's staging area, counting bytes: an
upload is never held in memory, never spooled through ``/tmp`` first (Starlette's form
parser would, then we would copy it again), and is cut off with 413 as soon as it passes
:data:`MAX_UPLOAD_BYTES`. The files are then deposited exactly as ``nanorepo deposit`` would,
with the caller as owner, and the upload directory is removed whatever happens.

``POST /deposits/staged`` deposits files already on the server, in the caller's own staging
area: ``<root>/<user>/`` for each root of ``NANOREPO_ALLOWED_ROOTS`` (the per-user staging
areas a user's server mounts read-write). Any other path is refused with the same 403
whether or not it exists, so the route cannot be used to probe the server's filesystem.

Both answer 201 with the new dataset's summary and its ``Location``; bad input is a 422 that
names what is wrong, and publishes nothing (deposition checks every input before it
converts anything, and writes only to staging until the atomic publication).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import time
import uuid
from datetime import date
from pathlib import Path
from typing import IO, Any

from fastapi import APIRouter, Request, Response
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from sqlmodel import Session
from starlette.requests import ClientDisconnect

from nanorepo.deposition import DepositResult
from nanorepo.errors import InvalidInput, NanorepoError, PathNotAllowed
from nanorepo.policy import Principal, require
from nanorepo.provenance import Runs
from nanorepo.repository import Repository
from nanorepo.schemas import DatasetSummary, StagedDepositIn
from nanorepo.schemas._wire import _problem
from nanorepo.service._app import CurrentPrincipal, DbSession, ServiceState, state_of
from nanorepo.service._datasets import find_dataset, summary
from nanorepo.service._problems import PayloadTooLarge
from nanorepo.storage import check_name, check_relpath

__all__ = ["MAX_UPLOAD_BYTES", "MAX_UPLOAD_FILES", "router"]

router = APIRouter()

#: Most bytes one upload may carry (all parts together). Larger datasets go through the
#: caller's staging area and ``POST /deposits/staged``.
MAX_UPLOAD_BYTES = 2 << 30
#: Most file parts one upload may carry (an OME-Zarr directory is one part per object).
MAX_UPLOAD_FILES = 20_000
#: Most bytes of a text field (title, embargo date, pattern).
MAX_FIELD_BYTES = 64 << 10
#: Upload directories left behind by a service killed mid-deposit are removed after this.
STALE_UPLOAD_S = 24 * 3600

_FILE_FIELDS = {"files", "supporting", "metadata"}
_TEXT_FIELDS = {"title", "embargo_until", "pattern", "metadata", "derived_from"}
_METADATA_SUFFIXES = {".json", ".yaml", ".yml"}


_DEPOSIT_RESPONSES: dict[int | str, dict[str, Any]] = {
    201: {
        "description": "deposited; `Location` is the new dataset",
        "headers": {"Location": {"schema": {"type": "string"}}},
    },
    404: _problem("the run named in `derived_from` does not exist or is not visible to you"),
    409: _problem("these files were deposited already, or the deposit is running"),
}

_BINARY = {"type": "string", "format": "binary"}
_UPLOAD_BODY = {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object",
    "required": ["title", "files"],
    "properties": {
        "files": {"type": "array", "items": _BINARY,
                  "description": "image files and tables; a file name may be a relative path "
                  "(`cell.ome.zarr/zarr.json`) to upload a directory"},
        "supporting": {"type": "array", "items": _BINARY},
        "metadata": {**_BINARY, "description": "deposit metadata, YAML or JSON (.json name)"},
        "title": {"type": "string", "minLength": 1, "maxLength": 500},
        "embargo_until": {"type": "string", "description": "YYYY-MM-DD"},
        "pattern": {"type": "string"},
        "derived_from": {"type": "string", "maxLength": 32,
                         "description": "id (or unique prefix) of the succeeded run whose "
                         "outputs these files are"},
    },
}}}}  # fmt: skip


def _too_large(what: str) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"{what} is larger than the {MAX_UPLOAD_BYTES >> 20} MiB an upload may carry; nothing "
        "was deposited",
        hint="copy large datasets to your staging area and deposit them with POST /deposits/staged",
    )


class _Upload:
    """Receives one multipart body into ``root``: files, supporting files, metadata, fields.

    python-multipart calls these methods synchronously as the bytes arrive; file data is
    written with plain blocking writes (a few tens of microseconds per 64 KiB chunk into the
    page cache: cheaper than a thread hop per chunk).
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.size = 0
        self.fields: dict[str, str] = {}
        self.files: list[Path] = []  # top-level entries of files/ (a directory counts once)
        self.supporting: list[Path] = []
        self.metadata: Path | None = None
        self.metadata_name = "metadata"
        self._names: set[str] = set()
        self._parts = 0
        self._header_name = b""
        self._header_value = b""
        self._disposition = b""
        self._field: str | None = None
        self._text: bytearray | None = None
        self._out: IO[bytes] | None = None

    # -- python-multipart callbacks --------------------------------------------------

    def on_part_begin(self) -> None:
        self._disposition = b""
        self._field = None
        self._text = None
        self._out = None

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def on_header_end(self) -> None:
        if self._header_name.lower() == b"content-disposition":
            self._disposition = self._header_value
        self._header_name = self._header_value = b""

    def on_headers_finished(self) -> None:
        _kind, options = parse_options_header(self._disposition)
        name = _decode(options.get(b"name", b""))
        filename = options.get(b"filename")
        self._parts += 1
        if self._parts > MAX_UPLOAD_FILES:
            raise InvalidInput(
                f"the upload has more than {MAX_UPLOAD_FILES} parts",
                hint="copy the files to your staging area and use POST /deposits/staged",
            )
        if filename is None:
            if name not in _TEXT_FIELDS:
                raise InvalidInput(
                    f"unknown form field {name!r}",
                    hint="fields: files, supporting, metadata, title, embargo_until, pattern",
                )
            self._field, self._text = name, bytearray()
            return
        if name not in _FILE_FIELDS:
            raise InvalidInput(
                f"unknown file field {name!r}",
                hint="files go in `files`, `supporting` or `metadata`",
            )
        self._field = name
        if not filename:  # a form's file input left empty
            return
        target = self._target(name, _decode(filename))
        try:
            self._out = target.open("xb")
        except OSError:  # "a" as a file and "a/b" as well
            raise InvalidInput(
                f"uploaded file {_decode(filename)[:200]!r} clashes with another one",
                hint="a name cannot be both a file and a directory",
            ) from None

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        n = end - start
        self.size += n
        if self.size > MAX_UPLOAD_BYTES:
            raise _too_large("the upload")
        if self._text is not None:
            if len(self._text) + n > MAX_FIELD_BYTES:
                raise InvalidInput(f"form field {self._field!r} is too long")
            self._text += data[start:end]
        elif self._out is not None:
            self._out.write(data[start:end])

    def on_part_end(self) -> None:
        if self._out is not None:
            self._out.close()
            self._out = None
        elif self._text is not None and self._field is not None:
            if self._field in self.fields or (self._field == "metadata" and self.metadata):
                raise InvalidInput(f"form field {self._field!r} is given twice")
            value = _decode(bytes(self._text))
            if self._field == "metadata":  # metadata sent as text rather than as a file
                self.metadata = self._target("metadata", "metadata.yaml")
                self.metadata.write_text(value, encoding="utf-8")
            else:
                self.fields[self._field] = value
            self._text = None

    def close(self) -> None:
        if self._out is not None:
            self._out.close()
            self._out = None

    # -- where each part goes ----------------------------------------------------------

    def _target(self, field: str, filename: str) -> Path:
        """A checked path for an uploaded file; directories come as relative paths."""
        if field == "metadata":
            if self.metadata is not None:
                raise InvalidInput("more than one metadata file", hint="send one `metadata` part")
            self.metadata_name = filename[:200]
            suffix = Path(filename).suffix.lower()
            self.metadata = (
                self.root
                / "metadata"
                / ("metadata" + (suffix if suffix in _METADATA_SUFFIXES else ".yaml"))
            )
            self.metadata.parent.mkdir(parents=True, exist_ok=True)
            return self.metadata
        try:
            parts = check_relpath(filename).parts
            for part in parts:
                check_name(part, "uploaded file name")
        except (InvalidInput, PathNotAllowed) as exc:
            raise InvalidInput(
                f"uploaded file name {filename[:200]!r} is not acceptable: {exc.message}",
                hint="name files with A-Z a-z 0-9 . _ - (a relative path for directories)",
            ) from None
        if field == "supporting" and len(parts) != 1:
            raise InvalidInput(f"supporting file {filename!r} must be a plain file name")
        key = f"{field}/{'/'.join(parts)}"
        if key in self._names:
            raise InvalidInput(f"{filename!r} is uploaded twice", hint="send each file once")
        self._names.add(key)
        path = self.root / field / Path(*parts)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError:
            raise InvalidInput(
                f"uploaded file {filename[:200]!r} clashes with another one",
                hint="a name cannot be both a file and a directory",
            ) from None
        top = self.root / field / parts[0]
        entries = self.files if field == "files" else self.supporting
        if top not in entries:
            entries.append(top)
        return path


def _as_uploaded(exc: NanorepoError, root: Path, up: _Upload) -> None:
    """Say the uploaded names in an error, not where the service keeps them."""
    subs = [(f"{root / d}/", "") for d in ("files", "supporting")]
    if up.metadata is not None:
        subs.insert(0, (str(up.metadata), up.metadata_name))
    for attr in ("message", "hint"):
        text = getattr(exc, attr)
        if text:
            for old, new in subs:
                text = text.replace(old, new)
            setattr(exc, attr, text)
    exc.args = (exc.message if not exc.hint else f"{exc.message}\n  hint: {exc.hint}",)


def _decode(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _acting_repository(state: ServiceState, p: Principal, **changes: Any) -> Repository:
    """The service's repository acting as ``p`` (who becomes the owner of the deposit).

    Deposition takes the acting user from the settings, so each call gets a settings copy
    and a Repository sharing the service's catalog engine (and its finished recovery).
    """
    return state.repo.acting_as(str(p), **changes)


def _derived_from(state: ServiceState, p: Principal, run: str | None) -> str | None:
    """The full id of the run a deposit says it derives from, if ``p`` may see that run
    (a run ``p`` may not see is "not found", exactly as a missing one); None if none."""
    if run is None or not run.strip():
        return None
    return Runs(state.repo.catalog, state.repo.layout, p).get(run.strip()).id


def _parse_embargo(value: str | None) -> date | None:
    if value is None or not value.strip():
        return None
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise InvalidInput(
            f"embargo_until {value[:40]!r} is not a date", hint="write YYYY-MM-DD"
        ) from None


def _created(
    s: Session, p: Principal, request: Request, response: Response, res: DepositResult
) -> DatasetSummary:
    s.expire_all()
    ds = find_dataset(s, p, res.accession)
    prefix = state_of(request).settings.service_prefix.rstrip("/")
    response.headers["Location"] = f"{prefix}/datasets/{ds.accession}"
    return summary(ds)


def _remove_stale_uploads(uploads: Path) -> None:
    if not uploads.is_dir():
        return
    cutoff = time.time() - STALE_UPLOAD_S
    for d in uploads.iterdir():
        try:
            if d.stat().st_mtime < cutoff:
                shutil.rmtree(d, ignore_errors=True)
        except OSError:
            continue


@router.post(
    "/deposits",
    response_model=DatasetSummary,
    status_code=201,
    tags=["deposits"],
    responses={**_DEPOSIT_RESPONSES, 413: _problem("the upload is too large")},
    openapi_extra={"requestBody": _UPLOAD_BODY},
)
async def upload_deposit(
    request: Request, response: Response, s: DbSession, p: CurrentPrincipal
) -> DatasetSummary:
    """Deposit a small dataset uploaded as ``multipart/form-data`` (depositors).

    Parts: ``files`` (repeatable; a relative path as file name uploads a directory such
    as an OME-Zarr or a folder of planes), ``supporting`` (repeatable), ``metadata`` (the
    YAML/JSON file ``nanorepo deposit --metadata`` takes), ``title``, ``embargo_until``
    (YYYY-MM-DD), ``pattern`` and ``derived_from`` (a run whose outputs the files are:
    checked by digest before anything is written). At most 2 GiB in all.
    """
    require(s, p, "deposit")
    s.rollback()  # hold no transaction while the upload streams in
    kind, options = parse_options_header(request.headers.get("content-type", ""))
    boundary = options.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise InvalidInput(
            "a deposit upload must be multipart/form-data",
            hint="send files as `files` parts and the title as a `title` field",
        )
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > MAX_UPLOAD_BYTES + (1 << 20):
        raise _too_large(f"the upload ({int(length) >> 20} MiB)")
    state = state_of(request)
    uploads = state.settings.staging / "uploads"
    await asyncio.to_thread(_remove_stale_uploads, uploads)
    root = uploads / uuid.uuid4().hex
    root.mkdir(parents=True)
    try:
        up = _Upload(root)
        callbacks: Any = {
            name: getattr(up, name)
            for name in ("on_part_begin", "on_part_data", "on_part_end", "on_header_field",
                         "on_header_value", "on_header_end", "on_headers_finished")
        }  # fmt: skip
        parser = MultipartParser(boundary, callbacks)
        try:
            async for chunk in request.stream():
                parser.write(chunk)
            parser.finalize()
        except ClientDisconnect:
            raise InvalidInput("the upload was interrupted; nothing was deposited") from None
        except FormParserError as exc:
            raise InvalidInput(
                f"the multipart body cannot be parsed: {exc}",
                hint="send a well-formed multipart/form-data body",
            ) from None
        finally:
            up.close()
        title = up.fields.get("title", "")
        if not up.files:
            raise InvalidInput("no files were uploaded", hint="send each file as a `files` part")
        if not title.strip():
            raise InvalidInput("a title is required", hint="send a `title` field")
        run_id = _derived_from(state, p, up.fields.get("derived_from"))
        repo = _acting_repository(state, p, allowed_roots=(root.resolve(),))
        try:
            res = await asyncio.to_thread(
                repo.deposit,
                up.files,
                title=title,
                metadata=up.metadata,
                embargo_until=_parse_embargo(up.fields.get("embargo_until")),
                supporting=up.supporting,
                pattern=up.fields.get("pattern") or None,
                derived_from=run_id,
            )
        except NanorepoError as exc:
            _as_uploaded(exc, root, up)
            raise
    finally:
        await asyncio.to_thread(shutil.rmtree, root, True)
    return _created(s, p, request, response, res)


def _staging_areas(state: ServiceState, p: Principal) -> tuple[Path, ...]:
    """The caller's staging areas: ``<root>/<user>`` under each allowed root."""
    roots = state.settings.allowed_roots
    if not roots:
        raise PathNotAllowed(
            "this service deposits no files from its own filesystem (no staging areas are "
            "configured)",
            hint="upload the files with POST /deposits, or ask the operator to set "
            "NANOREPO_ALLOWED_ROOTS",
        )
    areas = []
    for r in roots:
        area = (r / str(p)).resolve()
        if area.parent == r.resolve():  # a user name like ".." must not climb out
            areas.append(area)
    if not areas:
        raise PathNotAllowed(f"{p} has no staging area on this service")
    return tuple(areas)


def _in_area(raw: str, areas: tuple[Path, ...]) -> Path:
    """``raw`` resolved (symlinks followed) if it lies in one of ``areas``.

    The refusal is worded the same whether or not the path exists: nothing here tells a
    caller what lies outside their own area.
    """
    if "\x00" in raw or not raw.strip():
        raise InvalidInput(f"{raw[:300]!r} is not a path")
    candidate = Path(raw) if os.path.isabs(raw) else areas[0] / raw
    real = Path(os.path.realpath(candidate))
    if not any(real == a or a in real.parents for a in areas):
        raise PathNotAllowed(
            f"{raw[:300]!r} is not in your staging area",
            hint="copy the files under "
            + " or ".join(str(a) for a in areas)
            + " and name them relative to it",
        )
    return real


@router.post(
    "/deposits/staged",
    response_model=DatasetSummary,
    status_code=201,
    tags=["deposits"],
    responses=_DEPOSIT_RESPONSES,
)
def staged_deposit(
    body: StagedDepositIn, request: Request, response: Response, s: DbSession, p: CurrentPrincipal
) -> DatasetSummary:
    """Deposit a (large) dataset from files already in the caller's staging area."""
    require(s, p, "deposit")
    state = state_of(request)
    areas = _staging_areas(state, p)
    paths = [_in_area(x, areas) for x in body.paths]
    supporting = [_in_area(x, areas) for x in body.supporting]
    metadata = _in_area(body.metadata, areas) if body.metadata else None
    if metadata is not None and not metadata.is_file():
        raise InvalidInput(f"metadata file {body.metadata!r} does not exist in your staging area")
    until = _parse_embargo(body.embargo_until)
    run_id = _derived_from(state, p, body.derived_from)
    s.rollback()  # hold no transaction during the deposit
    # the deposit checks every input again, against the caller's areas only
    repo = _acting_repository(state, p, allowed_roots=areas)
    res = repo.deposit(
        paths, title=body.title, metadata=metadata, embargo_until=until,
        supporting=supporting, pattern=body.pattern, derived_from=run_id,
    )  # fmt: skip
    return _created(s, p, request, response, res)
