"""Threads as W3C Web Annotation JSON-LD (https://www.w3.org/TR/annotation-model/).

One ``AnnotationCollection`` per dataset, its annotations in one ``AnnotationPage``; one
``Annotation`` per post:

* ``body``: the post as a ``TextualBody`` (raw Markdown, ``format: text/markdown``), plus
  one ``TextualBody`` with ``purpose: tagging`` per tag of the thread;
* ``target`` of a thread's first post: a ``SpecificResource`` whose ``source`` is the
  dataset version or image URI and which carries the anchor losslessly as
  ``nanorepo:anchor`` (a JSON literal). A region also gets ``selector`` alternatives, as the
  model allows (each describes the same segment): a ``nanorepo:PhysicalRegion`` selector
  with the physical (nm) geometry, and — when the image row is known — a
  ``FragmentSelector`` conforming to Media Fragments (``xywh=pixel:…`` of the full-resolution
  bounding box), which generic viewers understand. Media Fragments only know pixels and
  percent, so the physical anchor stays the source of truth;
* replies: ``motivation`` as posted (``replying`` by default) and ``target`` the IRI of the
  annotation replied to, as in the model's own reply example;
* thread title and status, which the model has no term for, as ``nanorepo:title`` and
  ``nanorepo:status``.

Deleted threads and posts are left out. :func:`import_collection` reads such a document
back (validating all of it before writing anything).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlmodel import Session, col, select

from nanorepo.annotations._anchor import normalise_anchor, region_to_pixels
from nanorepo.annotations._markdown import plain_text, render_markdown
from nanorepo.annotations._posts import reply
from nanorepo.annotations._threads import (
    MOTIVATIONS,
    STATUSES,
    _tags,
    create_thread,
    set_status,
)
from nanorepo.catalog._catalog import row_id
from nanorepo.catalog.models import Dataset, Image, Post, PostRevision, Thread, Version
from nanorepo.errors import InvalidInput

__all__ = [
    "ANNO_CONTEXT",
    "IMPORT_RENDER_BUDGET_S",
    "MAX_IMPORT_ITEMS",
    "NANOREPO_NS",
    "export_collection",
    "import_collection",
]

#: The Web Annotation JSON-LD context.
ANNO_CONTEXT = "http://www.w3.org/ns/anno.jsonld"
#: Namespace of nanorepo's own terms (anchor, title, status).
NANOREPO_NS = "https://w3id.org/nanorepo/ns#"
_CONTEXT: list[Any] = [
    ANNO_CONTEXT,
    {
        "@version": 1.1,
        "nanorepo": NANOREPO_NS,
        "nanorepo:anchor": {"@id": "nanorepo:anchor", "@type": "@json"},
    },
]
_MEDIA_FRAGS = "http://www.w3.org/TR/media-frags/"
#: Most annotations one import may carry (a long discussion has a few hundred posts).
MAX_IMPORT_ITEMS = 1_000
#: Most seconds the rendering of one import may take in all (each post also has the
#: per-post budget of :data:`~nanorepo.annotations._markdown.RENDER_BUDGET_S`).
IMPORT_RENDER_BUDGET_S = 10.0


def _time(value: Any) -> str:
    return str(value.isoformat())


def _source(base: str, ref: str, t: Thread) -> str:
    uri = f"{base}/datasets/{ref}/versions/{t.version}"
    return f"{uri}/images/{t.image}" if t.image else uri


def _target(
    base: str, ref: str, t: Thread, images: Mapping[tuple[int, str], Image]
) -> dict[str, Any]:
    target: dict[str, Any] = {
        "type": "SpecificResource",
        "source": _source(base, ref, t),
        "nanorepo:anchor": dict(t.anchor),
    }
    if t.anchor.get("kind") == "region":
        geometry = {k: v for k, v in t.anchor.items() if k not in {"kind", "image"}}
        selectors: list[dict[str, Any]] = [{"type": "nanorepo:PhysicalRegion", **geometry}]
        image = images.get((t.version, str(t.image)))
        if image is not None:
            box = region_to_pixels(t.anchor, image, 0)
            (x0, x1), (y0, y1) = box["x"], box["y"]
            selectors.append(
                {
                    "type": "FragmentSelector",
                    "conformsTo": _MEDIA_FRAGS,
                    "value": f"xywh=pixel:{x0},{y0},{x1 - x0},{y1 - y0}",
                }
            )
        target["selector"] = selectors
    return target


def export_collection(
    threads_with_posts: Iterable[tuple[Thread, Sequence[Post]]],
    *,
    dataset_ref: str,
    base_uri: str,
    images: Mapping[tuple[int, str], Image] | None = None,
) -> dict[str, Any]:
    """Export threads as a W3C Web Annotation ``AnnotationCollection`` (JSON-LD).

    Parameters
    ----------
    threads_with_posts:
        Each thread with its posts in writing order (e.g. from
        :func:`nanorepo.annotations.posts`); deleted ones are skipped.
    dataset_ref:
        The dataset accession, used in every URI.
    base_uri:
        The service's public base URI; annotation ids are
        ``{base_uri}/datasets/{ref}/threads/{thread}/posts/{post}``, stable for ever.
    images:
        Image rows by ``(version number, image name)``; where given, regions also get a
        pixel ``FragmentSelector`` for generic viewers.
    """
    base = base_uri.rstrip("/")
    coll = f"{base}/datasets/{dataset_ref}/annotations"
    items: list[dict[str, Any]] = []
    for t, thread_posts in threads_with_posts:
        if t.state != "active":
            continue
        live = [p for p in thread_posts if p.state == "active"]
        if not live:
            continue
        turi = f"{base}/datasets/{dataset_ref}/threads/{t.id}"
        ids = {p.id: f"{turi}/posts/{p.id}" for p in live}
        first = live[0]
        for p in live:
            ann: dict[str, Any] = {
                "id": ids[p.id],
                "type": "Annotation",
                "motivation": p.motivation,
                "creator": {"type": "Person", "nickname": p.author},
                "created": _time(p.created),
                "modified": _time(p.updated),
            }
            body = {"type": "TextualBody", "value": p.body, "format": "text/markdown",
                    "purpose": p.motivation}  # fmt: skip
            if p is first:
                ann["body"] = [body] + [
                    {"type": "TextualBody", "purpose": "tagging", "value": tag} for tag in t.tags
                ]
                ann["target"] = _target(base, dataset_ref, t, images or {})
                ann["nanorepo:title"] = t.title
                ann["nanorepo:status"] = t.status
            else:
                ann["body"] = body
                ann["target"] = ids.get(p.parent_id, ids[first.id])
            items.append(ann)
    return {
        "@context": _CONTEXT,
        "id": coll,
        "type": "AnnotationCollection",
        "label": f"Annotation threads of {dataset_ref}",
        "total": len(items),
        "first": {
            "id": f"{coll}?page=0",
            "type": "AnnotationPage",
            "partOf": coll,
            "startIndex": 0,
            "items": items,
        },
    }


# -- import --------------------------------------------------------------------------------


def _need(cond: bool, where: str, problem: str) -> None:
    if not cond:
        raise InvalidInput(
            f"{where}: {problem}",
            hint="import a collection written by export_collection (W3C Web Annotation "
            "JSON-LD); nothing was imported",
        )


def _bodies(where: str, ann: Mapping[str, Any]) -> tuple[str, list[str]]:
    raw = ann.get("body")
    bodies: list[Any] = raw if isinstance(raw, list) else [raw]
    text: str | None = None
    tags: list[str] = []
    for b in bodies:
        _need(isinstance(b, Mapping) and b.get("type") == "TextualBody", where,
              "every body must be a TextualBody")  # fmt: skip
        value = b.get("value")
        _need(isinstance(value, str), where, "a TextualBody needs a text value")
        if b.get("purpose") == "tagging":
            tags.append(value)
        else:
            _need(text is None, where, "more than one text body")
            _need(b.get("format", "text/markdown") in {"text/markdown", "text/plain"}, where,
                  "the text body must be text/markdown or text/plain")  # fmt: skip
            text = value
    _need(text is not None, where, "no text body")
    return str(text), tags


def _images_of(s: Session, dataset: Dataset, version: int) -> dict[str, Image]:
    v = s.exec(
        select(Version).where(Version.dataset_id == row_id(dataset), Version.number == version)
    ).first()
    if v is None:
        raise InvalidInput(
            f"{dataset.accession} has no version {version}",
            hint=f"versions run from 1 to {dataset.latest_version}",
        )
    rows = s.exec(select(Image).where(Image.version_id == v.id).order_by(col(Image.name)))
    return {im.name: im for im in rows.all()}


def import_collection(
    s: Session,
    dataset: Dataset,
    doc: Any,
    *,
    who: str,
    version: int,
    keep_creators: bool = False,
) -> list[Thread]:
    """Recreate threads and replies from an exported ``AnnotationCollection``.

    The whole document is validated first (structure, motivations, anchors against the
    images of ``dataset`` at ``version``, titles, tags, bodies); any problem raises
    :class:`InvalidInput` before anything is written. Each post's first revision records
    the annotation it came from. Caller commits.

    Parameters
    ----------
    who:
        The importing user; recorded on every revision and event.
    keep_creators:
        Keep each post's ``creator`` as its author (a curator migrating a discussion);
        otherwise ``who`` authors every post.
    """
    _need(isinstance(doc, Mapping), "document", "must be a JSON object")
    ctx = doc.get("@context")
    ctxs = ctx if isinstance(ctx, list) else [ctx]
    _need(ANNO_CONTEXT in ctxs, "@context", f"must include {ANNO_CONTEXT}")
    _need(doc.get("type") == "AnnotationCollection", "type", "must be AnnotationCollection")
    page = doc.get("first")
    _need(isinstance(page, Mapping) and page.get("type") == "AnnotationPage", "first",
          "must be an embedded AnnotationPage")  # fmt: skip
    _need("next" not in page, "first.next", "only single-page collections can be imported")
    items = page.get("items")
    _need(isinstance(items, list) and len(items) <= MAX_IMPORT_ITEMS, "first.items",
          f"must be a list of at most {MAX_IMPORT_ITEMS:,} annotations (split a longer "
          "collection into several imports)")  # fmt: skip
    deadline = time.monotonic() + IMPORT_RENDER_BUDGET_S
    images = _images_of(s, dataset, version)

    openers: list[dict[str, Any]] = []
    replies: dict[str, dict[str, Any]] = {}
    seen: set[str] = set()
    for i, ann in enumerate(items):
        where = f"annotation {i}"
        _need(isinstance(ann, Mapping) and ann.get("type") == "Annotation", where,
              "must be an object of type Annotation")  # fmt: skip
        aid = ann.get("id")
        _need(isinstance(aid, str) and aid not in seen, where, "needs a unique id")
        seen.add(aid)
        where = f"annotation {aid}"
        mot = ann.get("motivation", "commenting")
        _need(mot in MOTIVATIONS, where, f"unknown motivation {mot!r}")
        creator = ann.get("creator")
        nick = creator.get("nickname") if isinstance(creator, Mapping) else creator
        author = plain_text(nick, "creator", 255) if keep_creators and nick else who
        try:
            text, tags = _bodies(where, ann)
            render_markdown(text)
            _need(time.monotonic() < deadline, "first.items",
                  f"takes more than {IMPORT_RENDER_BUDGET_S:g} s to render in all; import it "
                  "in smaller parts")  # fmt: skip
            target = ann.get("target")
            entry = {"id": aid, "motivation": mot, "text": text, "author": author}
            if isinstance(target, str):
                _need(not tags, where, "tags belong to a thread's first annotation")
                replies[aid] = {**entry, "parent": target}
                continue
            _need(isinstance(target, Mapping) and isinstance(target.get("nanorepo:anchor"),
                  Mapping), where, "the target has no nanorepo:anchor")  # fmt: skip
            anchor = dict(target["nanorepo:anchor"])
            image = images.get(str(anchor.get("image"))) if anchor.get("image") else None
            status = ann.get("nanorepo:status", "open")
            _need(status in STATUSES, where, f"status must be open or resolved, not {status!r}")
            openers.append(
                {**entry, "anchor": normalise_anchor(anchor, image), "image": image,
                 "title": plain_text(ann.get("nanorepo:title", text[:80]), "title", 300),
                 "tags": _tags(tags), "status": status}
            )  # fmt: skip
        except InvalidInput as exc:
            if exc.message.startswith(where):
                raise
            raise InvalidInput(f"{where}: {exc.message}", hint=exc.hint) from None

    # Every reply must reach a first post through its chain of targets (no loops, no strays).
    roots = {o["id"] for o in openers}
    for aid, r in replies.items():
        chain, cur = {aid}, r["parent"]
        while cur not in roots:
            _need(cur in replies and cur not in chain, f"annotation {aid}",
                  f"replies to {cur!r}, which is not an annotation of this collection")  # fmt: skip
            chain.add(cur)
            cur = replies[cur]["parent"]

    created: list[Thread] = []
    post_ids: dict[str, tuple[Thread, int]] = {}
    revisions: list[tuple[int, str]] = []
    for o in openers:
        t = create_thread(
            s, dataset, version=version, image_row=o["image"], anchor=o["anchor"],
            title=o["title"], body=o["text"], motivation=o["motivation"], tags=o["tags"],
            who=who,
        )  # fmt: skip
        first = s.exec(select(Post).where(Post.thread_id == t.id)).one()
        first.author = o["author"]
        s.add(first)
        post_ids[o["id"]] = (t, row_id(first))
        revisions.append((row_id(first), o["id"]))
        created.append(t)
    pending = dict(replies)
    while pending:  # parents before children; the check above guarantees progress
        for aid in [a for a, r in pending.items() if r["parent"] in post_ids]:
            r = pending.pop(aid)
            t, parent = post_ids[r["parent"]]
            p = reply(s, t, body=r["text"], who=who, parent_id=parent, motivation=r["motivation"])
            p.author = r["author"]
            s.add(p)
            post_ids[aid] = (t, row_id(p))
            revisions.append((row_id(p), aid))
    for pid, aid in revisions:
        rev = s.exec(select(PostRevision).where(PostRevision.post_id == pid)).one()
        rev.reason = f"imported from {aid}"[:1000]
        s.add(rev)
    for o, t in zip(openers, created, strict=True):
        if o["status"] != "open":
            set_status(s, t, o["status"], who)
    s.flush()
    return created
