"""Deposits over HTTP: uploads (multipart, streamed to staging, size-limited) and deposits
from the caller's staging area on the server. Bad input is a clear 422 that publishes
nothing; paths outside the caller's own area are refused without saying whether they exist.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from nanorepo.repository import Repository
from nanorepo.settings import Settings
from nanorepo.testing._service import live_service, seed_repository
from tests.conftest import METADATA, write_ome_tiff


def _tiff(path: Path, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_ome_tiff(path, shape=(2, 40, 32), seed=seed)
    return path


def _metadata(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(METADATA))
    return path


def _count(client: httpx.Client, headers: dict[str, str]) -> int:
    r = client.get("/datasets", headers=headers)
    assert r.status_code == 200
    return int(r.json()["total"])


def _leftovers(settings: Settings) -> list[Path]:
    uploads = settings.staging / "uploads"
    return sorted(uploads.rglob("*")) if uploads.exists() else []


def test_an_upload_is_deposited_as_the_caller(service: Any, tmp_path: Path) -> None:
    seed = service.seed
    erin = seed.headers("erin")
    cell = _tiff(tmp_path / "in" / "cell7.ome.tif")
    meta = _metadata(tmp_path / "in" / "metadata.yaml")
    notes = tmp_path / "in" / "protocol.txt"
    notes.write_text("fixed in 4% PFA\n")
    with httpx.Client(base_url=service.url, timeout=60) as client:
        files = [
            ("files", ("cell7.ome.tif", cell.read_bytes(), "image/tiff")),
            ("supporting", ("protocol.txt", notes.read_bytes(), "text/plain")),
            ("metadata", ("metadata.yaml", meta.read_bytes(), "application/yaml")),
        ]
        r = client.post("/deposits", files=files, data={"title": "Uploaded pores"}, headers=erin)
        assert r.status_code == 201, r.text
        body = r.json()
        assert body["owner"] == "erin" and body["access"] == "public"
        assert body["title"] == "Uploaded pores" and body["ref"] == f"{body['accession']}@v1"
        assert r.headers["location"].endswith(f"/datasets/{body['accession']}")
        got = client.get(r.headers["location"], headers=erin)
        assert got.status_code == 200 and "edit" in got.json()["can"]  # erin owns it
        images = client.get(f"/datasets/{body['accession']}/versions/v1/images").json()
        assert [i["name"] for i in images["items"]] == ["cell7"]
        names = [f["name"] for f in client.get(f"/datasets/{body['accession']}/versions/v1/files").json()["items"]]  # fmt: skip
        assert "protocol.txt" in names

        # an embargoed upload is seen by its owner and nobody outside
        r = client.post(
            "/deposits",
            files=[
                ("files", ("cell8.ome.tif", _tiff(tmp_path / "c8.ome.tif", 8).read_bytes())),
                ("metadata", ("metadata.yaml", meta.read_bytes())),
            ],
            data={"title": "Embargoed upload", "embargo_until": "2099-01-01"},
            headers=erin,
        )
        assert r.status_code == 201, r.text
        acc = r.json()["accession"]
        assert r.json()["access"] == "embargoed"
        assert client.get(f"/datasets/{acc}", headers=seed.headers("carol")).status_code == 404
        assert client.get(f"/datasets/{acc}", headers=erin).status_code == 200
    assert _leftovers(service.settings) == []


def test_only_depositors_may_deposit_and_refusals_change_nothing(
    service: Any, tmp_path: Path
) -> None:
    seed = service.seed
    cell = _tiff(tmp_path / "cell.ome.tif").read_bytes()
    with httpx.Client(base_url=service.url, timeout=60) as client:
        before = _count(client, seed.headers("root"))
        for user, status in (("anonymous", 401), ("carol", 403), ("bob", 403)):
            r = client.post(
                "/deposits",
                files=[("files", ("cell.ome.tif", cell))],
                data={"title": "Not mine to give"},
                headers=seed.headers(user),
            )
            assert r.status_code == status, (user, r.text)
            assert r.headers["content-type"] == "application/problem+json"
            assert "deposit" in r.json()["detail"]
            r = client.post(
                "/deposits/staged",
                json={"paths": ["cell.ome.tif"], "title": "x"},
                headers=seed.headers(user),
            )
            assert r.status_code == status, (user, r.text)
        # this service has no staging areas: a depositor is told to upload instead
        r = client.post(
            "/deposits/staged",
            json={"paths": ["/etc/hostname"], "title": "x"},
            headers=seed.headers("erin"),
        )
        assert r.status_code == 403
        assert "no staging areas" in r.json()["detail"]
        assert "POST /deposits" in r.json()["hint"]
        assert _count(client, seed.headers("root")) == before


def test_bad_uploads_are_422_name_the_problem_and_publish_nothing(
    service: Any, tmp_path: Path
) -> None:
    seed = service.seed
    erin = seed.headers("erin")
    cell = _tiff(tmp_path / "cell.ome.tif").read_bytes()
    ok = ("files", ("cell.ome.tif", cell))
    bad_meta = b"study: [this is not: a mapping\n"
    cases: list[tuple[str, dict[str, Any], str]] = [
        ("not multipart", {"json": {"title": "x"}}, "multipart/form-data"),
        ("no files", {"files": [("metadata", ("m.yaml", b"{}"))], "data": {"title": "x"}},
         "no files"),
        ("no title", {"files": [ok]}, "title"),
        ("bad date", {"files": [ok], "data": {"title": "x", "embargo_until": "soon"}},
         "not a date"),
        ("past date", {"files": [ok], "data": {"title": "x", "embargo_until": "2001-01-01"}},
         "not in the future"),
        ("climbing name", {"files": [("files", ("../evil.ome.tif", cell))],
                           "data": {"title": "x"}}, "not acceptable"),
        ("absolute name", {"files": [("files", ("/etc/evil.tif", cell))],
                           "data": {"title": "x"}}, "not acceptable"),
        ("not an image", {"files": [("files", ("junk.tif", b"\x00junk" * 50))],
                          "data": {"title": "x"}}, "junk.tif"),
        ("bad metadata", {"files": [ok, ("metadata", ("meta.yaml", bad_meta))],
                          "data": {"title": "x"}}, "meta.yaml"),
        ("unknown field", {"files": [ok], "data": {"title": "x", "owner": "root"}},
         "unknown form field"),
        ("twice", {"files": [ok, ok], "data": {"title": "x"}}, "uploaded twice"),
        ("file and dir", {"files": [("files", ("a.zarr", cell)), ("files", ("a.zarr/zarr.json",
                                                                             b"{}"))],
                          "data": {"title": "x"}}, "clashes"),
    ]  # fmt: skip
    with httpx.Client(base_url=service.url, timeout=60) as client:
        before = _count(client, seed.headers("root"))
        for what, kwargs, expect in cases:
            r = client.post("/deposits", headers=erin, **kwargs)
            assert r.status_code == 422, (what, r.text)
            assert r.headers["content-type"] == "application/problem+json"
            problem = r.json()
            assert expect in problem["detail"], (what, problem)
            # errors speak of the uploaded names, never of where the service keeps them
            assert str(service.settings.staging) not in r.text, what
        assert _count(client, seed.headers("root")) == before
    assert _leftovers(service.settings) == []


def test_uploads_over_the_limit_are_cut_off_with_413(
    service: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nanorepo.service import _deposits

    monkeypatch.setattr(_deposits, "MAX_UPLOAD_BYTES", 4096)  # the service runs in-process
    seed = service.seed
    big = os.urandom(64 * 1024)
    with httpx.Client(base_url=service.url, timeout=60) as client:
        before = _count(client, seed.headers("root"))
        # with Content-Length: refused before the body is read
        r = client.post(
            "/deposits",
            files=[("files", ("big.ome.tif", big))],
            data={"title": "x"},
            headers=seed.headers("erin"),
        )
        assert r.status_code == 413, r.text
        assert "nothing was deposited" in r.json()["detail"]
        assert "POST /deposits/staged" in r.json()["hint"]
        # chunked, length unknown: cut off while streaming
        boundary = "b0undary"
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="title"\r\n\r\nx\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="files"; '
            f'filename="big.ome.tif"\r\n\r\n'
        ).encode()

        def body() -> Iterator[bytes]:
            yield head
            for _ in range(4):
                yield big[:16384]
            yield f"\r\n--{boundary}--\r\n".encode()

        r = client.post(
            "/deposits",
            content=body(),
            headers={**seed.headers("erin"),
                     "Content-Type": f"multipart/form-data; boundary={boundary}"},
        )  # fmt: skip
        assert r.status_code == 413, r.text
        assert _count(client, seed.headers("root")) == before
    assert _leftovers(service.settings) == []


@pytest.fixture
def staged_service(settings: Settings, tmp_path: Path) -> Iterator[Any]:
    """A live service whose depositors have staging areas ``areas/<user>/``."""
    seeder = Repository(settings, create=True)
    seed = seed_repository(seeder, tmp_path / "seed")
    seeder.close()
    areas = (tmp_path / "areas").resolve()
    for user in ("erin", "alice"):
        (areas / user).mkdir(parents=True)
    st = settings.with_(allowed_roots=(areas,))
    repo = Repository(st, create=True)
    with live_service(st, repo=repo) as live:
        live.seed = seed  # type: ignore[attr-defined]
        live.areas = areas  # type: ignore[attr-defined]
        yield live
    repo.close()


def test_staged_deposits_come_from_the_callers_own_area(
    staged_service: Any, tmp_path: Path
) -> None:
    service = staged_service
    seed, areas = service.seed, service.areas
    erin = seed.headers("erin")
    _tiff(areas / "erin" / "run1" / "cell1.ome.tif")
    _metadata(areas / "erin" / "run1" / "metadata.yaml")
    (areas / "erin" / "run1" / "truth.csv").write_text("ring,diameter_nm\n1,107\n")
    _tiff(areas / "erin" / "cell2.ome.tif", 2)
    with httpx.Client(base_url=service.url, timeout=60) as client:
        r = client.post(
            "/deposits/staged",
            json={"paths": ["run1/cell1.ome.tif"], "title": "From staging",
                  "metadata": "run1/metadata.yaml", "supporting": ["run1/truth.csv"]},
            headers=erin,
        )  # fmt: skip
        assert r.status_code == 201, r.text
        assert r.json()["owner"] == "erin"
        assert r.headers["location"].endswith(f"/datasets/{r.json()['accession']}")
        # absolute paths inside the area are fine too
        r = client.post(
            "/deposits/staged",
            json={"paths": [str(areas / "erin" / "cell2.ome.tif")], "title": "Absolute",
                  "metadata": str(areas / "erin" / "run1" / "metadata.yaml"),
                  "embargo_until": "2099-12-31"},
            headers=erin,
        )  # fmt: skip
        assert r.status_code == 201, r.text
        assert r.json()["access"] == "embargoed"
        # the same files again: a conflict, not a second dataset
        again = client.post(
            "/deposits/staged",
            json={"paths": [str(areas / "erin" / "cell2.ome.tif")], "title": "Absolute",
                  "metadata": str(areas / "erin" / "run1" / "metadata.yaml"),
                  "embargo_until": "2099-12-31"},
            headers=erin,
        )  # fmt: skip
        assert again.status_code == 409, again.text
        assert "deposited already" in again.json()["detail"]
        # a missing file in one's own area is an ordinary bad input
        r = client.post(
            "/deposits/staged", json={"paths": ["nope.ome.tif"], "title": "x"}, headers=erin
        )
        assert r.status_code == 422 and "no such file" in r.json()["detail"]


def test_paths_outside_the_callers_area_are_refused_alike(
    staged_service: Any, tmp_path: Path
) -> None:
    service = staged_service
    seed, areas = service.seed, service.areas
    erin = seed.headers("erin")
    outside = _tiff(tmp_path / "elsewhere" / "secret.ome.tif")
    alices = _tiff(areas / "alice" / "hers.ome.tif")
    (areas / "erin" / "link.ome.tif").symlink_to(outside)
    probes = [
        str(outside),  # exists
        str(tmp_path / "elsewhere" / "missing.ome.tif"),  # does not
        "/etc/passwd",
        str(alices),  # another user's area
        "../alice/hers.ome.tif",
        "link.ome.tif",  # a symlink out of the area
    ]
    with httpx.Client(base_url=service.url, timeout=60) as client:
        before = _count(client, seed.headers("root"))
        answers = []
        for probe in probes:
            for body in (
                {"paths": [probe], "title": "x"},
                {"paths": ["x.ome.tif"], "title": "x", "metadata": probe},
                {"paths": ["x.ome.tif"], "title": "x", "supporting": [probe]},
            ):
                r = client.post("/deposits/staged", json=body, headers=erin)
                assert r.status_code == 403, (probe, r.text)
                answers.append(r.text.replace(probe, "PROBE"))
        # nothing in the answer depends on what lies outside the area
        assert len(set(answers)) == 1, set(answers)
        assert "not in your staging area" in answers[0]
        assert _count(client, seed.headers("root")) == before
