"""Threads over HTTP: anchored regions, replies, edits with If-Match and history, resolve,
sanitised HTML end to end, W3C export/import, search, and embargo on all of it."""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any

import httpx

REGION = {"kind": "region", "image": "cell0", "unit": "nanometer", "shape": "polygon",
          "points": [[50.0, 50.0], [500.0, 80.0], [300.0, 700.0]], "c": [1]}  # fmt: skip


def _client(service: Any, user: str) -> httpx.Client:
    return httpx.Client(base_url=service.url, headers=service.seed.headers(user), timeout=30)


def test_thread_lifecycle(service: Any) -> None:
    acc = service.seed.public
    with _client(service, "carol") as carol, _client(service, "bob") as bob:
        r = carol.post(f"/datasets/{acc}/threads", json={
            "title": "Missing corner?", "body": "The *lower* ring lacks a corner.",
            "anchor": REGION, "motivation": "questioning", "tags": ["npc", "qc"]})  # fmt: skip
        assert r.status_code == 201, r.text
        t = r.json()
        assert t["anchor"]["points"][1] == [500.0, 80.0] and t["version"] == 1
        assert t["posts"][0]["html"] == "<p>The <em>lower</em> ring lacks a corner.</p>\n"
        tid, pid, tag = t["id"], t["posts"][0]["id"], r.headers["etag"]

        r = bob.post(
            f"/datasets/{acc}/threads/{tid}/posts", json={"body": "Agreed.", "parent_id": pid}
        )
        assert r.status_code == 201 and r.json()["parent_id"] == pid

        # bob may not edit carol's post; carol may, with If-Match
        post_url = f"/datasets/{acc}/threads/{tid}/posts/{pid}"
        post_tag = carol.get(f"/datasets/{acc}/threads/{tid}").json()["posts"][0]["rev"]
        assert post_tag == 1
        r = bob.patch(post_url, json={"body": "hijack"}, headers={"If-Match": f'"p{pid}-1"'})
        assert r.status_code == 403
        r = carol.patch(post_url, json={"body": "No corner missing."})
        assert r.status_code == 428
        r = carol.patch(post_url, json={"body": "Two corners missing.", "reason": "recount"},
                        headers={"If-Match": f'"p{pid}-1"'})  # fmt: skip
        assert r.status_code == 200 and r.json()["edited"] and r.json()["rev"] == 2
        # a stale edit is refused with the newer text, so nothing is lost
        r = carol.patch(post_url, json={"body": "stale"}, headers={"If-Match": f'"p{pid}-1"'})
        assert r.status_code == 412
        assert r.json()["current"]["body"] == "Two corners missing."
        assert r.headers["etag"] == f'"p{pid}-2"'
        hist = carol.get(f"{post_url}/history").json()
        assert [h["body"] for h in hist] == [
            "The *lower* ring lacks a corner.",
            "Two corners missing.",
        ]
        assert hist[1]["reason"] == "recount"

        # resolve: bob (neither author nor owner) may not; alice (dataset owner) may
        r = bob.patch(f"/datasets/{acc}/threads/{tid}", json={"status": "resolved"},
                      headers={"If-Match": tag})  # fmt: skip
        assert r.status_code == 403
        with _client(service, "alice") as alice:
            r = alice.patch(f"/datasets/{acc}/threads/{tid}", json={"status": "resolved"},
                            headers={"If-Match": tag})  # fmt: skip
            assert r.status_code == 200, r.text
            assert r.json()["status"] == "resolved"
        page = carol.get(f"/datasets/{acc}/threads", params={"status": "resolved"}).json()
        assert [x["id"] for x in page["items"]] == [tid]
        assert page["counts"]["resolved"] == 1
        events = [e["what"] for e in carol.get(f"/datasets/{acc}/threads/{tid}/history").json()]
        assert events[0] == "created" and "status" in events


