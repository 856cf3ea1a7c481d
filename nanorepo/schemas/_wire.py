"""The wire contract: every JSON body the service speaks, as pydantic models (D21).

Defined once, here, and shared by the FastAPI routes (as response and request models, so
the published OpenAPI document says exactly what a client receives; schemathesis checks
responses against it), by the Python client and by the CLI's remote path. This module
imports nothing but pydantic, so ``pip install nanorepo`` (no ``[server]`` extra) can
import it; the extension's TypeScript types are generated from the same document.
"""

from __future__ import annotations

from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

T = TypeVar("T")

__all__ = [
    "COMMON_RESPONSES",
    "EDIT_RESPONSES",
    "MAX_FIELD_CHARS",
    "MAX_FIELD_ITEMS",
    "DatasetDetail",
    "DatasetSummary",
    "EmbargoIn",
    "FacetValue",
    "FileInfo",
    "GrantIn",
    "GrantOut",
    "Health",
    "ImageInfo",
    "Imported",
    "In",
    "MetadataPatch",
    "MutableMetadata",
    "Page",
    "PostOut",
    "PostRevisionOut",
    "Problem",
    "ReleaseIn",
    "Revision",
    "SealedMetadata",
    "StagedDepositIn",
    "ThreadEventOut",
    "ThreadOut",
    "ThreadPage",
    "VersionInfo",
]


def _no_nul(value: Any, where: str = "") -> None:
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError(f"text{where} must not contain NUL characters")
    elif isinstance(value, dict):
        for k, v in value.items():
            _no_nul(k, where)
            _no_nul(v, where)
    elif isinstance(value, list):
        for v in value:
            _no_nul(v, where)


class In(BaseModel):
    """Base of request bodies: unknown fields and NUL characters are refused (422).

    NUL cannot be stored in PostgreSQL text and has no place in metadata or annotations.
    """

    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def _text_without_nul(cls, value: Any) -> Any:
        _no_nul(value)
        return value


_In = In


class Page(BaseModel, Generic[T]):
    """One page of a list; pass ``next`` as ``cursor`` to get the following page."""

    items: list[T]
    next: str | None = Field(None, description="cursor of the next page; null on the last")
    total: int | None = Field(None, description="number of items the caller may see")


class Problem(BaseModel):
    """An error (RFC 9457 ``application/problem+json``)."""

    type: str
    title: str
    status: int
    detail: str = Field(description="what is wrong, for a human")
    hint: str | None = Field(None, description="how to fix it")
    errors: list[dict[str, Any]] | None = None
    current: Any = Field(None, description="412 only: the resource as it is now")


def _problem(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "model": Problem,
        "content": {
            "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
        },
    }


#: Error responses every route may give, documented once for the whole API.
COMMON_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: _problem("credentials missing or invalid"),
    403: _problem("signed in but not allowed"),
    404: _problem("no such resource, or one the caller may not see"),
    422: _problem("the request is not valid"),
    500: _problem("the service failed"),
}

#: Further error responses of edits (routes that take ``If-Match``).
EDIT_RESPONSES: dict[int | str, dict[str, Any]] = {
    409: _problem("the change conflicts with the resource's state"),
    412: _problem("If-Match names an older ETag: the body's `current` is the newer state"),
    428: _problem("If-Match is required"),
}


class Health(BaseModel):
    status: Literal["ok"]
    version: str
    database: str
    user: str | None


class DatasetSummary(BaseModel):
    accession: str
    title: str
    latest_version: int
    access: Literal["public", "embargoed"]
    embargo_until: str | None
    owner: str
    created: str
    license: str | None
    ref: str = Field(description="citable reference of the latest version, ACCESSION@vN")


class VersionInfo(BaseModel):
    version: int
    ref: str
    created: str
    created_by: str
    note: str
    manifest_sha256: str
    metadata_sha256: str
    size_bytes: int


class DatasetDetail(DatasetSummary):
    versions: list[VersionInfo]
    mutable: dict[str, Any]
    mutable_rev: int
    grants: list[GrantOut] | None = Field(
        None, description="present for those who may manage access"
    )
    can: list[str] = Field(description="actions the caller may take on this dataset")


class SealedMetadata(BaseModel):
    """The immutable (REMBI) metadata of a version exactly as sealed, with its digest."""

    accession: str
    version: int
    sha256: str
    metadata: dict[str, Any]


class MutableMetadata(BaseModel):
    accession: str
    rev: int
    fields: dict[str, Any]
    editable: dict[str, str] = Field(description="editable keys and what each accepts")


#: Longest value of one administrative metadata field, in characters.
MAX_FIELD_CHARS = 20_000
#: Most entries of a list-valued field (keywords, links).
MAX_FIELD_ITEMS = 200


