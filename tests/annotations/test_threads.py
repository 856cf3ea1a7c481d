"""Thread lifecycle, history and concurrency, on SQLite and PostgreSQL."""

from __future__ import annotations

import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from sqlalchemy import create_engine
from sqlmodel import Session, select

import nanorepo.annotations as an
from nanorepo.catalog import Catalog
from nanorepo.catalog.models import Post, Thread
from nanorepo.errors import Conflict, InvalidInput, NanorepoError
from tests.annotations.conftest import Published

REGION = {"kind": "region", "image": "cell1", "x": [100, 300], "y": [100, 200]}


def open_thread(pub: Published, **kw: Any) -> tuple[int, int]:
    """Create a thread in its own transaction; returns (thread id, first post id)."""
    args: dict[str, Any] = dict(
        version=1, image_row=pub.images["cell1"], anchor=REGION, title="Ring diameter",
        body="The rings look *too small*.", tags=["npc"], who="alice",
    )  # fmt: skip
    args.update(kw)
    with pub.catalog.session() as s:
        t = an.create_thread(s, pub.dataset, **args)
        s.commit()
        (p,) = an.posts(s, t.id)
        return t.id, p.id


def test_thread_lifecycle_keeps_everything(published: Published) -> None:
    cat, ds_id = published.catalog, published.dataset.id
    tid, first = open_thread(published)
    with cat.session() as s:
        t = an.get_thread(s, ds_id, tid)
        assert (t.rev, t.status, t.state, t.image, t.version) == (1, "open", "active", "cell1", 1)
        assert t.anchor["unit"] == "nanometer" and t.tags == ["npc"]
        p = an.get_post(s, tid, first)
        assert p.html == "<p>The rings look <em>too small</em>.</p>\n" and p.rev == 1
        r1 = an.reply(s, t, body="Agreed, <script>x</script>", who="bob")
        r2 = an.reply(s, t, body="Which ones?", who="carol", parent_id=r1.id,
                      motivation="questioning")  # fmt: skip
        s.commit()
        assert "<script" not in r1.html and r2.parent_id == r1.id
        an.edit_post(s, p, body="The rings look **small**.", who="alice", expected_rev=1,
                     reason="tone")  # fmt: skip
        s.commit()
        assert (p.rev, p.body) == (2, "The rings look **small**.")
        assert "<strong>small</strong>" in p.html
        an.set_status(s, t, "resolved", "bob", expected_rev=1)
        an.set_tags(s, t, ["NPC", "npc", " ring  size "], "bob", expected_rev=2)
        an.retitle(s, t, "Ring diameter too small?", "alice", expected_rev=3)
        an.set_status(s, t, "resolved", "bob", expected_rev=4)  # no change: no revision
        an.set_status(s, t, "open", "carol")
        an.delete_post(s, r2, "carol", expected_rev=1)
        s.commit()
        assert (t.rev, t.status, t.tags, t.title) == (
            6, "open", ["NPC", "ring size"], "Ring diameter too small?")  # fmt: skip
        assert [x.id for x in an.posts(s, tid)] == [first, r1.id]
        assert [x.state for x in an.posts(s, tid, include_deleted=True)] == [
            "active", "active", "deleted"]  # fmt: skip
        assert [h.body for h in an.post_history(s, r2.id)] == ["Which ones?"]  # text kept
        hist = an.post_history(s, first)
        assert [(h.rev, h.who, h.reason) for h in hist] == [(1, "alice", ""), (2, "alice", "tone")]
        assert hist[0].body == "The rings look *too small*."
        events = an.thread_events(s, tid)
        assert [(e.rev, e.what, e.who) for e in events] == [
            (1, "created", "alice"), (2, "status", "bob"), (3, "tags", "bob"),
            (4, "title", "alice"), (5, "status", "carol"), (6, "post-deleted", "carol"),
        ]  # fmt: skip
        assert (events[1].old, events[1].new) == ("open", "resolved")
        assert (events[2].old, events[2].new) == (["npc"], ["NPC", "ring size"])
        assert events[5].new == {"post": r2.id, "state": "deleted"}
        assert all(e.when is not None for e in events)

        an.delete_thread(s, t, "curator", expected_rev=6)
        s.commit()
        assert t.state == "deleted" and t.rev == 7
        with pytest.raises(an.ThreadNotFound) as info:
            an.get_thread(s, ds_id, tid)
        assert isinstance(info.value, LookupError) and isinstance(info.value, NanorepoError)
        assert an.get_thread(s, ds_id, tid, include_deleted=True).state == "deleted"
        # nothing was erased
        assert len(s.exec(select(Post).where(Post.thread_id == tid)).all()) == 3
        assert an.thread_events(s, tid)[-1].what == "deleted"
        with pytest.raises(Conflict, match="deleted"):
            an.reply(s, t, body="late", who="bob")
        with pytest.raises(Conflict, match="deleted"):
            an.set_status(s, t, "resolved", "bob")


