"""Annotation routes: threads anchored to a dataset, image or region; posts, edits with
history, resolve/reopen, W3C Web Annotation export and import.

Reading follows the dataset's visibility (an embargoed dataset's threads are as invisible
as the dataset). Writing needs a signed-in user who can see the dataset; editing a post is
for its author (and curators, who moderate); resolving is for the thread's author, the
dataset's owner and curators. Every write re-indexes the dataset so thread text is
searchable.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import Field
from sqlmodel import Session

import nanorepo.annotations as an
import nanorepo.catalog._queries as queries
from nanorepo.catalog.models import Dataset, Image, Post, Thread
from nanorepo.errors import InvalidInput, PermissionDenied, VersionNotFound
from nanorepo.policy import Principal, require
from nanorepo.schemas import (
    EDIT_RESPONSES,
    Imported,
    PostOut,
    PostRevisionOut,
    ThreadEventOut,
    ThreadOut,
    ThreadPage,
)
from nanorepo.schemas._wire import _In, _no_nul
from nanorepo.search import index_dataset
from nanorepo.service._app import CurrentPrincipal, DbSession, public_namespace
from nanorepo.service._datasets import Cursor, Limit, find_dataset
from nanorepo.service._http import check_if_match, decode_cursor, encode_cursor, etag, set_etag
from nanorepo.service._problems import PreconditionFailed

__all__ = ["router"]

router = APIRouter(tags=["annotations"])

Motivation = Literal[
    "assessing", "bookmarking", "classifying", "commenting", "describing", "editing",
    "highlighting", "identifying", "linking", "moderating", "questioning", "replying",
    "tagging",
]  # fmt: skip


class ThreadIn(_In):
    title: str = Field(min_length=1, max_length=300)
    body: str = Field(min_length=1, max_length=an.MAX_BODY_CHARS)
    anchor: dict[str, Any] | None = Field(
        None, description='{"kind": "dataset"} (default), image, or region in nm'
    )
    motivation: Motivation = "commenting"
    tags: list[str] = Field(default_factory=list, max_length=an.MAX_TAGS)
    version: int | None = Field(None, ge=1, description="default: the latest version")


class ThreadPatch(_In):
    status: Literal["open", "resolved"] | None = None
    title: str | None = Field(None, min_length=1, max_length=300)
    tags: list[str] | None = Field(None, max_length=an.MAX_TAGS)


class PostIn(_In):
    body: str = Field(min_length=1, max_length=an.MAX_BODY_CHARS)
    parent_id: int | None = Field(None, ge=1)
    motivation: Motivation = "replying"


class PostPatch(_In):
    body: str = Field(min_length=1, max_length=an.MAX_BODY_CHARS)
    reason: str = Field("", max_length=2000)


ThreadId = Annotated[int, Field(ge=1, le=2**31 - 1)]  # ids are 32-bit on PostgreSQL


def _post(p: Post) -> PostOut:
    return PostOut(
        id=p.id or 0, parent_id=p.parent_id, author=p.author, motivation=p.motivation,
        body=p.body, html=p.html, created=p.created.isoformat(), updated=p.updated.isoformat(),
        rev=p.rev, edited=p.rev > 1, state=p.state, etag=post_etag(p),
    )  # fmt: skip


def _thread(
    s: Session, ds: Dataset, t: Thread, *, with_posts: bool, post_count: int | None = None
) -> ThreadOut:
    """A thread as the API shows it; lists pass ``post_count`` (counted for the whole page
    in one query) instead of loading every thread's posts."""
    ps = an.posts(s, t.id or 0) if with_posts or post_count is None else []
    return ThreadOut(
        id=t.id or 0, dataset=ds.accession, version=t.version, image=t.image, anchor=t.anchor,
        title=t.title, motivation=t.motivation, tags=list(t.tags), status=t.status,  # type: ignore[arg-type]
        created_by=t.created_by, created=t.created.isoformat(), updated=t.updated.isoformat(),
        rev=t.rev, post_count=len(ps) if post_count is None else post_count,
        posts=[_post(p) for p in ps] if with_posts else None,
    )  # fmt: skip


def _post_counts(s: Session, thread_ids: list[int]) -> dict[int, int]:
    return queries.active_post_counts(s, thread_ids)


