"""W3C Web Annotation export and import: valid shape, lossless anchors, round trip."""

from __future__ import annotations

import copy
import json
from typing import Any

import jsonschema
import pytest
from sqlmodel import select

import nanorepo.annotations as an
from nanorepo.catalog.models import PostRevision, Thread
from nanorepo.errors import InvalidInput
from tests.annotations.conftest import Published, publish

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
    elif change == "no-anchor":
        del items[0]["target"]["nanorepo:anchor"]
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
    ["context", "type", "motivation", "stray-reply", "loop", "anchor", "image", "no-anchor",
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
