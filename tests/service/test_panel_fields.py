"""Fields the JupyterLab panel reads: a thumbnail path on every search hit (the latest
version's first image) that serves that image's PNG, and a post's own ``etag`` (posts are
read inside their thread) that edits it with ``If-Match``."""

from __future__ import annotations

from typing import Any

import httpx


def test_search_hits_carry_their_thumbnail(service: Any) -> None:
    seed = service.seed
    with httpx.Client(base_url=service.url, headers=seed.headers("bob"), timeout=30) as c:
        page = c.get("/datasets", params={"limit": 50}).json()
        hits = {d["accession"]: d for d in page["items"]}
        assert set(hits) == {seed.public, seed.granted}  # the hidden one stays hidden
        for acc, hit in hits.items():
            images = c.get(f"/datasets/{acc}/versions/v1/images").json()["items"]
            first = min(i["name"] for i in images)
            assert hit["thumbnail"] == images[0]["thumbnail"]
            assert hit["thumbnail"] == f"datasets/{acc}/versions/v1/images/{first}/thumbnail.png"
            png = c.get(f"/{hit['thumbnail']}", params={"size": 64})
            assert png.status_code == 200 and png.content[:4] == b"\x89PNG"
        found = c.get("/datasets", params={"q": "granted"}).json()["items"]
        assert [d["accession"] for d in found] == [seed.granted]
        assert found[0]["thumbnail"] == hits[seed.granted]["thumbnail"]


def test_posts_carry_the_etag_that_edits_them(service: Any) -> None:
    seed = service.seed
    acc = seed.public
    with httpx.Client(base_url=service.url, headers=seed.headers("carol"), timeout=30) as c:
        r = c.post(f"/datasets/{acc}/threads", json={"title": "ETag", "body": "first"})
        assert r.status_code == 201, r.text
        tid, post = r.json()["id"], r.json()["posts"][0]
        assert post["etag"].startswith('"') and post["etag"] != r.headers["etag"]
        url = f"/datasets/{acc}/threads/{tid}/posts/{post['id']}"
        r = c.patch(url, json={"body": "second"}, headers={"If-Match": post["etag"]})
        assert r.status_code == 200, r.text
        assert r.json()["etag"] == r.headers["etag"] != post["etag"]
        listed = c.get(f"/datasets/{acc}/threads/{tid}").json()["posts"][0]
        assert listed["etag"] == r.headers["etag"]
        stale = c.patch(url, json={"body": "third"}, headers={"If-Match": post["etag"]})
        assert stale.status_code == 412
        assert stale.json()["current"]["etag"] == r.headers["etag"]
        reply = c.post(f"/datasets/{acc}/threads/{tid}/posts", json={"body": "a reply"})
        assert reply.status_code == 201 and reply.json()["etag"] == reply.headers["etag"]