def thread_etag(t: Thread) -> str:
    return etag(f"t{t.id}", t.rev)


def post_etag(p: Post) -> str:
    return etag(f"p{p.id}", p.rev)


def _stale(exc: an.EditConflict, tag: str) -> PreconditionFailed:
    err = PreconditionFailed(exc.message, hint=exc.hint)
    err.current = exc.current  # type: ignore[attr-defined]
    err.etag = tag  # type: ignore[attr-defined]
    return err


def _may_manage(s: Session, p: Principal, ds: Dataset, author: str) -> bool:
    """Authors manage what they wrote; curators (moderate) and, for threads, the owner."""
    return p.name == author or p.privileged


def _deny(p: Principal, what: str) -> PermissionDenied:
    return PermissionDenied(
        f"{p} may not {what}: only its author and curators may",
        hint="reply instead, or ask a curator",
    )


def _image_row(s: Session, ds: Dataset, version: int, name: str | None) -> Image | None:
    if name is None:
        return None
    v = queries.version_numbered(s, ds.id, version)
    return None if v is None else queries.image_named(s, v.id, name)


def _write(s: Session, ds: Dataset, fn: Callable[[], Any]) -> Any:
    out = fn()
    index_dataset(s, ds.id or 0)
    s.commit()
    return out


@router.get("/datasets/{accession}/threads", response_model=ThreadPage)
def list_threads(
    accession: str,
    s: DbSession,
    p: CurrentPrincipal,
    image: Annotated[str | None, Query(max_length=128)] = None,
    status: Literal["open", "resolved"] | None = None,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> ThreadPage:
    """Threads of a dataset (or of one image), newest activity last, with open/resolved
    counts."""
    ds = find_dataset(s, p, accession)
    after = (decode_cursor(cursor) or {}).get("id")
    if after is not None and not isinstance(after, int):
        after = None
    rows, nxt = an.list_threads(
        s, ds.id or 0, image=image, status=status, after_id=after, limit=limit
    )
    counts = an.thread_counts(s, ds.id or 0, image=image)
    total = counts.get(status, 0) if status else sum(counts.values())
    counted = _post_counts(s, [t.id or 0 for t in rows])
    return ThreadPage(
        items=[
            _thread(s, ds, t, with_posts=False, post_count=counted.get(t.id or 0, 0)) for t in rows
        ],
        next=encode_cursor({"id": nxt}) if nxt is not None else None,
        total=total,
        counts=counts,
    )


@router.post("/datasets/{accession}/threads", response_model=ThreadOut, status_code=201)
def create_thread(
    accession: str, body: ThreadIn, response: Response, s: DbSession, p: CurrentPrincipal
) -> ThreadOut:
    """Open a thread on the dataset, an image, or a region (in the image's units, nm)."""
    ds = find_dataset(s, p, accession)
    require(s, p, "annotate", ds)
    version = body.version or ds.latest_version
    if version > ds.latest_version:
        raise VersionNotFound(ds.accession, version, ds.latest_version)
    anchor = body.anchor or {"kind": "dataset"}
    image_name = anchor.get("image") if isinstance(anchor.get("image"), str) else None
    image_row = _image_row(s, ds, version, image_name)
    t = _write(s, ds, lambda: an.create_thread(
        s, ds, version=version, image_row=image_row, anchor=anchor, title=body.title,
        body=body.body, motivation=body.motivation, tags=body.tags, who=str(p),
    ))  # fmt: skip
    s.refresh(t)
    set_etag(response, thread_etag(t))
    response.headers["Location"] = f"threads/{t.id}"
    return _thread(s, ds, t, with_posts=True)


@router.get("/datasets/{accession}/threads/{thread_id}", response_model=ThreadOut)
def get_thread(
    accession: str, thread_id: ThreadId, response: Response, s: DbSession, p: CurrentPrincipal
) -> ThreadOut:
    ds = find_dataset(s, p, accession)
    t = an.get_thread(s, ds.id or 0, thread_id)
    set_etag(response, thread_etag(t))
    return _thread(s, ds, t, with_posts=True)


@router.patch(
    "/datasets/{accession}/threads/{thread_id}", response_model=ThreadOut,
    responses=EDIT_RESPONSES,
)  # fmt: skip
def patch_thread(
    accession: str,
    thread_id: ThreadId,
    body: ThreadPatch,
    request: Request,
    response: Response,
    s: DbSession,
    p: CurrentPrincipal,
) -> ThreadOut:
    """Resolve or reopen (author, dataset owner, curators); retitle or retag (author,
    curators). Needs ``If-Match``."""
    ds = find_dataset(s, p, accession)
    require(s, p, "annotate", ds)
    t = an.get_thread(s, ds.id or 0, thread_id)
    if body.status is not None and not (_may_manage(s, p, ds, t.created_by) or ds.owner == p.name):
        raise _deny(p, "resolve or reopen this thread")
    if (body.title is not None or body.tags is not None) and not _may_manage(
        s, p, ds, t.created_by
    ):
        raise _deny(p, "retitle or retag this thread")
    any_state = check_if_match(request, thread_etag(t), what=f"thread {thread_id}",
                               state=_thread(s, ds, t, with_posts=False).model_dump())  # fmt: skip
    rev: int | None = t.rev
    try:
        for field, fn in (("status", an.set_status), ("title", an.retitle), ("tags", an.set_tags)):
            value = getattr(body, field)
            if value is not None:
                t = fn(s, t, value, str(p), expected_rev=None if any_state else rev)
                rev = t.rev
    except an.EditConflict as exc:
        s.rollback()
        raise _stale(exc, thread_etag(an.get_thread(s, ds.id or 0, thread_id))) from None
    _write(s, ds, lambda: None)
    t = an.get_thread(s, ds.id or 0, thread_id)
    set_etag(response, thread_etag(t))
    return _thread(s, ds, t, with_posts=True)


@router.delete(
    "/datasets/{accession}/threads/{thread_id}", status_code=204, responses=EDIT_RESPONSES
)
def delete_thread(
    accession: str, thread_id: ThreadId, request: Request, s: DbSession, p: CurrentPrincipal
) -> Response:
    """Delete a thread (author, curators): hidden from lists and search, history kept."""
    ds = find_dataset(s, p, accession)
    require(s, p, "annotate", ds)
    t = an.get_thread(s, ds.id or 0, thread_id)
    if not _may_manage(s, p, ds, t.created_by):
        raise _deny(p, "delete this thread")
    any_state = check_if_match(request, thread_etag(t), what=f"thread {thread_id}")
    try:
        _write(s, ds, lambda: an.delete_thread(
            s, t, str(p), expected_rev=None if any_state else t.rev
        ))  # fmt: skip
    except an.EditConflict as exc:
        raise _stale(exc, thread_etag(t)) from None
    return Response(status_code=204)


@router.get(
    "/datasets/{accession}/threads/{thread_id}/history", response_model=list[ThreadEventOut]
)
def thread_history(
    accession: str, thread_id: ThreadId, s: DbSession, p: CurrentPrincipal
) -> list[ThreadEventOut]:
    """Every change of the thread: created, resolved, reopened, retitled, retagged, ..."""
    ds = find_dataset(s, p, accession)
    t = an.get_thread(s, ds.id or 0, thread_id)
    return [
        ThreadEventOut(rev=e.rev, what=e.what, old=e.old, new=e.new, who=e.who,
                       when=e.when.isoformat())
        for e in an.thread_events(s, t.id or 0)
    ]  # fmt: skip


@router.post(
    "/datasets/{accession}/threads/{thread_id}/posts", response_model=PostOut, status_code=201
)
def add_post(
    accession: str,
    thread_id: ThreadId,
    body: PostIn,
    response: Response,
    s: DbSession,
    p: CurrentPrincipal,
) -> PostOut:
    """Reply to the thread or to one of its posts (``parent_id``)."""
    ds = find_dataset(s, p, accession)
    require(s, p, "annotate", ds)
    t = an.get_thread(s, ds.id or 0, thread_id)
    post = _write(s, ds, lambda: an.reply(
        s, t, body=body.body, who=str(p), parent_id=body.parent_id, motivation=body.motivation
    ))  # fmt: skip
    s.refresh(post)
    set_etag(response, post_etag(post))
    return _post(post)


@router.patch(
    "/datasets/{accession}/threads/{thread_id}/posts/{post_id}", response_model=PostOut,
    responses=EDIT_RESPONSES,
)  # fmt: skip
def edit_post(
    accession: str,
    thread_id: ThreadId,
    post_id: ThreadId,
    body: PostPatch,
    request: Request,
    response: Response,
    s: DbSession,
    p: CurrentPrincipal,
) -> PostOut:
    """Edit a post (its author, or a curator); the previous text stays in its history."""
    ds = find_dataset(s, p, accession)
    require(s, p, "annotate", ds)
    t = an.get_thread(s, ds.id or 0, thread_id)
    post = an.get_post(s, t.id or 0, post_id)
    if not _may_manage(s, p, ds, post.author):
        raise _deny(p, "edit this post")
    any_state = check_if_match(
        request, post_etag(post), what=f"post {post_id}", state=_post(post).model_dump()
    )
    try:
        post = _write(s, ds, lambda: an.edit_post(
            s, post, body=body.body, who=str(p),
            expected_rev=None if any_state else post.rev, reason=body.reason,
        ))  # fmt: skip
    except an.EditConflict as exc:
        s.rollback()
        raise _stale(exc, post_etag(an.get_post(s, t.id or 0, post_id))) from None
    post = an.get_post(s, t.id or 0, post_id)
    set_etag(response, post_etag(post))
    return _post(post)


@router.get(
    "/datasets/{accession}/threads/{thread_id}/posts/{post_id}/history",
    response_model=list[PostRevisionOut],
)
def post_history(
    accession: str, thread_id: ThreadId, post_id: ThreadId, s: DbSession, p: CurrentPrincipal
) -> list[PostRevisionOut]:
    """Every version of a post's text, the original first."""
    ds = find_dataset(s, p, accession)
    t = an.get_thread(s, ds.id or 0, thread_id)
    post = an.get_post(s, t.id or 0, post_id)
    return [
        PostRevisionOut(rev=r.rev, body=r.body, who=r.who, when=r.when.isoformat(),
                        reason=r.reason)
        for r in an.post_history(s, post.id or 0)
    ]  # fmt: skip


_JSONLD = 'application/ld+json; profile="http://www.w3.org/ns/anno.jsonld"'


@router.get(
    "/datasets/{accession}/annotations",
    response_class=JSONResponse,
    responses={200: {"content": {_JSONLD: {"schema": {"type": "object"}}},
                     "description": "W3C Web Annotation AnnotationCollection"}},
)  # fmt: skip
def export_annotations(
    accession: str,
    request: Request,
    s: DbSession,
    p: CurrentPrincipal,
    thread: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
) -> JSONResponse:
    """The dataset's threads (or one) as a W3C Web Annotation ``AnnotationCollection``."""
    ds = find_dataset(s, p, accession)
    if thread is not None:
        threads = [an.get_thread(s, ds.id or 0, thread)]
    else:
        threads, after = [], None
        while True:
            page, after = an.list_threads(s, ds.id or 0, after_id=after, limit=500)
            threads += page
            if after is None:
                break
    versions = {v.id: v.number for v in queries.versions_of(s, ds.id)}
    images = {
        (versions[i.version_id], i.name): i for i in queries.images_of_versions(s, list(versions))
    }
    base = public_namespace(request) or "urn:nanorepo:"
    doc = an.export_collection(
        [(t, an.posts(s, t.id or 0)) for t in threads],
        dataset_ref=f"{ds.accession}@v{ds.latest_version}",
        base_uri=base,
        images=images,
    )
    return JSONResponse(doc, media_type=_JSONLD)


@router.post("/datasets/{accession}/annotations", response_model=Imported, status_code=201)
def import_annotations(
    accession: str,
    doc: dict[str, Any],
    s: DbSession,
    p: CurrentPrincipal,
    version: Annotated[int | None, Query(ge=1, le=10**9)] = None,
) -> Imported:
    """Import a W3C ``AnnotationCollection`` (e.g. exported from another repository) as new
    threads written by the caller; all or nothing."""
    ds = find_dataset(s, p, accession)
    require(s, p, "annotate", ds)
    try:
        _no_nul(doc)
    except ValueError as exc:
        raise InvalidInput(f"the annotation collection is not valid: {exc}") from None
    v = version or ds.latest_version
    if v > ds.latest_version:
        raise VersionNotFound(ds.accession, v, ds.latest_version)
    made = _write(s, ds, lambda: an.import_collection(s, ds, doc, who=str(p), version=v))
    return Imported(imported=len(made))
