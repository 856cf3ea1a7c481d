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

import re
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import unquote

from sqlmodel import Session, col, select

from nanorepo.annotations._anchor import normalise_anchor, region_to_pixels
from nanorepo.annotations._markdown import plain_text, render_markdown
from nanorepo.annotations._posts import reply
from nanorepo.annotations._selectors import TARGET_HINT, foreign_anchor
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
        The dataset accession (a ``@v<n>`` suffix is ignored: every URI is one the
        service answers, and those name the dataset by its accession).
    base_uri:
        The service's public base URI. Every id resolves there: the collection is
        ``{base_uri}/datasets/{acc}/annotations``, an annotation is
        ``{base_uri}/datasets/{acc}/threads/{thread}#post-{post}`` (the thread, which holds
        the post; a hash IRI, as Linked Data names a part of a document), a target's
        source ``{base_uri}/datasets/{acc}/versions/{v}[/images/{name}]``.
    images:
        Image rows by ``(version number, image name)``; where given, regions also get a
        pixel ``FragmentSelector`` for generic viewers.
    """
    base = base_uri.rstrip("/")
    # The routes are addressed by the accession alone ("S-NANO1", not "S-NANO1@v2"): the
    # version of each thread is in its target's source.
    accession = dataset_ref.partition("@")[0]
    coll = f"{base}/datasets/{accession}/annotations"
    items: list[dict[str, Any]] = []
    for t, thread_posts in threads_with_posts:
        if t.state != "active":
            continue
        live = [p for p in thread_posts if p.state == "active"]
        if not live:
            continue
        turi = f"{base}/datasets/{accession}/threads/{t.id}"
        ids = {p.id: f"{turi}#post-{p.id}" for p in live}
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
                ann["target"] = _target(base, accession, t, images or {})
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

_HINT = (
    "import W3C Web Annotation JSON-LD: an AnnotationCollection with its annotations in one "
    "embedded AnnotationPage; nothing was imported"
)
_TEXT_FORMATS = {"text/markdown", "text/plain"}


def _need(cond: bool, where: str, problem: str, hint: str = _HINT) -> None:
    if not cond:
        raise InvalidInput(f"{where}: {problem}", hint=hint)


def _tag_of(where: str, body: Mapping[str, Any]) -> str:
    """The tag a ``SpecificResource`` tagging body stands for: its ``label``, else the
    last part (fragment or path segment) of its ``source`` IRI (``…/terms#nucleus`` →
    ``nucleus``)."""
    label = body.get("label")
    if isinstance(label, str) and label.strip():
        return label
    src = body.get("source")
    src = src.get("id") if isinstance(src, Mapping) else src
    _need(isinstance(src, str) and bool(src.strip("/#")), where,
          "a tagging SpecificResource body needs a source IRI or a label")  # fmt: skip
    return unquote(re.split(r"[#/:]", str(src).rstrip("/#"))[-1])


def _bodies(where: str, ann: Mapping[str, Any]) -> tuple[str | None, list[str]]:
    """The text (Markdown or plain) and the tags of an annotation's bodies."""
    if "body" in ann:
        raw = ann["body"]
    elif "bodyValue" in ann:
        raw = {"type": "TextualBody", "value": ann["bodyValue"], "format": "text/plain"}
    else:
        raw = []
    bodies: list[Any] = raw if isinstance(raw, list) else [raw]
    text: str | None = None
    tags: list[str] = []
    for b in bodies:
        _need(isinstance(b, Mapping), where, "every body must be an object")
        kind = b.get("type", "TextualBody" if "value" in b else None)
        if kind == "SpecificResource" and b.get("purpose") == "tagging":
            tags.append(_tag_of(where, b))
            continue
        _need(kind == "TextualBody", where,
              f"a body of type {kind!r} cannot be imported (nanorepo reads TextualBody "
              "bodies and tagging SpecificResource bodies)")  # fmt: skip
        value = b.get("value")
        _need(isinstance(value, str), where, "a TextualBody needs a text value")
        if b.get("purpose") == "tagging":
            tags.append(value)
        else:
            _need(text is None, where, "more than one text body")
            _need(b.get("format", "text/markdown") in _TEXT_FORMATS, where,
                  "the text body must be text/markdown or text/plain")  # fmt: skip
            text = value
    return text, tags


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


def _parent(target: Any, ids: set[str]) -> str | None:
    """The annotation of the collection ``target`` replies to, if it is one."""
    if isinstance(target, Mapping) and "selector" not in target:
        target = target.get("source", target.get("id"))
    return target if isinstance(target, str) and target in ids else None


