"""Dataset routes: list and search, detail, versions, sealed and mutable metadata, history,
grants, embargo and release.

Every route finds its dataset through :func:`nanorepo.policy.readable_dataset`, so a dataset
the caller may not see answers exactly like one that does not exist.
"""

from __future__ import annotations

import json
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from pydantic import Field
from sqlmodel import Session

import nanorepo.catalog._queries as queries
from nanorepo import __version__
from nanorepo.catalog import MUTABLE_FIELDS
from nanorepo.catalog._catalog import row_id
from nanorepo.catalog.models import Dataset, Version
from nanorepo.errors import Conflict, InvalidInput, NanorepoError, VersionNotFound
from nanorepo.policy import Principal, allowed, readable_dataset, require, visible_clause
from nanorepo.schemas import (
    EDIT_RESPONSES,
    DatasetDetail,
    DatasetSummary,
    EmbargoIn,
    FacetValue,
    GrantIn,
    GrantOut,
    Health,
    MetadataPatch,
    MutableMetadata,
    Page,
    ReleaseIn,
    Revision,
    SealedMetadata,
    VersionInfo,
)
from nanorepo.search import facets, search
from nanorepo.service._app import CurrentPrincipal, DbSession, state_of
from nanorepo.service._http import (
    check_if_match,
    decode_cursor,
    encode_cursor,
    etag,
    not_modified,
    set_etag,
)
from nanorepo.service._problems import PreconditionFailed
from nanorepo.storage import check_accession

__all__ = ["router", "version_row"]

router = APIRouter()


class GrantNotFound(NanorepoError, LookupError):
    """The grant to remove does not exist (404)."""


Limit = Annotated[int, Query(ge=1, le=500, description="page size")]
Cursor = Annotated[str | None, Query(max_length=500, description="`next` of the previous page")]


def summary(ds: Dataset) -> DatasetSummary:
    return DatasetSummary(
        accession=ds.accession,
        title=ds.title,
        latest_version=ds.latest_version,
        access=ds.access,  # type: ignore[arg-type]
        embargo_until=ds.embargo_until.isoformat() if ds.embargo_until else None,
        owner=ds.owner,
        created=ds.created.isoformat(),
        license=(ds.mutable or {}).get("license"),
        ref=f"{ds.accession}@v{ds.latest_version}",
    )


class DatasetHit(DatasetSummary):
    """A dataset in a list or search result: its summary and a picture to show beside it."""

    thumbnail: str | None = Field(
        None,
        description="path of the thumbnail of the latest version's representative image (the "
        "largest of its first 16 by name); null when the version has no image",
    )


def hit(ds: Dataset, first_image: str | None) -> DatasetHit:
    thumb = None
    if first_image is not None:
        thumb = (
            f"datasets/{ds.accession}/versions/v{ds.latest_version}/images/{first_image}"
            "/thumbnail.png"
        )
    return DatasetHit(**summary(ds).model_dump(), thumbnail=thumb)


def version_info(ds: Dataset, v: Version) -> VersionInfo:
    return VersionInfo(
        version=v.number,
        ref=f"{ds.accession}@v{v.number}",
        created=v.created.isoformat(),
        created_by=v.created_by,
        note=v.note,
        manifest_sha256=v.manifest_digest,
        metadata_sha256=v.metadata_digest,
        size_bytes=v.size_bytes,
    )


def dataset_etag(ds: Dataset) -> str:
    return etag(ds.accession, f"r{ds.mutable_rev}", f"v{ds.latest_version}")


def mutable_etag(ds: Dataset) -> str:
    return etag(ds.accession, "m", ds.mutable_rev)


def parse_version(value: str) -> int | None:
    """``v3``, ``3`` or ``latest`` (``None``)."""
    if value == "latest":
        return None
    digits = value[1:] if value[:1] in {"v", "V"} else value
    if not digits.isdigit() or not 0 < int(digits) < 10**9:
        raise InvalidInput(f"{value!r} is not a version", hint="write v1, 1 or latest")
    return int(digits)


def find_dataset(s: Session, p: Principal, accession: str) -> Dataset:
    """The dataset if ``p`` may see it; the same 404 otherwise (also for malformed ones)."""
    try:
        check_accession(accession)
    except InvalidInput:
        from nanorepo.errors import DatasetNotFound

        raise DatasetNotFound(accession) from None
    return readable_dataset(s, p, accession)


