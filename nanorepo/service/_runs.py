"""Run routes: record notebook runs (``POST /runs`` and its steps), read records, outputs,
stored notebooks and batches.

Runs execute in the caller's environment, next to the data (a user server, a laptop); the
service records them, so the repository stays the only writer of its storage. Recording
is three steps, each safe to retry: ``POST /runs`` registers the run as running (with the
notebook's bytes and the environment), ``PUT /runs/{id}/outputs/{name}`` uploads each
output into the run's staging area, ``POST /runs/{id}/finish`` checks every digest and
publishes the outputs and the final record together (or changes nothing).

A run is visible to whoever may see every dataset it read (:class:`~nanorepo.provenance.
Runs`): a run over an embargoed dataset answers 404 to everyone else, like the dataset.
A running run reports each input as its journal records it (``POST /runs/{id}/inputs``,
before the notebook gets the data); until it has reported one (and for good if it was
interrupted before), only its owner and curators see it; a ``running`` or ``interrupted``
run is judged on the inputs it reported.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from nanorepo.errors import AuthenticationRequired, InvalidInput, RunNotFound
from nanorepo.policy import Principal
from nanorepo.provenance import (
    BatchRecord,
    Environment,
    Input,
    Lineage,
    NotebookRef,
    Output,
    RunError,
    RunRecord,
    Runs,
)
from nanorepo.service._app import CurrentPrincipal, public_namespace, state_of
from nanorepo.service._http import decode_cursor, encode_cursor, etag, not_modified, set_etag
from nanorepo.service._problems import PayloadTooLarge
from nanorepo.service._schemas import COMMON_RESPONSES, In, Page, _problem
from nanorepo.service._zarr import content_disposition, serve_object
from nanorepo.storage import check_relpath, check_run_id, parse_ref

__all__ = ["router"]

router = APIRouter(tags=["runs"], responses=COMMON_RESPONSES)

MAX_NOTEBOOK = 32 * 1024 * 1024
MAX_OUTPUT = 64 * 1024**3
_SHA = r"^[0-9a-f]{64}$"
_ID = r"^[0-9a-f]{32}$"
_NAME_RE = re.compile(r"[^\x00-\x1f\x7f\\]{1,512}")


# -- schemas ---------------------------------------------------------------------------


class NotebookIn(In):
    name: str = Field(min_length=1, max_length=255, pattern=r"^[^/\\\x00-\x1f]+\.ipynb$")
    sha256: str = Field(pattern=_SHA)
    size: int = Field(ge=0, le=MAX_NOTEBOOK)


class EnvironmentIO(In):
    sha256: str = Field(pattern=_SHA)
    python: str = Field(max_length=64)
    implementation: str = Field(max_length=64)
    platform: str = Field(max_length=255)
    kernel: dict[str, str]
    packages: dict[str, str] = Field(description="distribution name → version")
    packages_sha256: str = Field(pattern=_SHA)
    image: str | None = Field(None, max_length=512)
    host: str = Field("", max_length=255)


class RunBeginIn(In):
    """A run starting: registered as ``running``; the agent is the caller."""

    id: str = Field(pattern=_ID, description="chosen by the runner (a random UUID, hex)")
    notebook: NotebookIn
    notebook_text: str = Field(max_length=MAX_NOTEBOOK, description="the notebook's bytes (UTF-8)")
    parameters: dict[str, Any] = Field(default_factory=dict)
    started: datetime
    environment: EnvironmentIO | None = None
    batch: str | None = Field(None, pattern=_ID)
    item: str | None = Field(None, max_length=512)
    rerun_of: str | None = Field(None, pattern=_ID)


class InputIO(In):
    kind: Literal["dataset", "image", "file"]
    accession: str = Field(max_length=32)
    version: int = Field(ge=1, le=2**31 - 1)
    sha256: str = Field(pattern=_SHA)
    name: str = Field("", max_length=512)
    ref: str | None = Field(None, max_length=600, description="ignored on input")


class OutputIO(In):
    name: str = Field(min_length=1, max_length=512)
    sha256: str = Field(pattern=_SHA)
    size: int = Field(ge=0, le=MAX_OUTPUT)
    media_type: str = Field("application/octet-stream", max_length=128)
    role: Literal["output", "executed-notebook"] = "output"


class ErrorIO(In):
    ename: str = Field(max_length=255)
    evalue: str = Field(max_length=100_000)
    traceback: list[str] = Field([], max_length=1000)
    cell: int | None = Field(None, ge=0)


class RunInputsIn(In):
    """Inputs a running run has read, as its journal records them."""

    inputs: list[InputIO] = Field(min_length=1, max_length=1000)


class RunFinishIn(In):
    """How a run ended, what it read and wrote, the values it recorded."""

    status: Literal["succeeded", "failed", "interrupted"]
    ended: datetime
    inputs: list[InputIO] = Field([], max_length=100_000)
    outputs: list[OutputIO] = Field([], max_length=100_000)
    values: dict[str, Any] = Field(default_factory=dict)
    error: ErrorIO | None = None


class RunOut(BaseModel):
    """A run's provenance record (see ``docs/provenance.md``)."""

    id: str
    agent: str
    status: Literal["running", "succeeded", "failed", "interrupted"]
    started: str
    ended: str | None
    notebook: dict[str, Any]
    parameters: dict[str, Any]
    inputs: list[dict[str, Any]]
    outputs: list[dict[str, Any]]
    values: dict[str, Any]
    environment: dict[str, Any] | None
    error: dict[str, Any] | None
    batch: str | None
    item: str | None
    rerun_of: str | None
    derived: list[str]


