"""``nanorepo.Client`` against a live service: every endpoint, lazily paged lists, edits with
ETags, and errors that are nanorepo errors carrying the service's own words."""

from __future__ import annotations

import hashlib
import shutil
import socket
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

import nanorepo
from nanorepo.client import Client, NotFound, ServiceError
from nanorepo.client._errors import error_from_response
from nanorepo.errors import (
    AuthenticationRequired,
    ConfigurationError,
    Conflict,
    DatasetNotFound,
    ImageNotFound,
    InvalidInput,
    NanorepoError,
    PermissionDenied,
)
from nanorepo.settings import Settings
from tests.conftest import METADATA, write_ome_tiff


def test_reads_every_resource_and_pages_lazily(service: Any, tmp_path: Path) -> None:
    seed = service.seed
    local = service.repo.open(seed.granted)
    with Client(service.url, seed.tokens["bob"]) as c:
        assert c.health()["user"] == "bob"
        pages = c.datasets(page_size=1)  # one item per page: iterating follows `next`
        assert pages.total == 2
        assert sorted(d["accession"] for d in pages) == sorted([seed.public, seed.granted])
        assert [d["accession"] for d in c.datasets(q="embargoed")] == [seed.granted]
        d = c.dataset(seed.granted)
        assert d["title"] == "Granted embargoed pores" and d["access"] == "embargoed"
        assert [v["version"] for v in c.versions(seed.granted)] == [1]
        v = c.version(seed.granted)
        assert v["ref"] == f"{seed.granted}@v1" and c.version(seed.granted, 1) == v
        sealed = c.sealed_metadata(seed.granted, "v1")
        assert sealed["sha256"] == v["metadata_sha256"]
        assert sealed["metadata"] == local.metadata
        fields, etag = c.mutable(seed.granted)
        assert fields["title"] == d["title"] and etag.startswith('"')
        assert c.history(seed.granted)[-1]["key"] == "grant"
        images = list(c.images(seed.granted, page_size=1))
        assert [i["name"] for i in images] == ["cell1"]
        assert c.image(seed.granted, 1, "cell1")["shape"] == [2, 64, 48]
        assert c.thumbnail(seed.granted, None, "cell1").startswith(b"\x89PNG\r\n\x1a\n")
        files = {f["name"]: f for f in c.files(seed.granted)}
        name = "originals/cell1.ome.tif"  # a name with a folder in it
        data = c.download(seed.granted, 1, name)
        assert isinstance(data, bytes)
        assert hashlib.sha256(data).hexdigest() == files[name]["sha256"]
        assert c.download(seed.granted, 1, name, byte_range=(2, 9)) == data[2:10]
        assert c.download(seed.granted, 1, name, byte_range=(10, None)) == data[10:]
        saved = c.download(seed.granted, 1, name, tmp_path)
        assert saved == tmp_path / "cell1.ome.tif" and saved.read_bytes() == data
        assert not list(tmp_path.glob("*.part"))
        url = c.zarr_url(seed.granted, None, "cell1")
        assert url == f"{service.url}/zarr/{seed.granted}/v1/cell1"
        r = httpx.get(f"{url}/zarr.json", headers=c.auth_headers)
        assert r.status_code == 200 and r.json()["zarr_format"] == 3
        assert httpx.get(f"{url}/zarr.json").status_code == 404  # no token, no bytes


def test_defaults_come_from_the_environment(service: Any) -> None:
    seed = service.seed
    env = {"NANOREPO_URL": service.url + "/", "JUPYTERHUB_API_TOKEN": seed.tokens["dave"]}
    with Client(settings=Settings.from_env(env=env)) as c:
        assert c.url == service.url
        assert c.health()["user"] == "dave"  # a notebook's hub token works as well
        assert "no token" not in repr(c) and seed.tokens["dave"] not in repr(c)
    env["NANOREPO_TOKEN"] = seed.tokens["erin"]  # NANOREPO_TOKEN wins
    with Client(settings=Settings.from_env(env=env)) as c:
        assert c.health()["user"] == "erin"
    with Client(service.url, "") as anonymous:  # "" explicitly: no token
        assert anonymous.health()["user"] is None
    assert nanorepo.Client is Client


