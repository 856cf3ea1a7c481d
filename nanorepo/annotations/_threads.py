"""Annotation threads: open, resolve, retag, retitle, delete, and read back.

Posts (replies, edits, their history) are in :mod:`nanorepo.annotations._posts`.

Every function takes the caller's session and never commits (the service commits once per
request, so a request either happens whole or not at all) and never checks permissions
(the service decides who may do what, DESIGN.md invariant 5).

Nothing is lost (invariant 2): each version of a post's text is a :class:`PostRevision`
(revision 1 is the original, ``edited`` is simply ``rev > 1``), each change of a thread is
a :class:`ThreadEvent` (who, when, old, new), and deleting is a recorded change of
``state``, never a ``DELETE``.

Concurrent edits use the compare-and-set of :meth:`nanorepo.catalog.Catalog.set_mutable`:
read the revision, ``UPDATE ... WHERE rev = seen``, and if no row changed someone else
was first. That works the same on SQLite (no row locks) and PostgreSQL. A caller that
passes ``expected_rev`` (the service's ``If-Match``) gets :class:`EditConflict` when it is
stale, carrying the current state so the user can merge instead of losing either text.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from sqlalchemy import func, update
from sqlmodel import Session, col, select

from nanorepo.annotations._anchor import normalise_anchor
from nanorepo.annotations._markdown import plain_text, render_markdown
from nanorepo.catalog._catalog import row_id
from nanorepo.catalog.models import (
    Dataset,
    Image,
    Post,
    PostRevision,
    Thread,
    ThreadEvent,
    Version,
    utcnow,
)
from nanorepo.errors import Conflict, InvalidInput, NanorepoError

__all__ = [
    "MAX_TAGS",
    "MOTIVATIONS",
    "STATUSES",
    "EditConflict",
    "ThreadNotFound",
    "create_thread",
    "delete_thread",
    "get_thread",
    "list_threads",
    "retitle",
    "set_status",
    "set_tags",
    "thread_counts",
    "thread_events",
]

#: Motivations of the W3C Web Annotation vocabulary (https://www.w3.org/TR/annotation-vocab/).
MOTIVATIONS = (
    "assessing", "bookmarking", "classifying", "commenting", "describing", "editing",
    "highlighting", "identifying", "linking", "moderating", "questioning", "replying",
    "tagging",
)  # fmt: skip
#: What a thread's ``status`` may be.
STATUSES = ("open", "resolved")
#: Most tags per thread; each tag has at most :data:`_MAX_TAG` characters.
MAX_TAGS = 32
_MAX_TAG = 64
_MAX_TITLE = 300
_MAX_REASON = 1000
_ATTEMPTS = 100


class ThreadNotFound(NanorepoError, LookupError):
    """No thread of that id in that dataset (or it was deleted and deleted ones are hidden)."""


class EditConflict(Conflict):
    """A post or thread changed since the caller read it; nothing was written.

    Attributes
    ----------
    current:
        The state now stored (for a post: ``rev``, ``body``, ``author``, ``updated``; for a
        thread: ``rev``, ``title``, ``tags``, ``status``, ``state``), so a client can show
        the newer text beside the user's own and let them merge.
    yours:
        What the caller tried to write, returned so it is not lost either.
    """

    def __init__(
        self, message: str, *, hint: str, current: dict[str, Any], yours: Any = None
    ) -> None:
        super().__init__(message, hint=hint)
        self.current = current
        self.yours = yours


# -- validation ----------------------------------------------------------------------------


def _who(who: Any) -> str:
    if not isinstance(who, str) or not who.strip() or len(who) > 255:
        raise InvalidInput(f"the acting user must be a name, not {who!r}")
    return who


def _motivation(m: Any) -> str:
    if m not in MOTIVATIONS:
        raise InvalidInput(
            f"motivation {m!r} is not a W3C Web Annotation motivation",
            hint="use one of: " + ", ".join(MOTIVATIONS),
        )
    return str(m)


def _tags(tags: Any) -> list[str]:
    if isinstance(tags, str) or not isinstance(tags, Iterable):
        raise InvalidInput(f"tags must be a list of words, not {tags!r}", hint='e.g. ["npc"]')
    out: list[str] = []
    for tag in tags:
        t = plain_text(tag, "tag", _MAX_TAG)
        if t.casefold() not in {o.casefold() for o in out}:
            out.append(t)
    if len(out) > MAX_TAGS:
        raise InvalidInput(f"{len(out)} tags given; a thread has at most {MAX_TAGS}")
    return out


def _body(body: Any) -> tuple[str, str]:
    html = render_markdown(body)
    if not body.strip():
        raise InvalidInput("the post is empty", hint="write some Markdown text")
    return body, html


def _reason(reason: Any) -> str:
    if not isinstance(reason, str):
        raise InvalidInput(f"a reason must be text, not {type(reason).__name__}")
    return reason.strip()[:_MAX_REASON]


def _post_state(p: Post) -> dict[str, Any]:
    return {"rev": p.rev, "body": p.body, "author": p.author, "updated": p.updated.isoformat()}


def _thread_state(t: Thread) -> dict[str, Any]:
    return {"rev": t.rev, "title": t.title, "tags": list(t.tags), "status": t.status,
            "state": t.state}  # fmt: skip


# -- writing -------------------------------------------------------------------------------


def create_thread(
    s: Session,
    dataset: Dataset,
    *,
    version: int,
    image_row: Image | None,
    anchor: Any,
    title: str,
    body: str,
    motivation: str = "commenting",
    tags: Iterable[str] = (),
    who: str,
) -> Thread:
    """Open a thread: the thread, its first post (revision 1) and a ``created`` event.

    Parameters
    ----------
    dataset:
        The dataset row the thread belongs to.
    version:
        The dataset version the author was looking at (anchors are checked against it).
    image_row:
        The image an ``image`` or ``region`` anchor names, from that version; ``None`` for
        a dataset anchor.
    anchor:
        See :func:`nanorepo.annotations.normalise_anchor`; stored in canonical form.
    title, body, motivation, tags:
        Plain-text title, Markdown body, W3C motivation, plain-text tags.
    who:
        The acting user.
    """
    ds_id = row_id(dataset)
    if isinstance(version, bool) or not isinstance(version, int):
        raise InvalidInput(f"version must be a whole number, not {version!r}")
    if not 1 <= version <= dataset.latest_version:
        raise InvalidInput(
            f"{dataset.accession} has no version {version}",
            hint=f"versions run from 1 to {dataset.latest_version}",
        )
    if image_row is not None:
        v = s.exec(
            select(Version).where(Version.dataset_id == ds_id, Version.number == version)
        ).one()
        if image_row.version_id != v.id:
            raise InvalidInput(
                f"image {image_row.name!r} is not part of {dataset.accession} version {version}"
            )
    canonical = normalise_anchor(anchor, image_row)
    clean_title = plain_text(title, "title", _MAX_TITLE)
    clean_tags = _tags(tags)
    mot = _motivation(motivation)
    text, html = _body(body)
    who = _who(who)
    now = utcnow()
    t = Thread(
        dataset_id=ds_id, version=version, image=canonical.get("image"), anchor=canonical,
        title=clean_title, motivation=mot, tags=clean_tags, status="open", state="active",
        created_by=who, created=now, updated=now, rev=1,
    )  # fmt: skip
    s.add(t)
    s.flush()
    p = Post(
        thread_id=row_id(t), parent_id=None, author=who, motivation=mot, body=text,
        html=html, created=now, updated=now, rev=1,
    )  # fmt: skip
    s.add(p)
    s.flush()
    s.add(PostRevision(post_id=row_id(p), rev=1, body=text, who=who, when=now, reason=""))
    new = {"title": clean_title, "anchor": canonical, "tags": clean_tags, "status": "open",
           "motivation": mot, "version": version}  # fmt: skip
    s.add(ThreadEvent(thread_id=row_id(t), rev=1, what="created", new=new, who=who, when=now))
    s.flush()
    return t


def _active_thread(s: Session, thread_id: int) -> Thread:
    t = s.exec(
        select(Thread).where(col(Thread.id) == thread_id).execution_options(populate_existing=True)
    ).one()
    if t.state != "active":
        raise Conflict(f"thread {thread_id} is deleted", hint="deleted threads cannot change")
    return t


def _touch(s: Session, thread_id: int, when: Any) -> None:
    s.execute(update(Thread).where(col(Thread.id) == thread_id).values(updated=when))


def _change_thread(
    s: Session,
    thread: Thread,
    what: str,
    change: Callable[[Thread], tuple[Any, Any, dict[str, Any]]],
    *,
    who: str,
    expected_rev: int | None,
    yours: Any,
    allow_deleted: bool = False,
) -> Thread:
    """Compare-and-set one change of a thread, recording a :class:`ThreadEvent`.

    ``change(fresh_row)`` returns ``(old, new, column values)``; ``old == new`` means
    nothing to do (no revision, no event).
    """
    tid, who = row_id(thread), _who(who)
    for _attempt in range(_ATTEMPTS):
        t = s.exec(
            select(Thread).where(col(Thread.id) == tid).execution_options(populate_existing=True)
        ).one()
        seen = t.rev
        if expected_rev is not None and seen != expected_rev:
            raise EditConflict(
                f"thread {tid} changed since you read it (revision {seen}, not "
                f"{expected_rev}); nothing was changed",
                hint=f"look at the current thread (sent back as 'current') and, if your "
                f"change still applies, send it again with revision {seen}",
                current=_thread_state(t),
                yours=yours,
            )
        if t.state != "active" and not allow_deleted:
            raise Conflict(f"thread {tid} is deleted", hint="deleted threads cannot change")
        old, new, values = change(t)
        if old == new:
            return t
        now = utcnow()
        result = s.execute(
            update(Thread)
            .where(col(Thread.id) == tid, col(Thread.rev) == seen)
            .values(**values, rev=seen + 1, updated=now)
        )
        if getattr(result, "rowcount", 0) != 1:
            continue
        s.add(
            ThreadEvent(thread_id=tid, rev=seen + 1, what=what, old=old, new=new, who=who,
                        when=now)
        )  # fmt: skip
        s.flush()
        s.expire(t)
        return t
    raise Conflict(f"thread {tid} is being changed by many at once", hint="try again")


def set_status(
    s: Session, thread: Thread, status: str, who: str, expected_rev: int | None = None
) -> Thread:
    """Resolve (``"resolved"``) or reopen (``"open"``) a thread."""
    if status not in STATUSES:
        raise InvalidInput(f"status must be open or resolved, not {status!r}")
    return _change_thread(
        s, thread, "status", lambda t: (t.status, status, {"status": status}),
        who=who, expected_rev=expected_rev, yours=status,
    )  # fmt: skip


def set_tags(
    s: Session, thread: Thread, tags: Iterable[str], who: str, expected_rev: int | None = None
) -> Thread:
    """Replace a thread's tags (plain text, de-duplicated ignoring case, order kept)."""
    clean = _tags(tags)
    return _change_thread(
        s, thread, "tags", lambda t: (list(t.tags), clean, {"tags": clean}),
        who=who, expected_rev=expected_rev, yours=clean,
    )  # fmt: skip