def version_row(s: Session, p: Principal, accession: str, version: str) -> tuple[Dataset, Version]:
    """A visible dataset and one of its versions (``latest`` allowed)."""
    ds = find_dataset(s, p, accession)
    number = parse_version(version) or ds.latest_version
    v = queries.version_numbered(s, ds.id, number)
    if v is None:
        raise VersionNotFound(accession, number, ds.latest_version)
    return ds, v


@router.get("/health", response_model=Health, tags=["service"])
def health(s: DbSession, p: CurrentPrincipal) -> Health:
    """Whether the service and its catalog answer."""
    queries.catalog_answers(s)
    return Health(status="ok", version=__version__, database=s.get_bind().dialect.name, user=p.name)


def _visible_ids(s: Session, p: Principal) -> list[int] | None:
    if p.privileged:
        return None
    return queries.dataset_ids(s, visible_clause(p), Dataset.access != "public")


@router.get("/datasets", response_model=Page[DatasetHit], tags=["datasets"])
def list_datasets(
    s: DbSession,
    p: CurrentPrincipal,
    q: Annotated[str, Query(max_length=1000, description="words and field:value filters")] = "",
    cursor: Cursor = None,
    limit: Limit = 50,
) -> Page[DatasetHit]:
    """Datasets the caller may see; with ``q``, full-text search with field filters, best
    match first. Each carries the path of a thumbnail to show beside it."""
    key = decode_cursor(cursor) or {}
    offset = key.get("o", 0)
    if not isinstance(offset, int) or offset < 0:
        raise InvalidInput("cursor is not valid", hint="omit it to start from the first page")
    rows, total = search(s, q, offset=offset, limit=limit, visible_ids=_visible_ids(s, p))
    nxt = encode_cursor({"o": offset + limit}) if offset + limit < total else None
    first = queries.first_images(s, list(rows))
    return Page(items=[hit(d, first.get(d.id or 0)) for d in rows], next=nxt, total=total)


@router.get("/facets", response_model=dict[str, list[FacetValue]], tags=["datasets"])
def dataset_facets(
    s: DbSession,
    p: CurrentPrincipal,
    q: Annotated[str, Query(max_length=1000, description="words and field:value filters")] = "",
) -> dict[str, list[FacetValue]]:
    """For each facet field (technique, organism, fluorophore, license, access), how many
    datasets the caller may see match ``q`` with each value; pass ``value`` back as a
    ``field:value`` filter."""
    counts = facets(s, q, visible_ids=_visible_ids(s, p))
    return {
        f: [FacetValue(value=v, display=d, count=n) for v, d, n in entries]
        for f, entries in counts.items()
    }


def _grants(s: Session, ds: Dataset) -> list[GrantOut]:
    rows = queries.grants_of(s, ds.id)
    return [
        GrantOut(
            kind=g.principal_kind,
            principal=g.principal,
            granted_by=g.granted_by,
            created=g.created.isoformat(),
        )
        for g in rows
    ]


_ACTIONS = ("annotate", "edit", "grant", "release", "embargo", "revise", "moderate")


@router.get(
    "/datasets/{accession}",
    response_model=DatasetDetail,
    tags=["datasets"],
    responses={304: {"description": "not modified (If-None-Match)"}},
)
def get_dataset(
    accession: str, request: Request, response: Response, s: DbSession, p: CurrentPrincipal
) -> Any:
    """A dataset: summary, versions, mutable metadata, and what the caller may do."""
    ds = find_dataset(s, p, accession)
    tag = dataset_etag(ds)
    if not_modified(request, tag):
        return Response(status_code=304, headers={"ETag": tag})
    versions = queries.versions_of(s, ds.id)
    can = [a for a in _ACTIONS if allowed(s, p, a, ds)]
    set_etag(response, tag)
    return DatasetDetail(
        **summary(ds).model_dump(),
        versions=[version_info(ds, v) for v in versions],
        mutable=ds.mutable,
        mutable_rev=ds.mutable_rev,
        grants=_grants(s, ds) if "grant" in can else None,
        can=can,
    )