class MetadataPatch(_In):
    """Changes to administrative metadata; every change is kept with the reason."""

    changes: dict[str, Any] = Field(min_length=1, max_length=20)
    reason: str = Field(min_length=1, max_length=2000)

    @field_validator("changes")
    @classmethod
    def _bounded(cls, changes: dict[str, Any]) -> dict[str, Any]:
        """Every value within :data:`MAX_FIELD_CHARS` (lists: :data:`MAX_FIELD_ITEMS` items of
        at most that many characters each): a description is a paragraph or a page, not
        a 30 MB file, and each revision keeps a copy."""
        for key, value in changes.items():
            items = value if isinstance(value, list) else [value]
            if len(items) > MAX_FIELD_ITEMS:
                raise ValueError(f"{key} has {len(items)} entries; at most {MAX_FIELD_ITEMS}")
            for v in items:
                if isinstance(v, str) and len(v) > MAX_FIELD_CHARS:
                    raise ValueError(
                        f"{key} has {len(v):,} characters; at most {MAX_FIELD_CHARS:,} are "
                        "accepted (link longer material as a file of the dataset)"
                    )
        return changes


class Revision(BaseModel):
    rev: int
    key: str
    old: Any
    new: Any
    who: str
    when: str
    reason: str


class ImageInfo(BaseModel):
    name: str
    dims: list[str]
    shape: list[int]
    dtype: str
    pixel_sizes: dict[str, float]
    channels: list[dict[str, Any]]
    levels: list[list[int]]
    key_values: dict[str, str]
    technique: str
    size_bytes: int
    manifest_sha256: str
    zarr: str = Field(description="path of the image's OME-Zarr on this service")
    thumbnail: str = Field(description="path of the image's PNG thumbnail")


class FileInfo(BaseModel):
    name: str
    role: str
    media_type: str
    size_bytes: int
    sha256: str
    summary: dict[str, Any]
    download: str


class GrantIn(_In):
    kind: Literal["user", "group"]
    principal: str = Field(min_length=1, max_length=255, pattern=r"^[A-Za-z0-9._@+\-]+$")


class GrantOut(BaseModel):
    kind: str
    principal: str
    granted_by: str
    created: str


class EmbargoIn(_In):
    until: str | None = Field(None, description="YYYY-MM-DD; null: until released by hand")
    reason: str = Field(min_length=1, max_length=2000)


class ReleaseIn(_In):
    reason: str = Field(min_length=1, max_length=2000)


class FacetValue(BaseModel):
    value: str = Field(description="what a field:value filter takes (lower case)")
    display: str = Field(description="the value as written")
    count: int


class StagedDepositIn(BaseModel):
    """A deposit of files already in the caller's staging area on the server.

    Relative paths are taken relative to that staging area (``<root>/<user>/``).
    """

    model_config = ConfigDict(extra="forbid")

    paths: list[str] = Field(
        min_length=1, max_length=10_000, description="image files, plane folders, OME-Zarr, tables"
    )
    title: str = Field(min_length=1, max_length=500)
    metadata: str | None = Field(None, description="deposit metadata file (YAML or JSON)")
    embargo_until: str | None = Field(None, description="YYYY-MM-DD; omit to publish openly")
    supporting: list[str] = Field(default_factory=list, max_length=10_000)
    pattern: str | None = Field(
        None, max_length=500, description="file-name pattern of a folder of TIFF planes"
    )
    derived_from: str | None = Field(
        None,
        max_length=32,
        description="id (or unique prefix) of the succeeded run whose outputs these files are",
    )


# Annotations: threads and posts as the service returns them.


class PostOut(BaseModel):
    id: int
    parent_id: int | None
    author: str
    motivation: str
    body: str = Field(description="the author's Markdown, as written")
    html: str = Field(description="sanitised HTML rendering: the only form to show")
    created: str
    updated: str
    rev: int
    edited: bool
    state: str
    etag: str = Field(description="send as If-Match to edit this post (posts are read in threads)")


class ThreadOut(BaseModel):
    id: int
    dataset: str
    version: int = Field(description="the dataset version the thread was written against")
    image: str | None
    anchor: dict[str, Any]
    title: str
    motivation: str
    tags: list[str]
    status: Literal["open", "resolved"]
    created_by: str
    created: str
    updated: str
    rev: int
    post_count: int
    posts: list[PostOut] | None = Field(None, description="in thread reads, not in lists")


class ThreadPage(BaseModel):
    items: list[ThreadOut]
    next: str | None
    total: int
    counts: dict[str, int]


class PostRevisionOut(BaseModel):
    rev: int
    body: str
    who: str
    when: str
    reason: str


class ThreadEventOut(BaseModel):
    rev: int
    what: str
    old: Any
    new: Any
    who: str
    when: str


class Imported(BaseModel):
    imported: int = Field(description="threads created")


DatasetDetail.model_rebuild()