def test_edits_with_etags_grants_and_access(service: Any) -> None:
    seed = service.seed
    acc = seed.granted
    with Client(service.url, seed.tokens["alice"]) as alice:
        _fields, etag = alice.mutable(acc)
        out = alice.set_metadata(acc, {"keywords": "pores, STED"}, "better keywords")
        assert out["fields"]["keywords"] == ["pores", "STED"]
        # an edit based on what was read before that change is refused, with the news
        with pytest.raises(Conflict) as exc:
            alice.set_metadata(acc, {"description": "stale"}, "lost update?", etag=etag)
        assert getattr(exc.value, "status", None) == 412
        assert exc.value.current["fields"]["keywords"] == ["pores", "STED"]  # type: ignore[attr-defined]
        assert alice.mutable(acc)[0].get("description") != "stale"
        last = alice.history(acc)[-1]
        assert (last["key"], last["who"], last["reason"]) == (
            "keywords",
            "alice",
            "better keywords",
        )
        assert {g["principal"] for g in alice.grants(acc)} == {"bob", "lab"}
        assert alice.grant(acc, user="carol")["principal"] == "carol"
        with Client(service.url, seed.tokens["carol"]) as carol:
            assert carol.dataset(acc)["accession"] == acc
            alice.revoke(acc, user="carol")
            with pytest.raises(DatasetNotFound):
                carol.dataset(acc)
        with pytest.raises(InvalidInput, match="either a user or a group"):
            alice.grant(acc, user="x", group="y")
        released = alice.release(acc, "paper published")
        assert released["access"] == "public"
        with pytest.raises(Conflict, match="public already"):
            alice.release(acc, "again")
    with Client(service.url, seed.tokens["cur"]) as cur:
        back = cur.embargo(acc, "2099-06-30", "publication withdrawn")
        assert (back["access"], back["embargo_until"]) == ("embargoed", "2099-06-30")


def test_errors_are_nanorepo_errors_in_the_services_words(service: Any) -> None:
    seed = service.seed
    with Client(service.url, seed.tokens["bob"]) as bob:
        with pytest.raises(DatasetNotFound) as exc:
            bob.dataset(seed.hidden)
        served = httpx.get(f"{service.url}/datasets/{seed.hidden}", headers=seed.headers("bob"))
        assert exc.value.message == served.json()["detail"]
        assert exc.value.hint == served.json()["hint"]
        assert isinstance(exc.value, NotFound | LookupError | ImageNotFound)
        with pytest.raises(ImageNotFound):
            bob.image(seed.granted, 1, "no-such-image")
        with pytest.raises(PermissionDenied, match="bob may not edit"):
            bob.set_metadata(seed.granted, {"title": "mine now"}, "because")
        with pytest.raises(PermissionDenied):
            bob.deposit_staged(["/etc/hostname"], "x")
    with Client(service.url, seed.tokens["alice"]) as alice:
        with pytest.raises(InvalidInput) as bad:
            alice.set_metadata(seed.public, {"colour": "blue"}, "no such field")
        assert bad.value.message  # the service says which field and what is allowed
    with Client(service.url, "") as anonymous, pytest.raises(AuthenticationRequired) as auth:
        anonymous.grants(seed.public)
    assert "NANOREPO_TOKEN" in str(auth.value)
    with (
        Client(service.url, "nr_not-a-real-token") as forged,
        pytest.raises(AuthenticationRequired, match="not valid"),
    ):
        forged.health()
    # nothing listens: a configuration problem naming the URL and the fix
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    with pytest.raises(ConfigurationError, match=dead) as down, Client(dead, "") as c:
        c.health()
    assert "NANOREPO_URL" in str(down.value)
    with pytest.raises(ConfigurationError, match="NANOREPO_URL"):
        Client(settings=Settings.from_env(env={}))


def test_error_bodies_that_are_not_problems_still_become_nanorepo_errors() -> None:
    request = httpx.Request("GET", "http://svc.example/datasets")
    gateway = httpx.Response(502, text="<html>Bad Gateway</html>", request=request)
    err = error_from_response(gateway, base_url="http://svc.example")
    assert isinstance(err, ServiceError) and isinstance(err, NanorepoError)
    assert "502" in err.message and "Bad Gateway" in err.message
    problem = httpx.Response(
        500, json={"detail": "the service failed", "hint": "try later"}, request=request
    )
    err = error_from_response(problem)
    assert isinstance(err, ServiceError) and (err.message, err.hint) == (
        "the service failed",
        "try later",
    )


