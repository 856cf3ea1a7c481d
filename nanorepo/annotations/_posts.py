"""Posts of annotation threads: replies, edits with their full history, deletion.

Same rules as :mod:`nanorepo.annotations._threads`: the caller's session, no commit, no
permission check. A post's ``rev`` counts versions of its text; every version is a
:class:`~nanorepo.catalog.models.PostRevision` (``edited`` is ``rev > 1``). Edits use
compare-and-set on ``rev`` (``UPDATE ... WHERE rev = seen``), so concurrent editors never
overwrite each other unseen, on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, update
from sqlmodel import Session, col, select

from nanorepo.annotations._threads import (
    _ATTEMPTS,
    EditConflict,
    _active_thread,
    _body,
    _change_thread,
    _motivation,
    _post_state,
    _reason,
    _touch,
    _who,
)
from nanorepo.catalog._catalog import row_id
from nanorepo.catalog.models import Post, PostRevision, Thread, utcnow
from nanorepo.errors import Conflict, InvalidInput, NanorepoError

__all__ = [
    "PostNotFound",
    "delete_post",
    "edit_post",
    "get_post",
    "post_history",
    "posts",
    "reply",
]


class PostNotFound(NanorepoError, LookupError):
    """No post of that id in that thread."""


def reply(
    s: Session,
    thread: Thread,
    *,
    body: str,
    who: str,
    parent_id: int | None = None,
    motivation: str = "replying",
) -> Post:
    """Add a post to a thread, as a reply to the thread or (``parent_id``) to one post."""
    tid = row_id(thread)
    text, html = _body(body)
    mot, who = _motivation(motivation), _who(who)
    _active_thread(s, tid)
    if parent_id is not None:
        parent = s.get(Post, parent_id)
        if parent is None or parent.thread_id != tid:
            raise InvalidInput(
                f"post {parent_id} is not a post of thread {tid}",
                hint="reply to a post of the same thread, or leave out parent_id",
            )
        if parent.state != "active":
            raise InvalidInput(
                f"post {parent_id} is deleted", hint="reply to the thread instead (no parent_id)"
            )
    now = utcnow()
    p = Post(
        thread_id=tid, parent_id=parent_id, author=who, motivation=mot, body=text, html=html,
        created=now, updated=now, rev=1,
    )  # fmt: skip
    s.add(p)
    s.flush()
    s.add(PostRevision(post_id=row_id(p), rev=1, body=text, who=who, when=now, reason=""))
    _touch(s, tid, now)
    s.flush()
    return p


def edit_post(
    s: Session,
    post: Post,
    *,
    body: str,
    who: str,
    expected_rev: int | None,
    reason: str = "",
) -> Post:
    """Replace a post's text, keeping the previous one as a revision.

    ``expected_rev`` is the post revision the editor started from; if another edit came
    first, :class:`EditConflict` is raised with the newer text (``current``) and the
    caller's (``yours``), and nothing changes. ``None`` applies the edit to whatever is
    current (retrying internally on a race). Returns the post, refreshed.
    """
    pid = row_id(post)
    text, html = _body(body)
    who, why = _who(who), _reason(reason)
    for _attempt in range(_ATTEMPTS):
        p = s.exec(
            select(Post).where(col(Post.id) == pid).execution_options(populate_existing=True)
        ).one()
        if p.state != "active":
            raise Conflict(f"post {pid} is deleted", hint="deleted posts cannot be edited")
        _active_thread(s, p.thread_id)
        seen = p.rev
        if expected_rev is not None and seen != expected_rev:
            raise EditConflict(
                f"post {pid} changed since you read it (revision {seen}, not {expected_rev}); "
                "your edit was not saved",
                hint=f"merge your text into revision {seen} (sent back as 'current', yours as "
                f"'yours') and save again with revision {seen}",
                current=_post_state(p),
                yours=text,
            )
        if p.body == text:
            return p
        now = utcnow()
        result = s.execute(
            update(Post)
            .where(col(Post.id) == pid, col(Post.rev) == seen)
            .values(body=text, html=html, rev=seen + 1, updated=now)
        )
        if getattr(result, "rowcount", 0) != 1:
            continue
        s.add(PostRevision(post_id=pid, rev=seen + 1, body=text, who=who, when=now, reason=why))
        _touch(s, p.thread_id, now)
        s.flush()
        s.expire(p)
        return p
    raise Conflict(f"post {pid} is being edited by many at once", hint="try again")


def delete_post(s: Session, post: Post, who: str, expected_rev: int | None = None) -> Post:
    """Mark a reply deleted (its revisions stay) and record it as a thread change.

    ``expected_rev`` is the post's revision. The first post opens the thread and cannot be
    deleted alone; delete the thread instead.
    """
    pid = row_id(post)
    who = _who(who)
    p = s.exec(
        select(Post).where(col(Post.id) == pid).execution_options(populate_existing=True)
    ).one()
    first = s.exec(select(func.min(Post.id)).where(col(Post.thread_id) == p.thread_id)).one()
    if pid == first:
        raise InvalidInput(
            f"post {pid} opens its thread and cannot be deleted on its own",
            hint="delete the thread instead",
        )
    if p.state != "active":
        return p
    if expected_rev is not None and p.rev != expected_rev:
        raise EditConflict(
            f"post {pid} changed since you read it (revision {p.rev}, not {expected_rev}); "
            "it was not deleted",
            hint=f"read the current text (sent back as 'current'); delete with revision {p.rev}",
            current=_post_state(p),
        )
    _active_thread(s, p.thread_id)
    now = utcnow()
    cond = [col(Post.id) == pid, col(Post.state) == "active"]
    if expected_rev is not None:
        cond.append(col(Post.rev) == expected_rev)
    result = s.execute(update(Post).where(*cond).values(state="deleted", updated=now))
    if getattr(result, "rowcount", 0) != 1:
        s.expire(p)
        if expected_rev is not None and p.state == "active":
            raise EditConflict(
                f"post {pid} changed while being deleted",
                hint="read it again and retry",
                current=_post_state(p),
            )
        return p
    thread = s.exec(select(Thread).where(col(Thread.id) == p.thread_id)).one()
    _change_thread(
        s, thread, "post-deleted",
        lambda t: ({"post": pid, "state": "active"}, {"post": pid, "state": "deleted"}, {}),
        who=who, expected_rev=None, yours=None,
    )  # fmt: skip
    s.expire(p)
    return p


def get_post(s: Session, thread_id: int, post_id: int) -> Post:
    """The post ``post_id`` of thread ``thread_id`` (deleted ones too: see ``state``)."""
    p = s.get(Post, post_id)
    if p is None or p.thread_id != thread_id:
        raise PostNotFound(
            f"thread {thread_id} has no post {post_id}", hint="list the thread's posts"
        )
    return p


def posts(s: Session, thread_id: int, *, include_deleted: bool = False) -> Sequence[Post]:
    """The posts of a thread in the order they were written."""
    q = select(Post).where(Post.thread_id == thread_id)
    if not include_deleted:
        q = q.where(Post.state == "active")
    return s.exec(q.order_by(col(Post.id))).all()


def post_history(s: Session, post_id: int) -> Sequence[PostRevision]:
    """Every version of a post's text, oldest (revision 1) first."""
    return s.exec(
        select(PostRevision).where(PostRevision.post_id == post_id).order_by(col(PostRevision.rev))
    ).all()