class UploadedOut(BaseModel):
    name: str
    sha256: str
    size: int


class BatchIn(In):
    id: str = Field(pattern=_ID)
    key: str = Field(pattern=_SHA)
    notebook: NotebookIn
    query: str = Field(max_length=2000)
    per: Literal["dataset", "image"]
    parameters: dict[str, Any] = Field(default_factory=dict)
    created: datetime


class BatchFinishIn(In):
    status: Literal["succeeded", "failed", "interrupted"]


class BatchOut(BaseModel):
    id: str
    key: str
    agent: str
    notebook: dict[str, Any]
    query: str
    per: Literal["dataset", "image"]
    parameters: dict[str, Any]
    created: str
    status: str
    runs: list[dict[str, str]]


# -- helpers ---------------------------------------------------------------------------


def _runs(request: Request, p: Principal) -> Runs:
    return Runs(state_of(request).repo.catalog, state_of(request).repo.layout, p)


def _signed_in(p: Principal, what: str) -> str:
    if not p.authenticated or p.name is None:
        raise AuthenticationRequired(
            f"signing in is required to {what}",
            hint="send a token: `Authorization: token <token>`",
        )
    return p.name


def _utc(d: datetime) -> datetime:
    return d if d.tzinfo is not None else d.replace(tzinfo=UTC)


def _out(rec: RunRecord) -> dict[str, Any]:
    return rec.to_json()


def _staging(request: Request, run_id: str) -> Path:
    return state_of(request).repo.layout.incoming / f"run-upload-{check_run_id(run_id)}"


def _output_name(name: str) -> str:
    if not _NAME_RE.fullmatch(name):
        raise InvalidInput(f"{name[:100]!r} is not an output name")
    check_relpath(name)
    return name


# -- routes ----------------------------------------------------------------------------


@router.post("/runs", status_code=201, response_model=RunOut)
def begin_run(body: RunBeginIn, request: Request, p: CurrentPrincipal) -> dict[str, Any]:
    """Register a run that starts now, as the caller; the same ``id`` again returns it."""
    agent = _signed_in(p, "record runs")
    nb = body.notebook_text.encode("utf-8")
    env = Environment(**body.environment.model_dump()) if body.environment else None
    rec = RunRecord(
        id=body.id, agent=agent, status="running", started=_utc(body.started),
        notebook=NotebookRef(**body.notebook.model_dump()), parameters=body.parameters,
        environment=env, batch=body.batch, item=body.item, rerun_of=body.rerun_of,
    )  # fmt: skip
    return _out(_runs(request, p).begin(rec, nb))


