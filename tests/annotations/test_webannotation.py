"""W3C Web Annotation export and import: valid shape, lossless anchors, round trip."""

from __future__ import annotations

import copy
import json
from typing import Any

import httpx
import jsonschema
import pytest
from sqlmodel import select

import nanorepo.annotations as an
from nanorepo.catalog.models import PostRevision, Thread
from nanorepo.errors import InvalidInput
from tests.annotations.conftest import Published, publish
from tests.publication.conftest import PUBLIC, live  # noqa: F401 (fixture: service under PUBLIC)

BASE = "https://repo.example.org/api/"

_TEXT_BODY = {
    "type": "object",
    "required": ["type", "value"],
    "properties": {
        "type": {"const": "TextualBody"},
        "value": {"type": "string"},
        "format": {"enum": ["text/markdown"]},
        "purpose": {"enum": list(an.MOTIVATIONS)},
    },
}
_SELECTOR = {
    "type": "object",
    "required": ["type"],
    "properties": {"type": {"enum": ["nanorepo:PhysicalRegion", "FragmentSelector"]}},
}
SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["@context", "id", "type", "label", "total", "first"],
    "properties": {
        "@context": {"type": "array", "prefixItems": [{"const": an.ANNO_CONTEXT}]},
        "id": {"type": "string", "format": "uri"},
        "type": {"const": "AnnotationCollection"},
        "label": {"type": "string"},
        "total": {"type": "integer", "minimum": 0},
        "first": {
            "type": "object",
            "required": ["id", "type", "items"],
            "properties": {
                "type": {"const": "AnnotationPage"},
                "items": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": [
                            "id",
                            "type",
                            "motivation",
                            "body",
                            "target",
                            "creator",
                            "created",
                            "modified",
                        ],
                        "properties": {
                            "id": {"type": "string", "pattern": "^https://"},
                            "type": {"const": "Annotation"},
                            "motivation": {"enum": list(an.MOTIVATIONS)},
                            "created": {"type": "string", "format": "date-time"},
                            "modified": {"type": "string", "format": "date-time"},
                            "creator": {
                                "type": "object",
                                "required": ["type", "nickname"],
                                "properties": {"type": {"const": "Person"}},
                            },
                            "body": {
                                "anyOf": [
                                    _TEXT_BODY,
                                    {"type": "array", "items": _TEXT_BODY, "minItems": 1},
                                ]
                            },
                            "target": {
                                "anyOf": [
                                    {"type": "string", "pattern": "^https://"},
                                    {
                                        "type": "object",
                                        "required": ["type", "source", "nanorepo:anchor"],
                                        "properties": {
                                            "type": {"const": "SpecificResource"},
                                            "source": {"type": "string", "pattern": "^https://"},
                                            "selector": {"type": "array", "items": _SELECTOR},
                                        },
                                    },
                                ]
                            },
                        },
                    },
                },
            },
        },
    },
}


def discuss(pub: Published) -> None:
    """Threads of every anchor kind, with replies, edits, tags, status and deletions."""
    ds, im = pub.dataset, pub.images
    with pub.catalog.session() as s:
        t1 = an.create_thread(
            s, ds, version=1, image_row=im["cell1"], title="Ring too small",
            anchor={"kind": "region", "image": "cell1", "x": [100.5, 300], "y": [100, 200]},
            body="Diameter *95 nm*?", tags=["npc", "size"], motivation="questioning", who="alice",
        )  # fmt: skip
        r1 = an.reply(s, t1, body="Check the PSF.", who="bob")
        an.reply(s, t1, body="FRC says 40 nm.", who="alice", parent_id=r1.id,
                 motivation="assessing")  # fmt: skip
        gone = an.reply(s, t1, body="spam", who="mallory")
        an.delete_post(s, gone, "curator")
        an.edit_post(s, an.posts(s, t1.id)[0], body="Diameter *95 nm*, too small?",
                     who="alice", expected_rev=1)  # fmt: skip
        an.set_status(s, t1, "resolved", "bob")
        an.create_thread(
            s, ds, version=1, image_row=im["stack"], title="Channel bleed",
            anchor={"kind": "region", "image": "stack", "shape": "polygon",
                    "points": [[0, 0], [4000, 0], [2000, 3000.25]], "z": [100, 300], "c": [1]},
            body="Crosstalk from ch0.", who="carol",
        )  # fmt: skip
        an.create_thread(
            s, ds, version=1, image_row=im["movie"], title="Drift",
            anchor={"kind": "image", "image": "movie", "t": [2, 5]}, body="Drifts.", who="bob",
        )  # fmt: skip
        t4 = an.create_thread(s, ds, version=1, image_row=None, anchor={"kind": "dataset"},
                              title="Licence?", body="CC0?", who="dave")  # fmt: skip
        an.reply(s, t4, body="CC-BY.", who="alice")
        t5 = an.create_thread(s, ds, version=1, image_row=None, anchor={"kind": "dataset"},
                              title="deleted", body="gone", who="eve")  # fmt: skip
        an.delete_thread(s, t5, "curator")
        s.commit()


