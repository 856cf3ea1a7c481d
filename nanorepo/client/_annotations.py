"""Annotation threads through the service: list, read, start, reply, edit with ETags,
resolve, and W3C Web Annotation export and import."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from nanorepo.client._base import ClientBase, Json, Pages
from nanorepo.client._base import seg as _seg

__all__ = ["AnnotationMethods"]


class AnnotationMethods(ClientBase):
    """The annotation methods of :class:`nanorepo.Client`."""

    def threads(
        self,
        accession: str,
        *,
        image: str | None = None,
        status: str | None = None,
        page_size: int = 100,
    ) -> Pages:
        """Annotation threads of a dataset (``status``: open or resolved); ``.meta`` has
        ``counts`` of open and resolved threads."""
        return self._pages(
            f"/datasets/{_seg(accession)}/threads",
            [("image", image), ("status", status)],
            accession=accession,
            limit=page_size,
        )

    def thread(self, accession: str, thread_id: int) -> Json:
        """A thread with its posts."""
        out: Json = self._json(
            "GET", f"/datasets/{_seg(accession)}/threads/{int(thread_id)}", accession=accession
        )
        return out

    def create_thread(
        self,
        accession: str,
        title: str,
        body: str,
        *,
        anchor: Mapping[str, Any] | None = None,
        image: str | None = None,
        motivation: str | None = None,
        tags: Sequence[str] = (),
        version: int | None = None,
    ) -> Json:
        """Start a thread about the dataset, an ``image``, or a region ``anchor`` (nm)."""
        doc: Json = {"title": title, "body": body}
        if anchor is not None or image is not None:
            a = dict(anchor or {"kind": "image"})
            if image is not None:
                a.setdefault("image", image)
            doc["anchor"] = a
        if motivation:
            doc["motivation"] = motivation
        if tags:
            doc["tags"] = list(tags)
        if version is not None:
            doc["version"] = version
        out: Json = self._json(
            "POST", f"/datasets/{_seg(accession)}/threads", accession=accession, json=doc
        )
        return out

    def reply(
        self,
        accession: str,
        thread_id: int,
        body: str,
        *,
        parent_id: int | None = None,
        motivation: str | None = None,
    ) -> Json:
        """Post to a thread (``parent_id``: the post answered)."""
        doc: Json = {"body": body}
        if parent_id is not None:
            doc["parent_id"] = parent_id
        if motivation:
            doc["motivation"] = motivation
        out: Json = self._json(
            "POST",
            f"/datasets/{_seg(accession)}/threads/{int(thread_id)}/posts",
            accession=accession,
            json=doc,
        )
        return out

    def edit_post(
        self,
        accession: str,
        thread_id: int,
        post_id: int,
        body: str,
        *,
        etag: str | None = None,
        reason: str = "",
    ) -> Json:
        """Change a post's text (the old text stays in :meth:`post_history`). ``etag``: the
        post's ETag when you read it (None: its current revision)."""
        if etag is None:
            posts = self.thread(accession, thread_id).get("posts", [])
            post = next((p for p in posts if p.get("id") == post_id), None)
            etag = f'"p{int(post_id)}-{post["rev"]}"' if post else "*"
        doc: Json = {"body": body}
        if reason:
            doc["reason"] = reason
        out: Json = self._json(
            "PATCH",
            f"/datasets/{_seg(accession)}/threads/{int(thread_id)}/posts/{int(post_id)}",
            accession=accession,
            headers={"If-Match": etag},
            json=doc,
        )
        return out

    def set_thread_status(
        self, accession: str, thread_id: int, status: str, *, etag: str | None = None
    ) -> Json:
        """Resolve or reopen a thread (``status``: resolved or open)."""
        return self.update_thread(accession, thread_id, status=status, etag=etag)

    def update_thread(
        self,
        accession: str,
        thread_id: int,
        *,
        status: str | None = None,
        title: str | None = None,
        tags: Sequence[str] | None = None,
        etag: str | None = None,
    ) -> Json:
        """Change a thread's status, title or tags. ``etag``: the thread's ETag when you
        read it (None: its current one)."""
        path = f"/datasets/{_seg(accession)}/threads/{int(thread_id)}"
        etag = etag or self._etag(path, accession)
        doc: Json = {"status": status, "title": title, "tags": None if tags is None else list(tags)}
        out: Json = self._json(
            "PATCH", path, accession=accession, headers={"If-Match": etag},
            json={k: v for k, v in doc.items() if v is not None},
        )  # fmt: skip
        return out

    def delete_thread(self, accession: str, thread_id: int, *, etag: str | None = None) -> None:
        """Delete a thread (its author, curators): hidden from lists, its history kept."""
        path = f"/datasets/{_seg(accession)}/threads/{int(thread_id)}"
        etag = etag or self._etag(path, accession)
        self._request("DELETE", path, accession=accession, headers={"If-Match": etag})

    def thread_history(self, accession: str, thread_id: int) -> list[Json]:
        """Every change of a thread: created, resolved, reopened, retitled, retagged."""
        out: list[Json] = self._json(
            "GET",
            f"/datasets/{_seg(accession)}/threads/{int(thread_id)}/history",
            accession=accession,
        )
        return out

    def post_history(self, accession: str, thread_id: int, post_id: int) -> list[Json]:
        """Every revision of a post: rev, body, who, when, reason."""
        out: list[Json] = self._json(
            "GET",
            f"/datasets/{_seg(accession)}/threads/{int(thread_id)}/posts/{int(post_id)}/history",
            accession=accession,
        )
        return out

    def export_annotations(self, accession: str, thread_id: int | None = None) -> Json:
        """The dataset's threads (or one) as a W3C Web Annotation collection (JSON-LD)."""
        out: Json = self._json(
            "GET",
            f"/datasets/{_seg(accession)}/annotations",
            accession=accession,
            params={"thread": thread_id} if thread_id is not None else None,
        )
        return out

    def import_annotations(
        self, accession: str, doc: Mapping[str, Any], *, version: int | None = None
    ) -> int:
        """Import a Web Annotation collection as new threads written by you (all or
        nothing), against ``version`` (default: the latest); returns how many."""
        out = self._json(
            "POST", f"/datasets/{_seg(accession)}/annotations", accession=accession,
            json=dict(doc), params={"version": version} if version is not None else None,
        )  # fmt: skip
        return int(out.get("imported", 0))