def test_bad_input_changes_nothing(published: Published) -> None:
    cat, ds = published.catalog, published.dataset
    tid, first = open_thread(published)
    _other, other_first = open_thread(published, anchor={"kind": "dataset"}, image_row=None)
    cases: list[tuple[dict[str, Any], str]] = [
        ({"title": "  "}, "title is empty"),
        ({"title": "x" * 301}, "at most 300"),
        ({"body": " \n"}, "the post is empty"),
        ({"body": "x" * 100_001}, "at most 100,000"),
        ({"motivation": "shouting"}, "not a W3C Web Annotation motivation"),
        ({"tags": "npc"}, "tags must be a list"),
        ({"tags": [f"t{i}" for i in range(33)]}, "at most 32"),
        ({"version": 2}, "has no version 2"),
        ({"anchor": {**REGION, "x": [0, 5000]}}, "extent along x"),
        ({"who": ""}, "acting user"),
    ]
    with cat.session() as s:
        for kw, match in cases:
            args: dict[str, Any] = dict(
                version=1, image_row=published.images["cell1"], anchor=REGION, title="t",
                body="b", who="alice",
            )  # fmt: skip
            args.update(kw)
            with pytest.raises(InvalidInput, match=match):
                an.create_thread(s, ds, **args)
        t = an.get_thread(s, ds.id, tid)
        with pytest.raises(InvalidInput, match="is not a post of thread"):
            an.reply(s, t, body="x", who="bob", parent_id=other_first)
        with pytest.raises(InvalidInput, match="status must be open or resolved"):
            an.set_status(s, t, "closed", "bob")
        with pytest.raises(InvalidInput, match="delete the thread instead"):
            an.delete_post(s, an.get_post(s, tid, first), "bob")
        with pytest.raises(an.PostNotFound):
            an.get_post(s, tid, other_first)
        with pytest.raises(an.ThreadNotFound):
            an.get_thread(s, ds.id + 1000, tid)
        s.commit()
    with cat.session() as s:
        assert len(s.exec(select(Thread)).all()) == 2
        assert an.thread_events(s, tid)[-1].rev == 1


def test_stale_revisions_conflict_and_return_the_newer_text(published: Published) -> None:
    cat = published.catalog
    tid, first = open_thread(published)
    with cat.session() as s:
        p = an.get_post(s, tid, first)
        an.edit_post(s, p, body="bob's version", who="bob", expected_rev=1)
        s.commit()
    with cat.session() as s:
        p = an.get_post(s, tid, first)
        with pytest.raises(an.EditConflict) as info:
            an.edit_post(s, p, body="alice's version", who="alice", expected_rev=1)
        exc = info.value
        assert isinstance(exc, Conflict)
        assert exc.current["rev"] == 2 and exc.current["body"] == "bob's version"
        assert exc.yours == "alice's version"
        assert "revision 2, not 1" in exc.message and "revision 2" in (exc.hint or "")
        t = an.get_thread(s, published.dataset.id, tid)
        with pytest.raises(an.EditConflict) as tinfo:
            an.retitle(s, t, "new", "alice", expected_rev=7)
        assert tinfo.value.current["title"] == "Ring diameter"
        s.rollback()
    with cat.session() as s:
        assert [h.body for h in an.post_history(s, first)] == [
            "The rings look *too small*.", "bob's version"]  # fmt: skip