@router.put(
    "/runs/{run_id}/outputs/{name:path}",
    response_model=UploadedOut,
    responses={413: _problem("the output is too large")},
)
async def upload_output(
    run_id: str, name: str, request: Request, p: CurrentPrincipal
) -> dict[str, Any]:
    """Upload one output of a running run of the caller (the body is the file)."""
    agent = _signed_in(p, "record runs")
    check_run_id(run_id)
    name = _output_name(name)
    runs = _runs(request, p)
    rec = await run_in_threadpool(runs.get, run_id)
    if rec.agent != agent or rec.status != "running":
        raise RunNotFound(run_id)
    dst = _staging(request, run_id) / name
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.part")
    h = hashlib.sha256()
    size = 0
    with open(tmp, "wb") as f:
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_OUTPUT:
                f.close()
                tmp.unlink(missing_ok=True)
                raise PayloadTooLarge(f"output {name!r} is larger than {MAX_OUTPUT} bytes")
            h.update(chunk)
            f.write(chunk)
    os.replace(tmp, dst)
    return {"name": name, "sha256": h.hexdigest(), "size": size}


@router.post("/runs/{run_id}/finish", response_model=RunOut, responses={409: _problem("ended")})
def finish_run(
    run_id: str, body: RunFinishIn, request: Request, p: CurrentPrincipal
) -> dict[str, Any]:
    """End a run of the caller: publish its uploaded outputs and its final record."""
    _signed_in(p, "record runs")
    check_run_id(run_id)
    runs = _runs(request, p)
    base = runs.get(run_id)
    staging = _staging(request, run_id)
    outputs = tuple(Output(**o.model_dump()) for o in body.outputs)
    files = {o.name: staging / check_relpath(_output_name(o.name)) for o in outputs}
    missing = [n for n, f in files.items() if not f.is_file()]
    if missing and base.status == "running":
        raise InvalidInput(
            f"run {run_id}: outputs not uploaded: {', '.join(sorted(missing)[:20])}",
            hint=f"PUT /runs/{run_id}/outputs/NAME each output first",
        )
    rec = base.with_(
        status=body.status,
        ended=_utc(body.ended),
        inputs=tuple(Input(**i.model_dump(exclude={"ref"})) for i in body.inputs),
        outputs=outputs,
        values=body.values,
        error=RunError(**{**body.error.model_dump(), "traceback": tuple(body.error.traceback)})
        if body.error
        else None,
    )
    out = runs.finish(rec, files)
    shutil.rmtree(staging, ignore_errors=True)
    return _out(out)


@router.post("/runs/{run_id}/inputs", response_model=RunOut, responses={409: _problem("ended")})
def note_run_inputs(
    run_id: str, body: RunInputsIn, request: Request, p: CurrentPrincipal
) -> dict[str, Any]:
    """Record inputs a running run of the caller reads (each dataset version, image and
    file, with its digest), before the notebook gets the data: the run is then visible
    only to those who may see every dataset it reported. Reporting one again is a no-op."""
    _signed_in(p, "record runs")
    check_run_id(run_id)
    inputs = [Input(**i.model_dump(exclude={"ref"})) for i in body.inputs]
    return _out(_runs(request, p).note_inputs(run_id, inputs))


@router.post("/runs/{run_id}/interrupt", response_model=RunOut)
def interrupt_run(run_id: str, request: Request, p: CurrentPrincipal) -> dict[str, Any]:
    """Mark a running run of the caller interrupted (its process died)."""
    agent = _signed_in(p, "record runs")
    check_run_id(run_id)
    runs = _runs(request, p)
    rec = runs.get(run_id)
    if rec.agent != agent and not p.privileged:
        raise RunNotFound(run_id)
    shutil.rmtree(_staging(request, run_id), ignore_errors=True)
    return _out(runs.interrupt(run_id) or runs.get(run_id))


