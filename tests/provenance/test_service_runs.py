"""Runs recorded through the service (a user server: NANOREPO_URL + its token): the run
executes here, the service records it as the token's user, checks every digest, and shows
it only to those who may see every dataset it read."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import httpx
import pytest

import nanorepo
from nanorepo.settings import Settings

pytestmark = pytest.mark.slow

BODY = """
import nanorepo, pathlib
ds = nanorepo.open(accession)
region = ds.images[0].to_xarray(dask=False)[0, :8, :8].values
nanorepo.record("sum", int(region.sum()))
pathlib.Path(output_dir, "sum.txt").write_text(str(region.sum()))
"""


def _remote(service: Any, user: str, home: Path) -> Settings:
    token = service.seed.tokens[user]
    return Settings.from_env(home, env={"NANOREPO_URL": service.url, "NANOREPO_TOKEN": token})


def test_a_remote_run_is_recorded_as_the_token_user_and_embargo_covers_it(
    service: Any, notebook, tmp_path: Path
) -> None:
    seed = service.seed
    # bob (granted) runs over the embargoed dataset from a "user server" without storage
    nb = notebook(BODY, accession=seed.granted, output_dir="x")
    rec = nanorepo.run(
        nb, output_dir=tmp_path / "out", settings=_remote(service, "bob", tmp_path / "b")
    )
    assert rec.status == "succeeded", rec.error
    assert rec.agent == "bob"
    assert {i.ref for i in rec.inputs} == {f"{seed.granted}@v1", f"{seed.granted}@v1/cell1"}
    expected = (tmp_path / "out" / "sum.txt").read_bytes()
    assert rec.values["sum"] == int(expected)
    with httpx.Client(base_url=service.url, timeout=30) as c:
        for user in ("bob", "dave", "alice", "cur"):  # who may see the dataset sees the run
            h = seed.headers(user)
            assert c.get(f"/runs/{rec.id}", headers=h).json()["agent"] == "bob"
            r = c.get(f"/runs/{rec.id}/outputs/sum.txt", headers=h)
            assert r.content == expected
            assert r.headers["etag"] == f'"{hashlib.sha256(expected).hexdigest()}"'
            assert c.get(f"/runs/{rec.id}/notebook", headers=h).content == nb.read_bytes()
        missing = "0" * 32
        for user in ("anonymous", "carol", "erin"):  # nobody else learns it exists
            h = seed.headers(user)
            for tail in ("", "/notebook", "/outputs/sum.txt"):
                r = c.get(f"/runs/{rec.id}{tail}", headers=h)
                m = c.get(f"/runs/{missing}{tail}", headers=h)
                assert r.status_code == m.status_code == 404
                assert r.text.replace(rec.id, missing) == m.text
            listed = c.get("/runs", params={"dataset": seed.granted}, headers=h).json()
            assert listed["items"] == []
            everything = c.get("/runs", params={"limit": 200}, headers=h).text
            assert rec.id not in everything and seed.granted not in everything
        mine = c.get("/runs", params={"agent": "bob"}, headers=seed.headers("bob")).json()
        assert [r["id"] for r in mine["items"]] == [rec.id]


def test_the_service_refuses_bad_records_and_changes_nothing(
    service: Any, notebook, tmp_path: Path
) -> None:
    seed = service.seed
    nb = notebook("print(1)", accession=seed.public)
    data = nb.read_bytes()
    body = {
        "id": "ab" * 16,
        "notebook": {
            "name": "a.ipynb",
            "sha256": hashlib.sha256(data).hexdigest(),
            "size": len(data),
        },
        "notebook_text": data.decode(),
        "started": "2026-01-01T00:00:00Z",
    }
    with httpx.Client(base_url=service.url, timeout=30) as c:
        assert c.post("/runs", json=body).status_code == 401  # anonymous may not record
        h = seed.headers("carol")
        wrong = {**body, "notebook": {**body["notebook"], "sha256": "0" * 64}}
        r = c.post("/runs", json=wrong, headers=h)
        assert r.status_code == 422 and "does not match its digest" in r.json()["detail"]
        assert c.get(f"/runs/{body['id']}", headers=h).status_code == 404
        r = c.post("/runs", json=body, headers=h)
        assert r.status_code == 201, r.text
        assert r.json()["agent"] == "carol" and r.json()["status"] == "running"
        assert c.post("/runs", json=body, headers=h).status_code == 201  # a retry: same run
        # carol may not read the hidden dataset: recording that she did is refused as if
        # it did not exist, and nothing is registered
        fin = {"status": "succeeded", "ended": "2026-01-01T00:01:00Z",
               "inputs": [{"kind": "dataset", "accession": seed.hidden, "version": 1,
                           "sha256": "1" * 64}]}  # fmt: skip
        r = c.post(f"/runs/{body['id']}/finish", json=fin, headers=h)
        assert r.status_code == 404 and seed.hidden in r.json()["detail"]
        # an output the record lists but nobody uploaded
        fin = {"status": "succeeded", "ended": "2026-01-01T00:01:00Z",
               "outputs": [{"name": "x.csv", "sha256": "2" * 64, "size": 3}]}  # fmt: skip
        r = c.post(f"/runs/{body['id']}/finish", json=fin, headers=h)
        assert r.status_code == 422 and "not uploaded" in r.json()["detail"]
        # uploaded, but not what the record says
        assert (
            c.put(f"/runs/{body['id']}/outputs/x.csv", content=b"abc", headers=h).status_code == 200
        )
        r = c.post(f"/runs/{body['id']}/finish", json=fin, headers=h)
        assert r.status_code == 422 and "does not match its digest" in r.json()["detail"]
        # hostile output names never reach the filesystem
        for name in ("../../etc/passwd", "a/../../b", "%2e%2e/x"):
            r = c.put(f"/runs/{body['id']}/outputs/{name}", content=b"x", headers=h)
            assert r.status_code in (404, 403, 422), (name, r.status_code)
        # someone else cannot add outputs to carol's run
        r = c.put(f"/runs/{body['id']}/outputs/y.csv", content=b"x", headers=seed.headers("bob"))
        assert r.status_code == 404
        run = c.get(f"/runs/{body['id']}", headers=h).json()
        assert run["status"] == "running" and run["outputs"] == [] and run["inputs"] == []
        # a correct finish then succeeds, and a second one is harmless
        fin = {"status": "succeeded", "ended": "2026-01-01T00:01:00Z",
               "outputs": [{"name": "x.csv", "sha256": hashlib.sha256(b"abc").hexdigest(), "size": 3}]}  # fmt: skip
        assert c.post(f"/runs/{body['id']}/finish", json=fin, headers=h).status_code == 200
        assert c.post(f"/runs/{body['id']}/finish", json=fin, headers=h).status_code == 200
        assert c.get(f"/runs/{body['id']}/outputs/x.csv", headers=h).content == b"abc"
    layout = service.repo.layout
    assert not list(layout.incoming.glob("run-upload-*"))