def test_listing_pages_filters_and_counts(published: Published) -> None:
    cat, ds_id = published.catalog, published.dataset.id
    ids = [open_thread(published, title=f"t{i}")[0] for i in range(5)]
    ids.append(open_thread(published, anchor={"kind": "dataset"}, image_row=None)[0])
    with cat.session() as s:
        an.set_status(s, s.get(Thread, ids[1]), "resolved", "bob")
        an.delete_thread(s, s.get(Thread, ids[2]), "bob")
        s.commit()
        page, cursor = an.list_threads(s, ds_id, limit=2)
        seen = [t.id for t in page]
        while cursor is not None:
            page, cursor = an.list_threads(s, ds_id, after_id=cursor, limit=2)
            seen += [t.id for t in page]
        assert seen == [i for i in ids if i != ids[2]]
        assert [t.id for t in an.list_threads(s, ds_id, status="resolved")[0]] == [ids[1]]
        assert len(an.list_threads(s, ds_id, image="cell1")[0]) == 4
        assert an.list_threads(s, ds_id, image="stack") == ([], None)
        assert an.thread_counts(s, ds_id) == {"open": 4, "resolved": 1}
        assert an.thread_counts(s, ds_id, image="cell1") == {"open": 3, "resolved": 1}
        with pytest.raises(InvalidInput, match="limit"):
            an.list_threads(s, ds_id, limit=0)


@pytest.mark.slow
def test_concurrent_edits_lose_nothing(catalog: Catalog, published: Published) -> None:
    """20 editors x 50 edits of one post, each re-reading and retrying on conflict."""
    tid, first = open_thread(published)
    workers, edits = 20, 50
    start = threading.Barrier(workers)
    conflicts = [0] * workers
    # One connection per editor: the catalog's own PostgreSQL pool (5 + 10 overflow) would
    # make the 20 editors queue for connections, which is not what this test is about.
    engine = catalog.engine
    if engine.dialect.name == "postgresql":
        engine = create_engine(engine.url, pool_size=workers, max_overflow=0)

    def editor(w: int) -> None:
        rng = random.Random(w)
        start.wait()
        for j in range(edits):
            tries = 0
            while True:
                with Session(engine, expire_on_commit=False) as s:
                    p = an.get_post(s, tid, first)
                    try:
                        an.edit_post(s, p, body=f"editor {w} edit {j} (after rev {p.rev})",
                                     who=f"u{w}", expected_rev=p.rev)  # fmt: skip
                        s.commit()
                        break
                    except Conflict:
                        s.rollback()
                        conflicts[w] += 1
                tries += 1  # back off exponentially with jitter, as a client would
                time.sleep(rng.uniform(0, min(0.2, 0.002 * 2**tries)))

    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(editor, range(workers)))
    engine.dispose()
    with catalog.session() as s:
        hist = an.post_history(s, first)
        p = an.get_post(s, tid, first)
    total = workers * edits
    assert len(hist) == 1 + total and p.rev == 1 + total
    assert [h.rev for h in hist] == list(range(1, total + 2))
    # each revision was written against the one before it: no edit overwrote another unseen
    for h in hist[1:]:
        assert h.body.endswith(f"(after rev {h.rev - 1})")
    bodies = {h.body.split(" (")[0] for h in hist[1:]}
    assert bodies == {f"editor {w} edit {j}" for w in range(workers) for j in range(edits)}
    assert p.body == hist[-1].body
    assert sum(conflicts) > 0, conflicts  # there was contention to survive