@router.get("/runs", response_model=Page[RunOut])
def list_runs(
    request: Request,
    p: CurrentPrincipal,
    dataset: Annotated[str | None, Query(max_length=64, description="ACCESSION[@vN] read")] = None,
    status: Literal["running", "succeeded", "failed", "interrupted"] | None = None,
    agent: Annotated[str | None, Query(max_length=255)] = None,
    batch: Annotated[str | None, Query(pattern=_ID)] = None,
    output_sha256: Annotated[
        str | None, Query(pattern=_SHA, description="runs that wrote it")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> dict[str, Any]:
    """Runs the caller may see, newest first."""
    key = decode_cursor(cursor)
    before = None
    if key is not None:
        try:
            before = (datetime.fromisoformat(str(key["started"])), str(key["id"]))
        except (KeyError, ValueError):
            raise InvalidInput("cursor is not one this service gave") from None
    recs = _runs(request, p).find(
        dataset=dataset, status=status, agent=agent, batch=batch,
        output_sha256=output_sha256, limit=limit + 1, before=before,
    )  # fmt: skip
    nxt = None
    if len(recs) > limit:
        recs = recs[:limit]
        nxt = encode_cursor({"started": recs[-1].started.isoformat(), "id": recs[-1].id})
    return {"items": [_out(r) for r in recs], "next": nxt, "total": None}


@router.get("/runs/{run_id}", response_model=RunOut)
def get_run(run_id: str, request: Request, response: Response, p: CurrentPrincipal) -> Any:
    """A run's record (a unique id prefix of at least 8 digits works)."""
    rec = _runs(request, p).get(run_id)
    tag = etag("run", rec.id, rec.status, rec.ended)
    if not_modified(request, tag):
        return Response(status_code=304, headers={"ETag": tag})
    set_etag(response, tag)
    return _out(rec)


@router.get(
    "/runs/{run_id}/notebook",
    response_class=Response,
    responses={200: {"content": {"application/x-ipynb+json": {}}, "description": "notebook"}},
)
def run_notebook(run_id: str, request: Request, p: CurrentPrincipal) -> Response:
    """The notebook a run executed, exactly as it was (its SHA-256 is the record's)."""
    runs = _runs(request, p)
    rec = runs.get(run_id)
    data = runs.notebook(rec.id)
    return Response(
        data,
        media_type="application/x-ipynb+json",
        headers={
            "ETag": f'"{rec.notebook.sha256}"',
            "Content-Disposition": f'attachment; filename="{rec.id[:12]}-notebook.ipynb"',
        },
    )


@router.get(
    "/runs/{run_id}/outputs/{name:path}",
    response_class=Response,
    responses={
        200: {"description": "the output file", "content": {"*/*": {}}},
        206: {"description": "the requested byte range"},
        416: {"description": "the range lies beyond the end of the file"},
    },
)
def download_output(run_id: str, name: str, request: Request, p: CurrentPrincipal) -> Response:
    """Download an output of a run (``Range`` supported; ETag = its SHA-256)."""
    if not _NAME_RE.fullmatch(name):
        raise RunNotFound(f"{run_id}/{name[:100]}", "run output")
    try:
        check_relpath(name)
    except Exception:
        raise RunNotFound(f"{run_id}/{name[:100]}", "run output") from None
    row, path = _runs(request, p).output_path(run_id, name)
    return serve_object(
        method=request.method,
        headers=request.headers,
        base=str(path.parent.resolve()),
        parts=(path.name,),
        tag=f'"{row.sha256}"',
        media_type="application/octet-stream",
        cache="private, no-cache",
        expected_size=row.size,
        extra={"Content-Disposition": content_disposition(Path(row.name).name)},
    )


@router.post(
    "/batches",
    response_model=BatchOut,
    status_code=201,
    responses={409: _problem("the id belongs to another batch")},
)
def begin_batch(body: BatchIn, request: Request, p: CurrentPrincipal) -> dict[str, Any]:
    """Create a batch, or return the caller's batch with the same ``key`` (to resume it)."""
    agent = _signed_in(p, "run batches")
    rec = BatchRecord(
        id=body.id, key=body.key, agent=agent, notebook=NotebookRef(**body.notebook.model_dump()),
        query=body.query, per=body.per, parameters=body.parameters, created=_utc(body.created),
    )  # fmt: skip
    return _runs(request, p).begin_batch(rec).to_json()


@router.get("/batches/{batch_id}", response_model=BatchOut)
def get_batch(batch_id: str, request: Request, p: CurrentPrincipal) -> dict[str, Any]:
    """A batch and the status of each of its runs."""
    return _runs(request, p).get_batch(batch_id).to_json()


@router.post("/batches/{batch_id}/finish", response_model=BatchOut)
def finish_batch(
    batch_id: str, body: BatchFinishIn, request: Request, p: CurrentPrincipal
) -> dict[str, Any]:
    """Set a batch's final status (the caller's own batch)."""
    _signed_in(p, "run batches")
    return _runs(request, p).finish_batch(batch_id, body.status).to_json()


# -- lineage and exports ---------------------------------------------------------------

LineageFormat = Literal["json", "prov-json", "provn", "dot", "svg"]
_MEDIA = {
    "json": "application/json",
    "prov-json": "application/json",
    "provn": "text/provenance-notation; charset=utf-8",
    "dot": "text/vnd.graphviz; charset=utf-8",
    "svg": "image/svg+xml",
}
_LINEAGE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "the lineage: JSON (nodes, edges, records), PROV-JSON, PROV-N, DOT or SVG",
        "content": {m.split(";")[0]: {} for m in _MEDIA.values()},
    }
}