def test_deposit_uploads_files_and_directories(service: Any, tmp_path: Path) -> None:
    seed = service.seed
    src = tmp_path / "in"
    src.mkdir()
    write_ome_tiff(src / "cell.ome.tif", shape=(2, 40, 32))
    meta = src / "meta.yaml"
    meta.write_text(yaml.safe_dump(METADATA))
    # an OME-Zarr directory (one of the repository's own images) is uploaded file by file
    stored = service.repo.open(seed.public).images[0].path
    zarr_dir = shutil.copytree(stored, src / "copied.ome.zarr")
    with Client(service.url, seed.tokens["erin"]) as erin:
        out = erin.deposit([src / "cell.ome.tif", zarr_dir], "Two images", meta, "2099-01-01")
        assert (out["owner"], out["access"]) == ("erin", "embargoed")
        names = sorted(i["name"] for i in erin.images(out["accession"]))
        assert names == ["cell", "copied"]
        with pytest.raises(InvalidInput, match="no such file"):
            erin.deposit([src / "missing.tif"], "x")
        erin.upload_limit = 1000
        with pytest.raises(InvalidInput, match="deposit_staged"):
            erin.deposit([src / "cell.ome.tif"], "too big for an upload")


def test_annotation_threads_round_trip(service: Any) -> None:
    seed = service.seed
    acc = seed.granted
    with (
        Client(service.url, seed.tokens["bob"]) as bob,
        Client(service.url, seed.tokens["dave"]) as dave,
    ):
        t = bob.create_thread(
            acc, "Ring too small?", "The pore at **x=300 nm** looks small.",
            anchor={"kind": "region", "unit": "nanometer", "shape": "box",
                    "x": [200.0, 400.0], "y": [100.0, 300.0]},
            image="cell1", tags=["nup96"],
        )  # fmt: skip
        assert (t["image"], t["anchor"]["kind"], t["status"]) == ("cell1", "region", "open")
        assert "<strong>" in t["posts"][0]["html"]
        first = t["posts"][0]
        reply = dave.reply(acc, t["id"], "Agreed, ~90 nm.", parent_id=first["id"])
        assert reply["parent_id"] == first["id"] and reply["author"] == "dave"
        listed = bob.threads(acc, image="cell1", page_size=1)  # the seeded thread and ours
        assert [x["id"] for x in listed][-1] == t["id"]
        open_before = listed.meta["counts"]["open"]
        assert open_before == listed.total >= 2
        # edits: the current ETag is fetched when none is given; a stale one is refused
        edited = bob.edit_post(acc, t["id"], first["id"], "Looks ~90 nm.", reason="measured")
        assert edited["edited"] and edited["rev"] == first["rev"] + 1
        with pytest.raises(Conflict) as stale:
            bob.edit_post(
                acc, t["id"], first["id"], "lost?", etag=f'"p{first["id"]}-{first["rev"]}"'
            )
        assert stale.value.current["body"] == "Looks ~90 nm."  # type: ignore[attr-defined]
        history = bob.post_history(acc, t["id"], first["id"])
        assert [h["body"] for h in history][:2] == [first["body"], "Looks ~90 nm."]
        resolved = bob.set_thread_status(acc, t["id"], "resolved")
        assert resolved["status"] == "resolved"
        assert t["id"] in [x["id"] for x in bob.threads(acc, status="resolved")]
        assert bob.threads(acc).meta["counts"]["open"] == open_before - 1
        assert bob.update_thread(acc, t["id"], tags=["nup96", "size"])["tags"] == ["nup96", "size"]
        assert {e["what"] for e in bob.thread_history(acc, t["id"])} >= {"created"}
        assert bob.thread(acc, t["id"])["posts"][1]["body"] == "Agreed, ~90 nm."
        # W3C Web Annotation out, and in again elsewhere
        doc = bob.export_annotations(acc, t["id"])
        assert doc["type"] == "AnnotationCollection"
        with Client(service.url, seed.tokens["carol"]) as carol:
            with pytest.raises(DatasetNotFound):  # carol may not see the embargoed one
                list(carol.threads(acc))
            with pytest.raises(DatasetNotFound):
                carol.import_annotations(acc, doc)
        before = bob.threads(acc).total or 0
        assert dave.import_annotations(acc, doc) == 1  # a copy, written by dave
        assert bob.threads(acc).total == before + 1
        with pytest.raises(PermissionDenied):
            dave.delete_thread(acc, t["id"])  # not his thread
        bob.delete_thread(acc, t["id"])
        assert t["id"] not in [x["id"] for x in bob.threads(acc)]