def retitle(
    s: Session, thread: Thread, title: str, who: str, expected_rev: int | None = None
) -> Thread:
    """Change a thread's title (plain text, 1 to 300 characters)."""
    clean = plain_text(title, "title", _MAX_TITLE)
    return _change_thread(
        s, thread, "title", lambda t: (t.title, clean, {"title": clean}),
        who=who, expected_rev=expected_rev, yours=clean,
    )  # fmt: skip


def delete_thread(s: Session, thread: Thread, who: str, expected_rev: int | None = None) -> Thread:
    """Mark a thread deleted: hidden from lists and search, every row and revision kept."""
    return _change_thread(
        s, thread, "deleted", lambda t: (t.state, "deleted", {"state": "deleted"}),
        who=who, expected_rev=expected_rev, yours="deleted", allow_deleted=True,
    )  # fmt: skip


# -- reading -------------------------------------------------------------------------------


def get_thread(
    s: Session, dataset_id: int, thread_id: int, *, include_deleted: bool = False
) -> Thread:
    """The thread ``thread_id`` of dataset ``dataset_id``; :class:`ThreadNotFound` if none."""
    t = s.get(Thread, thread_id)
    if t is None or t.dataset_id != dataset_id or (t.state != "active" and not include_deleted):
        raise ThreadNotFound(
            f"dataset has no thread {thread_id}",
            hint="list the dataset's threads to find the id (deleted threads are not shown)",
        )
    return t


