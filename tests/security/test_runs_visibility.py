"""Issue 14, finding 3: a run over an embargoed dataset was public while it ran (its inputs
reached the service only at ``finish``), and for good once interrupted.

Now a run is visible only to its owner and curators until its inputs are known; the full
matrix (every run endpoint x role x access case x running/interrupted/failed) is in
``tests/service/test_authorisation.py``.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx

NOTEBOOK = '{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}'
SECRET = "unpublished-knockout-protocol"


def _begin(c: httpx.Client, headers: dict[str, str], accession: str) -> str:
    run_id = uuid.uuid4().hex
    r = c.post(
        "/runs",
        json={
            "id": run_id,
            "notebook": {"name": "analysis.ipynb", "size": len(NOTEBOOK),
                         "sha256": hashlib.sha256(NOTEBOOK.encode()).hexdigest()},
            "notebook_text": NOTEBOOK,
            "parameters": {"accession": accession, "protocol": SECRET},
            "started": datetime.now(UTC).isoformat(),
        },
        headers=headers,
    )  # fmt: skip
    assert r.status_code == 201, r.text
    return run_id


def _outsiders_see_nothing(c: httpx.Client, seed: Any, run_id: str) -> None:
    for user in ("anonymous", "carol", "bob", "erin"):
        h = seed.headers(user)
        for path in (f"/runs/{run_id}", f"/runs/{run_id}/notebook", f"/runs/{run_id}/lineage",
                     f"/runs/{run_id}/crate", f"/runs/{run_id[:8]}"):  # fmt: skip
            assert c.get(path, headers=h).status_code == 404, (user, path)
        listed = c.get("/runs", params={"limit": 200}, headers=h)
        assert listed.status_code == 200
        assert run_id not in listed.text and SECRET not in listed.text, user
        lineage = c.get(f"/datasets/{seed.public}/lineage", headers=h)
        assert run_id not in lineage.text


def test_a_running_run_over_an_embargoed_dataset_is_not_public(service: Any) -> None:
    seed = service.seed
    with httpx.Client(base_url=service.url, timeout=30) as c:
        run_id = _begin(c, seed.headers("alice"), seed.hidden)
        _outsiders_see_nothing(c, seed, run_id)
        for user in ("alice", "cur", "root"):  # the owner and the curators do
            assert c.get(f"/runs/{run_id}", headers=seed.headers(user)).status_code == 200


def test_an_interrupted_run_stays_private(service: Any) -> None:
    seed = service.seed
    with httpx.Client(base_url=service.url, timeout=30) as c:
        run_id = _begin(c, seed.headers("alice"), seed.granted)
        r = c.post(f"/runs/{run_id}/interrupt", headers=seed.headers("alice"))
        assert r.status_code == 200 and r.json()["status"] == "interrupted"
        _outsiders_see_nothing(c, seed, run_id)
        assert c.get(f"/runs/{run_id}", headers=seed.headers("cur")).status_code == 200


# -- inputs reported while the run runs (POST /runs/{id}/inputs) -------------------------


def _manifest(c: httpx.Client, seed: Any, accession: str) -> str:
    r = c.get(f"/datasets/{accession}/versions", headers=seed.headers("root"))
    assert r.status_code == 200, r.text
    return str(r.json()[0]["manifest_sha256"])


def _report(c: httpx.Client, h: dict[str, str], run_id: str, acc: str, sha: str) -> Any:
    body = {"inputs": [{"kind": "dataset", "accession": acc, "version": 1, "sha256": sha}]}
    return c.post(f"/runs/{run_id}/inputs", json=body, headers=h)


def test_reported_inputs_decide_who_sees_a_running_or_interrupted_run(service: Any) -> None:
    seed = service.seed
    with httpx.Client(base_url=service.url, timeout=30) as c:
        alice = seed.headers("alice")
        # over public data: visible to everyone as soon as its input is known
        open_run = _begin(c, alice, seed.public)
        assert c.get(f"/runs/{open_run}", headers=seed.headers("anonymous")).status_code == 404
        r = _report(c, alice, open_run, seed.public, _manifest(c, seed, seed.public))
        assert r.status_code == 200, r.text
        assert [i["ref"] for i in r.json()["inputs"]] == [f"{seed.public}@v1"]
        assert r.json()["status"] == "running"
        for user in ("anonymous", "carol"):
            got = c.get(f"/runs/{open_run}", headers=seed.headers(user))
            assert got.status_code == 200 and got.json()["inputs"][0]["accession"] == seed.public
        # over the granted embargoed dataset: bob and the lab see it, nobody else; it stays
        # so once interrupted (it keeps what it reported)
        run_id = _begin(c, alice, seed.granted)
        assert _report(c, alice, run_id, seed.granted, _manifest(c, seed, seed.granted)).is_success
        for status in ("running", "interrupted"):
            for user in ("bob", "dave"):
                assert c.get(f"/runs/{run_id}", headers=seed.headers(user)).status_code == 200
            for user in ("anonymous", "carol", "erin"):
                h = seed.headers(user)
                assert c.get(f"/runs/{run_id}", headers=h).status_code == 404, (status, user)
                assert c.get(f"/runs/{run_id}/notebook", headers=h).status_code == 404
                assert run_id not in c.get("/runs", params={"limit": 200}, headers=h).text
            if status == "running":
                assert c.post(f"/runs/{run_id}/interrupt", headers=alice).is_success
        # a public input reported after an embargoed one does not make the run public
        assert _report(c, alice, open_run, seed.hidden, _manifest(c, seed, seed.hidden)).is_success
        assert c.get(f"/runs/{open_run}", headers=seed.headers("anonymous")).status_code == 404
        assert c.get(f"/runs/{open_run}", headers=seed.headers("bob")).status_code == 404


def test_reporting_inputs_is_refused_to_anyone_but_the_owner_of_a_running_run(
    service: Any,
) -> None:
    seed = service.seed
    with httpx.Client(base_url=service.url, timeout=30) as c:
        alice, carol = seed.headers("alice"), seed.headers("carol")
        hidden = _manifest(c, seed, seed.hidden)
        run_id = _begin(c, alice, seed.hidden)
        # anonymous, another user (even one who could see the dataset), a wrong digest, an
        # unknown version: refused, nothing recorded
        r = _report(c, seed.headers("anonymous"), run_id, seed.hidden, hidden)
        assert r.status_code == 401 and "signing in is required" in r.json()["detail"]
        assert _report(c, seed.headers("bob"), run_id, seed.public, hidden).status_code == 404
        r = _report(c, alice, run_id, seed.hidden, "0" * 64)
        assert r.status_code == 422 and "is not the stored" in r.json()["detail"]
        body = {"inputs": [{"kind": "dataset", "accession": seed.hidden, "version": 9,
                            "sha256": hidden}]}  # fmt: skip
        r = c.post(f"/runs/{run_id}/inputs", json=body, headers=alice)
        assert r.status_code == 422 and "has no version 9" in r.json()["detail"]
        assert c.get(f"/runs/{run_id}", headers=alice).json()["inputs"] == []
        # carol's own run cannot claim (and so probe) a dataset she may not see
        mine = _begin(c, carol, seed.public)
        r = _report(c, carol, mine, seed.hidden, hidden)
        assert r.status_code == 404 and c.get(f"/runs/{mine}", headers=carol).json()["inputs"] == []
        too_many = {"inputs": [body["inputs"][0]] * 1001}
        assert c.post(f"/runs/{mine}/inputs", json=too_many, headers=carol).status_code == 422
        # once ended, a run's inputs are its record's: no more reports
        assert c.post(f"/runs/{run_id}/interrupt", headers=alice).is_success
        r = _report(c, alice, run_id, seed.hidden, hidden)
        assert r.status_code == 409 and "already ended (interrupted)" in r.json()["detail"]