def _export(request: Request, lineage: Lineage, fmt: str) -> Response:
    from nanorepo.provenance import lineage_dot, prov_json, prov_n, render_svg, to_prov

    ns = public_namespace(request)
    if fmt == "json":
        body: bytes = json.dumps(lineage.to_json()).encode()
    elif fmt == "prov-json":
        body = prov_json(to_prov(lineage, namespace=ns)).encode()
    elif fmt == "provn":
        body = prov_n(to_prov(lineage, namespace=ns)).encode()
    elif fmt == "dot":
        body = lineage_dot(lineage).encode()
    else:
        body = render_svg(lineage_dot(lineage))
    return Response(body, media_type=_MEDIA[fmt])


@router.get("/datasets/{accession}/lineage", response_class=Response, responses=_LINEAGE_RESPONSES)
def dataset_lineage(
    accession: str, request: Request, p: CurrentPrincipal, format: LineageFormat = "json"
) -> Response:
    """Upstream and downstream of a dataset (``ACCESSION`` or ``ACCESSION@vN``): the runs
    that read it, what they wrote, datasets deposited from that, and the runs that made
    it, as far as the caller may see them."""
    parse_ref(accession)
    return _export(request, _runs(request, p).lineage(accession), format)


@router.get("/runs/{run_id}/lineage", response_class=Response, responses=_LINEAGE_RESPONSES)
def run_lineage(
    run_id: str,
    request: Request,
    p: CurrentPrincipal,
    format: LineageFormat = "json",
    output: Annotated[str | None, Query(max_length=512, description="focus on this output")] = None,
) -> Response:
    """Upstream and downstream of a run (or of one of its outputs)."""
    runs = _runs(request, p)
    rec = runs.get(run_id)
    focus = rec.id
    if output is not None:
        match = [o for o in rec.outputs if o.name == output]
        if not match:
            raise RunNotFound(f"{run_id}/{output[:100]}", "run output")
        focus = match[0].sha256
    return _export(request, runs.lineage(focus), format)


@router.get(
    "/runs/{run_id}/crate",
    response_class=Response,
    responses={200: {"description": "RO-Crate (zip)", "content": {"application/zip": {}}}},
)
def run_crate(run_id: str, request: Request, p: CurrentPrincipal) -> Response:
    """The run as an RO-Crate (Workflow Run Crate): record, notebook and outputs, zipped."""
    import tempfile

    from nanorepo.provenance import lineage_of, write_crate

    runs = _runs(request, p)
    rec = runs.get(run_id)
    with tempfile.TemporaryDirectory(prefix="nanorepo-crate-") as tmp:
        out = write_crate(
            lineage_of([rec], runs.batches_of([rec])), Path(tmp) / f"run-{rec.id[:12]}",
            files=lambda rid, name: runs.crate_file([rec], rid, name), zip=True,
            namespace=public_namespace(request),
        )  # fmt: skip
        data = out.read_bytes()
    return Response(
        data,
        media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="run-{rec.id[:12]}.crate.zip"'},
    )