def test_bad_anchor_is_refused_and_changes_nothing(service: Any) -> None:
    acc = service.seed.public
    with _client(service, "carol") as carol:
        before = carol.get(f"/datasets/{acc}/threads").json()["total"]
        bad = {**REGION, "points": [[0, 0], [1e9, 0], [0, 5]]}
        r = carol.post(f"/datasets/{acc}/threads", json={"title": "x", "body": "y", "anchor": bad})
        assert r.status_code == 422
        assert r.headers["content-type"] == "application/problem+json"
        assert "outside image" in r.json()["detail"]
        r = carol.post(f"/datasets/{acc}/threads", json={"title": "x", "body": "y",
                       "anchor": {**REGION, "image": "nope"}})  # fmt: skip
        assert r.status_code in {404, 422}
        assert carol.get(f"/datasets/{acc}/threads").json()["total"] == before
    r = httpx.post(f"{service.url}/datasets/{acc}/threads", json={"title": "x", "body": "y"})
    assert r.status_code == 401  # anonymous may read threads, not write them


XSS = [
    "<script>alert(1)</script>", "<img src=x onerror=alert(1)>", "[x](javascript:alert(1))",
    "<svg><script>alert(1)</script></svg>", "<a href='jav&#x09;ascript:alert(1)'>x</a>",
    "![x](javascript:alert(1))", "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    "<iframe src=//evil></iframe>", "[a](JaVaScRiPt:alert(1))", "<details open ontoggle=alert(1)>",
]  # fmt: skip


def _parse(html: str) -> tuple[set[str], list[tuple[str, str | None]]]:
    tags: set[str] = set()
    attrs: list[tuple[str, str | None]] = []

    class P(HTMLParser):
        def handle_starttag(self, tag: str, a: list[tuple[str, str | None]]) -> None:
            tags.add(tag)
            attrs.extend(a)

    P().feed(html)
    return tags, attrs


def test_html_reaching_a_browser_is_sanitised_and_under_csp(service: Any) -> None:
    acc = service.seed.public
    with _client(service, "carol") as carol:
        r = carol.post(f"/datasets/{acc}/threads", json={"title": "<b>xss</b>", "body": "ok"})
        tid = r.json()["id"]
        for payload in XSS:
            r = carol.post(f"/datasets/{acc}/threads/{tid}/posts", json={"body": payload})
            assert r.status_code == 201
            tags, attrs = _parse(r.json()["html"])
            assert tags <= {"p", "a", "em", "strong", "code", "pre", "br"}, (payload, tags)
            assert not any(k.startswith("on") or k == "style" for k, _ in attrs), payload
            assert not any("script" in (v or "").lower() for _, v in attrs), payload
            assert r.json()["body"] == payload  # the raw text is kept as written
        r = carol.get(f"/datasets/{acc}/threads/{tid}")
        assert "default-src 'none'" in r.headers["content-security-policy"]
        assert r.headers["x-content-type-options"] == "nosniff"


def test_export_import_round_trip_and_search(service: Any) -> None:
    seed = service.seed
    with _client(service, "alice") as alice:
        doc = alice.get(f"/datasets/{seed.public}/annotations")
        assert doc.status_code == 200
        assert doc.headers["content-type"].startswith("application/ld+json")
        coll = doc.json()
        assert coll["type"] == "AnnotationCollection" and coll["total"] >= 2
        items = coll["first"]["items"]
        assert any(a["motivation"] == "replying" for a in items)
        # import into the granted dataset (same image layout as far as the anchor goes)
        for a in items:
            for tgt in [a["target"]] if isinstance(a["target"], dict) else a["target"]:
                if isinstance(tgt, dict) and isinstance(tgt.get("nanorepo:anchor"), dict):
                    tgt["nanorepo:anchor"]["image"] = "cell1"
        before = alice.get(f"/datasets/{seed.granted}/threads").json()["total"]
        r = alice.post(f"/datasets/{seed.granted}/annotations", json=coll)
        assert r.status_code == 201, r.text[:500]
        assert r.json()["imported"] >= 1
        assert (
            alice.get(f"/datasets/{seed.granted}/threads").json()["total"]
            == before + r.json()["imported"]
        )
        # annotation text is searchable, for those who may see the dataset only
        r = alice.get("/datasets", params={"q": "corners"})
        assert {d["accession"] for d in r.json()["items"]} >= {seed.public, seed.hidden}
    r = httpx.get(f"{service.url}/datasets", params={"q": "corners"})
    assert {d["accession"] for d in r.json()["items"]} == {seed.public}