def import_collection(
    s: Session,
    dataset: Dataset,
    doc: Any,
    *,
    who: str,
    version: int,
    keep_creators: bool = False,
    skipped: list[str] | None = None,
) -> list[Thread]:
    """Recreate threads and replies from an ``AnnotationCollection``, nanorepo's own
    export or one written by another tool.

    The whole document is validated first (structure, motivations, anchors against the
    images of ``dataset`` at ``version``, titles, tags, bodies) before anything is
    written. Each post's first revision records the annotation it came from. Caller
    commits.

    An annotation starts a thread unless its target is another annotation of the
    collection (then it is a reply). Its anchor is ``nanorepo:anchor`` when present;
    otherwise it is mapped from the target, in nanometres through the image's pixel
    size: a string or ``source`` naming an image (``…/images/cell1``, ``cell1.png``) or
    the dataset; a ``FragmentSelector`` ``xywh=`` box in pixels or percent; an
    ``SvgSelector`` with one polygon, polyline, rect or straight-edged path in the
    image's full-resolution pixels (of several alternative selectors, the first that maps).
    Bodies: one ``TextualBody`` text (Markdown or plain; ``bodyValue`` too) and tags from
    ``TextualBody`` or ``SpecificResource`` bodies with purpose ``tagging``; an annotation
    with tags but no text is posted as its list of tags.

    Parameters
    ----------
    who:
        The importing user; recorded on every revision and event.
    keep_creators:
        Keep each post's ``creator`` as its author (a curator migrating a discussion);
        otherwise ``who`` authors every post.
    skipped:
        Where given, an annotation that cannot be imported (and any reply to it) is left
        out and described here (``"annotation <id>: <why>"``), and the others are
        imported; otherwise the first such problem raises and nothing is imported.
        Problems of the document itself (not a collection, too many items) always raise.
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
    failed: set[str] = set()

    def fail(where: str, exc: InvalidInput) -> None:
        message = exc.message if exc.message.startswith(where) else f"{where}: {exc.message}"
        if skipped is None:
            raise InvalidInput(message, hint=exc.hint) from None
        skipped.append(message)

    ids = {a["id"] for a in items if isinstance(a, Mapping) and isinstance(a.get("id"), str)}
    openers: list[dict[str, Any]] = []
    replies: dict[str, dict[str, Any]] = {}
    seen: set[str] = set()
    for i, ann in enumerate(items):
        where = f"annotation {i}"
        try:
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
            text, tags = _bodies(where, ann)
            target = ann.get("target")
            parent_id = _parent(target, ids)
            _need(text is not None or (bool(tags) and parent_id is None), where, "no text body")
            text = text if text is not None else "Tags: " + ", ".join(tags)
            render_markdown(text)
            entry = {"id": aid, "motivation": mot, "text": text, "author": author}
            if parent_id is not None:
                _need(not tags, where, "tags belong to a thread's first annotation")
                replies[aid] = {**entry, "parent": parent_id}
                continue
            _need(target is not None, where, "has no target", TARGET_HINT)
            if isinstance(target, Mapping) and "nanorepo:anchor" in target:
                _need(isinstance(target["nanorepo:anchor"], Mapping), where,
                      "the target's nanorepo:anchor must be an object")  # fmt: skip
                anchor = dict(target["nanorepo:anchor"])
                name = anchor.get("image")
                image = images.get(str(name)) if name else None
            else:
                anchor, image = foreign_anchor(where, target, images, dataset)
            status = ann.get("nanorepo:status", "open")
            _need(status in STATUSES, where, f"status must be open or resolved, not {status!r}")
            openers.append(
                {**entry, "anchor": normalise_anchor(anchor, image), "image": image,
                 "title": plain_text(ann.get("nanorepo:title", text[:80]), "title", 300),
                 "tags": _tags(tags), "status": status}
            )  # fmt: skip
        except InvalidInput as exc:
            if isinstance(ann, Mapping) and isinstance(ann.get("id"), str):
                failed.add(ann["id"])
            fail(where, exc)
        _need(time.monotonic() < deadline, "first.items",
              f"takes more than {IMPORT_RENDER_BUDGET_S:g} s to render in all; import it "
              "in smaller parts")  # fmt: skip

    # Every reply must reach a first post through its chain of targets (no loops, no strays).
    roots = {o["id"] for o in openers}
    for aid in list(replies):
        chain, cur = {aid}, replies[aid]["parent"]
        try:
            while cur not in roots:
                _need(cur not in failed, f"annotation {aid}",
                      f"replies to {cur!r}, which was not imported")  # fmt: skip
                _need(cur in replies and cur not in chain, f"annotation {aid}",
                      f"replies to {cur!r}, which is not an annotation of this collection "
                      "or is in a loop of replies")  # fmt: skip
                chain.add(cur)
                cur = replies[cur]["parent"]
        except InvalidInput as exc:
            failed.add(aid)
            del replies[aid]
            fail(f"annotation {aid}", exc)

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