@router.get("/datasets/{accession}/versions", response_model=list[VersionInfo], tags=["datasets"])
def list_versions(accession: str, s: DbSession, p: CurrentPrincipal) -> list[VersionInfo]:
    ds = find_dataset(s, p, accession)
    versions = queries.versions_of(s, ds.id)
    return [version_info(ds, v) for v in versions]


@router.get(
    "/datasets/{accession}/versions/{version}",
    response_model=VersionInfo,
    tags=["datasets"],
)
def get_version(
    accession: str, version: str, response: Response, s: DbSession, p: CurrentPrincipal
) -> VersionInfo:
    ds, v = version_row(s, p, accession, version)
    set_etag(response, etag(v.manifest_digest))
    return version_info(ds, v)


@router.get(
    "/datasets/{accession}/versions/{version}/metadata",
    response_model=SealedMetadata,
    tags=["metadata"],
    responses={304: {"description": "not modified (If-None-Match)"}},
)
def sealed_metadata(
    accession: str,
    version: str,
    request: Request,
    response: Response,
    s: DbSession,
    p: CurrentPrincipal,
) -> Any:
    """The immutable (REMBI) metadata of a version as sealed, with its SHA-256 (re-checked)."""
    from nanorepo.errors import IntegrityError
    from nanorepo.storage import sha256_hex

    ds, v = version_row(s, p, accession, version)
    tag = etag(v.metadata_digest)
    if not_modified(request, tag):
        return Response(status_code=304, headers={"ETag": tag})
    if sha256_hex(v.metadata_json.encode()) != v.metadata_digest:
        raise IntegrityError(f"{ds.accession}@v{v.number}: sealed metadata fails its digest")
    # immutable: caches may keep it as long as they like
    set_etag(response, tag, cache="public, max-age=31536000, immutable")
    if ds.access != "public":
        response.headers["Cache-Control"] = "private, max-age=31536000, immutable"
    return SealedMetadata(
        accession=ds.accession,
        version=v.number,
        sha256=v.metadata_digest,
        metadata=json.loads(v.metadata_json),
    )


def _mutable(ds: Dataset) -> MutableMetadata:
    return MutableMetadata(
        accession=ds.accession, rev=ds.mutable_rev, fields=ds.mutable, editable=MUTABLE_FIELDS
    )


@router.get("/datasets/{accession}/mutable", response_model=MutableMetadata, tags=["metadata"])
def get_mutable(
    accession: str, response: Response, s: DbSession, p: CurrentPrincipal
) -> MutableMetadata:
    """Administrative metadata (title, licence, keywords, ...) and its revision."""
    ds = find_dataset(s, p, accession)
    set_etag(response, mutable_etag(ds))
    return _mutable(ds)


@router.patch(
    "/datasets/{accession}/mutable",
    response_model=MutableMetadata,
    tags=["metadata"],
    responses=EDIT_RESPONSES,
)
def patch_mutable(
    accession: str,
    body: MetadataPatch,
    request: Request,
    response: Response,
    s: DbSession,
    p: CurrentPrincipal,
) -> MutableMetadata:
    """Change administrative metadata (owner, curators, admins); needs ``If-Match``."""
    ds = find_dataset(s, p, accession)
    require(s, p, "edit", ds)
    any_state = check_if_match(
        request, mutable_etag(ds), what=f"{ds.accession} metadata", state=_mutable(ds).model_dump()
    )
    repo = state_of(request).repo
    try:
        repo.set_metadata(
            ds.accession, body.changes, reason=body.reason,
            expected_rev=None if any_state else ds.mutable_rev,
            who=str(p),
        )  # fmt: skip
    except Conflict as exc:  # lost the race after the If-Match check: same answer as stale
        s.expire_all()
        fresh = find_dataset(s, p, accession)
        err = PreconditionFailed(exc.message, hint=exc.hint)
        err.current = _mutable(fresh).model_dump()  # type: ignore[attr-defined]
        err.etag = mutable_etag(fresh)  # type: ignore[attr-defined]
        raise err from None
    s.expire_all()
    ds = find_dataset(s, p, accession)
    set_etag(response, mutable_etag(ds))
    return _mutable(ds)


