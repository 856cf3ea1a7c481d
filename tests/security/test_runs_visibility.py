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