def export(pub: Published) -> dict[str, Any]:
    with pub.catalog.session() as s:
        threads = s.exec(select(Thread).where(Thread.dataset_id == pub.dataset.id)).all()
        images = {(1, name): row for name, row in pub.images.items()}
        return an.export_collection(
            [(t, an.posts(s, t.id, include_deleted=True)) for t in threads],
            dataset_ref=pub.dataset.accession, base_uri=BASE, images=images,
        )  # fmt: skip


def comparable(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """The items with ids as positions, times dropped and the accession blanked."""
    items = copy.deepcopy(doc["first"]["items"])
    pos = {a["id"]: i for i, a in enumerate(items)}
    for a in items:
        a["id"] = pos[a["id"]]
        del a["created"], a["modified"]
        if isinstance(a["target"], str):
            a["target"] = pos[a["target"]]
        else:
            a["target"]["source"] = a["target"]["source"].split("/versions/")[1]
    return items


def test_export_is_web_annotation_json_ld(published: Published) -> None:
    discuss(published)
    doc = export(published)
    jsonschema.validate(doc, SCHEMA, format_checker=jsonschema.FormatChecker())
    json.dumps(doc)  # plain JSON all the way down
    assert doc["@context"][0] == "http://www.w3.org/ns/anno.jsonld"
    items = doc["first"]["items"]
    assert doc["total"] == len(items) == 7  # deleted thread and deleted reply left out
    assert doc["id"] == "https://repo.example.org/api/datasets/S-NANO1/annotations"
    assert all("spam" not in json.dumps(a) for a in items)
    first, reply, nested = items[0], items[1], items[2]
    assert first["id"].startswith(f"{BASE}datasets/S-NANO1/threads/")
    assert "#post-" in first["id"]
    assert first["motivation"] == "questioning" and first["nanorepo:status"] == "resolved"
    assert first["nanorepo:title"] == "Ring too small"
    assert first["body"][0] == {"type": "TextualBody", "value": "Diameter *95 nm*, too small?",
                                "format": "text/markdown", "purpose": "questioning"}  # fmt: skip
    assert [b["value"] for b in first["body"] if b.get("purpose") == "tagging"] == ["npc", "size"]
    target = first["target"]
    assert target["source"] == f"{BASE}datasets/S-NANO1/versions/1/images/cell1"
    assert target["nanorepo:anchor"]["x"] == [100.5, 300.0]
    physical, fragment = target["selector"]
    assert physical["type"] == "nanorepo:PhysicalRegion" and physical["unit"] == "nanometer"
    assert fragment == {"type": "FragmentSelector", "conformsTo": "http://www.w3.org/TR/media-frags/",
                        "value": "xywh=pixel:5,5,10,5"}  # fmt: skip
    assert reply["motivation"] == "replying" and reply["target"] == first["id"]
    assert nested["motivation"] == "assessing" and nested["target"] == reply["id"]
    assert reply["creator"] == {"type": "Person", "nickname": "bob"}
    dataset_thread = next(a for a in items if a.get("nanorepo:title") == "Licence?")
    assert dataset_thread["target"]["source"] == f"{BASE}datasets/S-NANO1/versions/1"
    assert "selector" not in dataset_thread["target"]


def test_round_trip_into_another_dataset(published: Published) -> None:
    discuss(published)
    doc = export(published)
    other = publish(published.catalog, "S-NANO2", title="Copy")
    with published.catalog.session() as s:
        threads = an.import_collection(s, other.dataset, doc, who="importer", version=1)
        s.commit()
        assert [t.title for t in threads] == ["Ring too small", "Channel bleed", "Drift",
                                              "Licence?"]  # fmt: skip
        assert threads[0].status == "resolved" and threads[0].tags == ["npc", "size"]
        first = an.posts(s, threads[0].id)[0]
        (rev,) = an.post_history(s, first.id)
        assert (
            rev.who == "importer"
            and rev.reason == f"imported from {doc['first']['items'][0]['id']}"
        )
    again = export(other)
    assert again["id"].endswith("/S-NANO2/annotations")
    # equal up to ids, times and authors (the importer wrote them)
    before, after = comparable(doc), comparable(again)
    for a in before:
        a["creator"]["nickname"] = "importer"
    assert after == before


def test_import_can_keep_creators(published: Published) -> None:
    discuss(published)
    doc = export(published)
    other = publish(published.catalog, "S-NANO2")
    with published.catalog.session() as s:
        an.import_collection(s, other.dataset, doc, who="curator", version=1, keep_creators=True)
        s.commit()
    assert comparable(export(other)) == comparable(doc)


def _broken(doc: dict[str, Any], change: str) -> dict[str, Any]:
    d = copy.deepcopy(doc)
    items = d["first"]["items"]
    if change == "context":
        d["@context"] = "https://example.org/other.jsonld"
    elif change == "type":
        d["type"] = "Collection"
    elif change == "motivation":
        items[3]["motivation"] = "shouting"
    elif change == "stray-reply":
        items[-1]["target"] = "https://elsewhere.example/anno/1"
    elif change == "loop":
        items[1]["target"], items[2]["target"] = items[2]["id"], items[1]["id"]
    elif change == "anchor":
        items[0]["target"]["nanorepo:anchor"]["x"] = [0, 1e9]
    elif change == "image":
        items[3]["target"]["nanorepo:anchor"]["image"] = "nope"
    elif change == "no-target":
        del items[0]["target"]
    elif change == "no-selector-maps":
        del items[0]["target"]["nanorepo:anchor"]
        items[0]["target"]["selector"] = items[0]["target"]["selector"][:1]
    elif change == "body":
        items[-1]["body"]["value"] = "x" * 100_001
    elif change == "no-body":
        items[-1]["body"] = {"type": "TextualBody", "purpose": "tagging", "value": "t"}
    elif change == "svg-body":
        items[-1]["body"]["format"] = "image/svg+xml"
    elif change == "title":
        items[0]["nanorepo:title"] = "\x00 "
    elif change == "status":
        items[0]["nanorepo:status"] = "closed"
    elif change == "duplicate-id":
        items[1]["id"] = items[0]["id"]
    elif change == "paged":
        d["first"]["next"] = "https://repo.example.org/page/2"
    return d


@pytest.mark.parametrize(
    "change",
    ["context", "type", "motivation", "stray-reply", "loop", "anchor", "image", "no-target",
     "no-selector-maps",
     "body", "no-body", "svg-body", "title", "status", "duplicate-id", "paged"],
)  # fmt: skip
def test_bad_documents_import_nothing(published: Published, change: str) -> None:
    discuss(published)
    doc = _broken(export(published), change)
    other = publish(published.catalog, "S-NANO2")
    with published.catalog.session() as s:
        with pytest.raises(InvalidInput) as info:
            an.import_collection(s, other.dataset, doc, who="importer", version=1)
        assert info.value.hint
        s.commit()  # even committing what is left writes nothing
        assert an.list_threads(s, other.dataset.id) == ([], None)
        n_revisions = len(s.exec(select(PostRevision)).all())
    with published.catalog.session() as s:
        assert len(s.exec(select(PostRevision)).all()) == n_revisions
    with published.catalog.session() as s, pytest.raises(InvalidInput):
        an.import_collection(s, other.dataset, "not json", who="x", version=1)


def test_without_nanorepo_anchor_the_fragment_selector_places_the_region(
    published: Published,
) -> None:
    """An exported region stripped of nanorepo's own anchor (as a generic tool keeps it)
    comes back from its pixel FragmentSelector, on the pixel grid."""
    discuss(published)
    doc = export(published)
    del doc["first"]["items"][0]["target"]["nanorepo:anchor"]
    other = publish(published.catalog, "S-NANO2")
    with published.catalog.session() as s:
        threads = an.import_collection(s, other.dataset, doc, who="importer", version=1)
        assert threads[0].anchor == {"kind": "region", "image": "cell1", "unit": "nanometer",
                                     "shape": "box", "x": [100.0, 300.0], "y": [100.0, 200.0]}  # fmt: skip


# -- annotations made by other tools -------------------------------------------------------

SVG = "http://www.w3.org/2000/svg"


def _ann(aid: str, target: Any, body: Any = None, **extra: Any) -> dict[str, Any]:
    body = {"type": "TextualBody", "value": f"about {aid}", "purpose": "commenting",
            "format": "text/plain"} if body is None else body  # fmt: skip
    ann = {"id": f"https://tool.example/anno/{aid}", "type": "Annotation", "body": body,
           "target": target, **extra}  # fmt: skip
    if "bodyValue" in extra:  # the model's shorthand for one plain-text body, instead of body
        del ann["body"]
    return ann


def _on(image: str, selector: Any) -> dict[str, Any]:
    return {"source": f"https://viewer.example/iiif/{image}.png", "selector": selector}


def _svg(shape: str) -> dict[str, str]:
    return {"type": "SvgSelector", "value": f'<svg xmlns="{SVG}">{shape}</svg>'}


def _frag(value: str) -> dict[str, str]:
    return {"type": "FragmentSelector", "conformsTo": "http://www.w3.org/TR/media-frags/",
            "value": value}  # fmt: skip


#: Annotations as Annotorious, Recogito, Mirador or hypothes.is-like tools write them, the
#: anchor each must become (pixels of 20 nm; cell1 is 1280 x 1280 nm), or the reason it is
#: reported (words of nanorepo's own message).
FOREIGN: list[tuple[dict[str, Any], dict[str, Any] | str]] = [
    (_ann("px", _on("cell1", _frag("xywh=pixel:5,10,20,4"))),
     {"kind": "region", "image": "cell1", "unit": "nanometer", "shape": "box",
      "x": [100.0, 500.0], "y": [200.0, 280.0]}),
    (_ann("plain-xywh", _on("cell1", _frag("xywh=1,2,3,4"))),
     {"kind": "region", "image": "cell1", "unit": "nanometer", "shape": "box",
      "x": [20.0, 80.0], "y": [40.0, 120.0]}),
    (_ann("pct", _on("cell1", _frag("xywh=percent:25,50,50,25"))),
     {"kind": "region", "image": "cell1", "unit": "nanometer", "shape": "box",
      "x": [320.0, 960.0], "y": [640.0, 960.0]}),
    (_ann("polygon", _on("stack", _svg('<polygon points="0,0 10,0 10,10"/>'))),
     {"kind": "region", "image": "stack", "unit": "nanometer", "shape": "polygon",
      "points": [[0.0, 0.0], [200.0, 0.0], [200.0, 200.0]]}),
    (_ann("path", _on("cell1", _svg('<g><path d="M 1 1 L 11,1 l 0 10 H 1 Z"/></g>'))),
     {"kind": "region", "image": "cell1", "unit": "nanometer", "shape": "polygon",
      "points": [[20.0, 20.0], [220.0, 20.0], [220.0, 220.0], [20.0, 220.0]]}),
    (_ann("rect", _on("cell1", [{"type": "nanorepo:Unknown"},
                                _svg('<rect x="2" y="3" width="4" height="5"/>')])),
     {"kind": "region", "image": "cell1", "unit": "nanometer", "shape": "box",
      "x": [40.0, 120.0], "y": [60.0, 160.0]}),
    (_ann("image-iri", f"{BASE}datasets/S-NANO1/versions/1/images/movie"),
     {"kind": "image", "image": "movie"}),
    (_ann("dataset-iri", f"{BASE}datasets/S-NANO1", bodyValue="plain words"),
     {"kind": "dataset"}),
    (_ann("tags-only", "stack", body=[
        {"type": "SpecificResource", "purpose": "tagging",
         "source": "http://purl.obolibrary.org/obo/GO_0005643"},
        {"type": "TextualBody", "purpose": "tagging", "value": "npc"}]),
     {"kind": "image", "image": "stack"}),
    (_ann("circle", _on("cell1", _svg('<circle cx="5" cy="5" r="3"/>'))),
     "<circle> cannot be mapped"),
    (_ann("curve", _on("cell1", _svg('<path d="M0 0 C 1 1 2 2 3 0 Z"/>'))),
     "curves or arcs (C)"),
    (_ann("entities", _on("cell1", {"type": "SvgSelector", "value":
        '<!DOCTYPE svg [<!ENTITY a "aaaa">]><svg><rect width="&a;"/></svg>'})),
     "declares a DOCTYPE or entities"),
    (_ann("time", _on("cell1", _frag("t=10,20"))), "is not a Media Fragments box"),
    (_ann("outside", _on("cell1", _frag("xywh=pixel:60,60,10,10"))), "lies outside image"),
    (_ann("elsewhere", _on("nope", _frag("xywh=0,0,1,1"))), "names neither an annotation"),
    (_ann("html", "cell1", body={"type": "TextualBody", "value": "<b>x</b>",
                                 "format": "text/html"}), "must be text/markdown or text/plain"),
    (_ann("image-body", "cell1", body={"type": "Image", "id": "https://x.example/a.png"}),
     "a body of type 'Image' cannot be imported"),
]  # fmt: skip


def _foreign_doc() -> dict[str, Any]:
    items = [a for a, _ in FOREIGN]
    items.append(_ann("reply", items[0]["id"], motivation="replying"))
    items.append(_ann("reply-to-circle", "https://tool.example/anno/circle"))
    return {"@context": an.ANNO_CONTEXT, "type": "AnnotationCollection",
            "first": {"type": "AnnotationPage", "items": items}}  # fmt: skip


def test_annotations_of_other_tools_are_mapped_or_reported_one_by_one(
    published: Published,
) -> None:
    doc = _foreign_doc()
    with published.catalog.session() as s:
        skipped: list[str] = []
        threads = an.import_collection(
            s, published.dataset, doc, who="importer", version=1, skipped=skipped
        )
        s.commit()
        want = {a["id"]: w for a, w in FOREIGN if isinstance(w, dict)}
        assert [t.anchor for t in threads] == list(want.values())
        by_title = {t.title: t for t in threads}
        assert by_title["plain words"].anchor == {"kind": "dataset"}
        tagged = by_title["Tags: GO_0005643, npc"]
        assert tagged.tags == ["GO_0005643", "npc"]
        assert [p.body for p in an.posts(s, threads[0].id)] == ["about px", "about reply"]
    reasons = {a["id"]: w for a, w in FOREIGN if isinstance(w, str)}
    reasons["https://tool.example/anno/reply-to-circle"] = "circle', which was not imported"
    assert len(skipped) == len(reasons)
    for line, (aid, why) in zip(skipped, reasons.items(), strict=True):
        assert line.startswith(f"annotation {aid}: ") and why in line, (line, why)


def test_without_a_report_one_unmappable_annotation_imports_nothing(
    published: Published,
) -> None:
    with published.catalog.session() as s:
        with pytest.raises(InvalidInput) as info:
            an.import_collection(s, published.dataset, _foreign_doc(), who="x", version=1)
        assert info.value.message.startswith("annotation https://tool.example/anno/circle: ")
        assert "FragmentSelector" in (info.value.hint or "")
        s.commit()
        assert an.list_threads(s, published.dataset.id) == ([], None)


def test_hostile_svg_is_bounded(published: Published) -> None:
    """A billion-laughs SVG is refused unparsed; a huge one by size; a path of many
    vertices by the anchor's own limit."""
    laughs = ('<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "lol">'
              + "".join(f'<!ENTITY {c} "{("&" + p + ";") * 10}">'
                        for p, c in zip("abcdefgh", "bcdefghi", strict=True))
              + f']><svg xmlns="{SVG}"><rect width="&i;"/></svg>')  # fmt: skip
    path = "M0 0 " + " ".join(f"L{i % 60} {i % 7}" for i in range(an.MAX_POLYGON_POINTS + 5))
    doc = {"@context": an.ANNO_CONTEXT, "type": "AnnotationCollection", "first": {
        "type": "AnnotationPage", "items": [
            _ann("laughs", _on("cell1", {"type": "SvgSelector", "value": laughs})),
            _ann("huge", _on("cell1", _svg(" " * 1_000_001 + "<rect/>"))),
            _ann("many", _on("cell1", _svg(f'<path d="{path}"/>'))),
        ]}}  # fmt: skip
    with published.catalog.session() as s:
        skipped: list[str] = []
        assert an.import_collection(s, published.dataset, doc, who="x", version=1,
                                    skipped=skipped) == []  # fmt: skip
    assert "declares a DOCTYPE" in skipped[0]
    assert "at most 1,000,000 characters" in skipped[1]
    assert "anchor.points must be a list of 3 to 10,000" in skipped[2]


def test_every_id_of_an_export_resolves(live: Any) -> None:  # noqa: F811
    """Threads posted through the service, exported under its public address: every IRI
    in the export (collection, annotations, sources, reply targets) answers 200 when the
    public address is replaced by where the service runs, and a post's hash IRI names a
    post of the thread it resolves to."""
    seed, alice = live.seed, live.seed.headers("alice")
    acc = seed.public
    with httpx.Client(base_url=live.url, timeout=30, headers=alice) as c:
        (image, *_) = c.get(f"/datasets/{acc}/versions/1/images").json()["items"]
        name, px = image["name"], image["pixel_sizes"]["x"]
        region = {"kind": "region", "image": name, "x": [0, 10 * px], "y": [0, 5 * px]}
        for anchor in (region, {"kind": "image", "image": name}, {"kind": "dataset"}):
            r = c.post(f"/datasets/{acc}/threads", json={"title": "t", "body": "b",
                                                          "anchor": anchor})  # fmt: skip
            assert r.status_code == 201, r.text
            tid = r.json()["id"]
        assert c.post(f"/datasets/{acc}/threads/{tid}/posts", json={"body": "r"}).status_code == 201
        doc = c.get(f"/datasets/{acc}/annotations").json()
        items = doc["first"]["items"]
        iris = {doc["id"], doc["first"]["id"]} | {a["id"] for a in items}
        iris |= {a["target"] if isinstance(a["target"], str) else a["target"]["source"]
                 for a in items}  # fmt: skip
        assert len(items) >= 4 and all(i.startswith(f"{PUBLIC}/datasets/{acc}/") for i in iris)
        for iri in sorted(iris):
            path, _, fragment = iri.removeprefix(PUBLIC).partition("#")
            r = c.get(path)
            assert r.status_code == 200, (iri, r.status_code)
            if fragment:
                assert int(fragment.removeprefix("post-")) in [p["id"] for p in r.json()["posts"]]


def test_service_imports_other_tools_annotations_and_refuses_hostile_ones(
    live: Any,  # noqa: F811
) -> None:
    """Through the service: a FragmentSelector region from another tool becomes a thread
    in nm; each unmappable or hostile annotation (billion laughs, curves, unknown image)
    is a 422 naming it, never a server error, and writes nothing."""
    seed, alice = live.seed, live.seed.headers("alice")
    acc = seed.public
    with httpx.Client(base_url=live.url, timeout=30, headers=alice) as c:
        image = c.get(f"/datasets/{acc}/versions/1/images").json()["items"][0]
        name, px = image["name"], image["pixel_sizes"]["x"]
        before = c.get(f"/datasets/{acc}/threads").json()["total"]
        good = {"@context": an.ANNO_CONTEXT, "type": "AnnotationCollection", "first": {
            "type": "AnnotationPage",
            "items": [_ann("box", _on(name, _frag("xywh=pixel:1,2,3,4")))]}}  # fmt: skip
        r = c.post(f"/datasets/{acc}/annotations", json=good)
        assert r.status_code == 201, r.text
        threads = c.get(f"/datasets/{acc}/threads").json()
        assert threads["total"] == before + 1
        made = max(threads["items"], key=lambda t: t["id"])
        assert made["anchor"]["x"] == pytest.approx([1 * px, 4 * px])
        laughs = ('<!DOCTYPE l [<!ENTITY a "lol"><!ENTITY b "&a;&a;&a;&a;&a;&a;">]>'
                  f'<svg xmlns="{SVG}"><rect width="&b;"/></svg>')  # fmt: skip
        for bad in (_on(name, {"type": "SvgSelector", "value": laughs}),
                    _on(name, _svg('<path d="M0 0 Q 1 1 2 0 Z"/>')),
                    _on("not-an-image", _frag("xywh=0,0,1,1"))):  # fmt: skip
            doc = {**good, "first": {"type": "AnnotationPage", "items": [_ann("bad", bad)]}}
            r = c.post(f"/datasets/{acc}/annotations", json=doc)
            assert r.status_code == 422, r.text
            assert "annotation https://tool.example/anno/bad: " in r.json()["detail"]
        assert c.get(f"/datasets/{acc}/threads").json()["total"] == before + 1