@router.get("/datasets/{accession}/history", response_model=Page[Revision], tags=["metadata"])
def history(
    accession: str, s: DbSession, p: CurrentPrincipal, cursor: Cursor = None, limit: Limit = 100
) -> Page[Revision]:
    """Every change of mutable metadata and access, oldest first: who, when, old, new, why."""
    ds = find_dataset(s, p, accession)
    after = (decode_cursor(cursor) or {}).get("id", 0)
    if not isinstance(after, int):
        raise InvalidInput("cursor is not valid", hint="omit it to start from the first page")
    rows = queries.revisions_after(s, ds.id, after, limit + 1)
    items = [
        Revision(rev=r.rev, key=r.key, old=r.old, new=r.new, who=r.who,
                 when=r.when.isoformat(), reason=r.reason)
        for r in rows[:limit]
    ]  # fmt: skip
    nxt = encode_cursor({"id": row_id(rows[limit - 1])}) if len(rows) > limit else None
    return Page(items=items, next=nxt, total=None)


@router.get("/datasets/{accession}/grants", response_model=list[GrantOut], tags=["access"])
def list_grants(accession: str, s: DbSession, p: CurrentPrincipal) -> list[GrantOut]:
    """Who has been given access (owner, curators, admins only)."""
    ds = find_dataset(s, p, accession)
    require(s, p, "grant", ds)
    return _grants(s, ds)


@router.post(
    "/datasets/{accession}/grants", response_model=GrantOut, status_code=201, tags=["access"]
)
def add_grant(
    accession: str, body: GrantIn, request: Request, s: DbSession, p: CurrentPrincipal
) -> GrantOut:
    """Give a user or group access to the dataset (effective at once in the service)."""
    ds = find_dataset(s, p, accession)
    require(s, p, "grant", ds)
    g = state_of(request).repo.grant(ds.accession, body.kind, body.principal, who=str(p))
    return GrantOut(**g)


@router.delete("/datasets/{accession}/grants/{kind}/{principal}", status_code=204, tags=["access"])
def remove_grant(
    accession: str, kind: str, principal: str, request: Request, s: DbSession, p: CurrentPrincipal
) -> Response:
    ds = find_dataset(s, p, accession)
    require(s, p, "grant", ds)
    if kind not in {"user", "group"}:
        raise InvalidInput(f"grants go to a user or a group, not {kind!r}")
    if not state_of(request).repo.revoke(ds.accession, kind, principal, who=str(p)):
        raise GrantNotFound(f"{ds.accession} has no grant for {kind} {principal}")
    return Response(status_code=204)


@router.post(
    "/datasets/{accession}/release",
    response_model=DatasetSummary,
    tags=["access"],
    responses=EDIT_RESPONSES,
)
def release(
    accession: str, body: ReleaseIn, request: Request, s: DbSession, p: CurrentPrincipal
) -> DatasetSummary:
    """End the embargo now: the dataset becomes public on every channel."""
    ds = find_dataset(s, p, accession)
    require(s, p, "release", ds)
    check_if_match(request, dataset_etag(ds), what=ds.accession)
    if ds.access == "public":
        raise Conflict(f"{ds.accession} is public already")
    state_of(request).repo.release(ds.accession, reason=body.reason, who=str(p))
    s.expire_all()
    return summary(find_dataset(s, p, accession))


@router.post(
    "/datasets/{accession}/embargo",
    response_model=DatasetSummary,
    tags=["access"],
    responses=EDIT_RESPONSES,
)
def embargo(
    accession: str, body: EmbargoIn, request: Request, s: DbSession, p: CurrentPrincipal
) -> DatasetSummary:
    """Put a dataset (back) under embargo, until a date or until released (curators)."""
    ds = find_dataset(s, p, accession)
    require(s, p, "embargo", ds)
    check_if_match(request, dataset_etag(ds), what=ds.accession)
    until = None
    if body.until is not None:
        try:
            until = date.fromisoformat(body.until)
        except ValueError:
            raise InvalidInput(f"until {body.until!r} is not a date (YYYY-MM-DD)") from None
        if until <= date.today():
            raise InvalidInput(f"until {until} is not in the future", hint="give a later date")
    state_of(request).repo.embargo(ds.accession, until, reason=body.reason, who=str(p))
    s.expire_all()
    return summary(find_dataset(s, p, accession))