def list_threads(
    s: Session,
    dataset_id: int,
    *,
    image: str | None = None,
    status: str | None = None,
    after_id: int | None = None,
    limit: int = 50,
) -> tuple[list[Thread], int | None]:
    """A page of a dataset's active threads, oldest first, and the cursor of the next page.

    Keyset pagination: pass the returned cursor as ``after_id`` for the next page; it is
    ``None`` on the last page. ``image`` keeps threads anchored to that image (or regions
    of it); ``status`` keeps ``open`` or ``resolved`` ones.
    """
    if status is not None and status not in STATUSES:
        raise InvalidInput(f"status must be open or resolved, not {status!r}")
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 500:
        raise InvalidInput(f"limit must be 1 to 500, not {limit!r}")
    q = select(Thread).where(Thread.dataset_id == dataset_id, Thread.state == "active")
    if image is not None:
        q = q.where(Thread.image == image)
    if status is not None:
        q = q.where(Thread.status == status)
    if after_id is not None:
        q = q.where(col(Thread.id) > after_id)
    rows = list(s.exec(q.order_by(col(Thread.id)).limit(limit + 1)).all())
    if len(rows) > limit:
        return rows[:limit], row_id(rows[limit - 1])
    return rows, None


def thread_counts(s: Session, dataset_id: int, image: str | None = None) -> dict[str, int]:
    """How many active threads are ``open`` and ``resolved`` (of one image if given)."""
    q = (
        select(Thread.status, func.count())
        .where(Thread.dataset_id == dataset_id, Thread.state == "active")
        .group_by(col(Thread.status))
    )
    if image is not None:
        q = q.where(Thread.image == image)
    counts = dict.fromkeys(STATUSES, 0)
    for status, n in s.exec(q).all():
        counts[status] = int(n)
    return counts


def thread_events(s: Session, thread_id: int) -> Sequence[ThreadEvent]:
    """Every change of a thread, oldest first."""
    return s.exec(
        select(ThreadEvent)
        .where(ThreadEvent.thread_id == thread_id)
        .order_by(col(ThreadEvent.rev), col(ThreadEvent.id))
    ).all()
