"""The authorisation matrix: every endpoint x every role x (public, embargoed-granted,
embargoed-not-granted). Zero leaks: no bytes, no field, no count, no distinguishing error.

Endpoints come from the service's own OpenAPI document, so a route added later is in the
matrix automatically (and fails here until it says how to fill its path parameters). Runs
are in it through the seeded run of each case, which read that case's dataset.
"""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from nanorepo.testing._service import ROLES, SeededRepository

#: Who may see which seeded case (curators and admins see everything to curate it).
SEES = {
    "public": set(ROLES),
    "granted": {"bob", "dave", "alice", "cur", "root"},
    "hidden": {"alice", "cur", "root"},
}
#: GET endpoints that only some of those who see the dataset may read, and who.
RESTRICTED = {"/datasets/{accession}/grants": {"alice", "cur", "root"}}
#: A well-formed accession that does not exist, as long as the seeded ones (same length
#: so even Content-Length cannot tell them apart).
MISSING = "S-NANO9"
#: A well-formed run id that does not exist.
MISSING_RUN = "0" * 32
#: A word only the hidden dataset's title contains.
SECRET_WORD = "zanzibar"


def _case_values(seed: SeededRepository, case: str, accession: str) -> dict[str, str]:
    n = {"public": 0, "granted": 1, "hidden": 2}[case]
    return {
        "accession": accession,
        "version": "v1",
        "name": f"cell{n}",
        "image": f"cell{n}",
        "file": f"cell{n}.ome.xml",
        "path": "zarr.json",
        "key": "zarr.json",
        "object": "versions/v1/metadata.json",  # in every version's manifest
        "thread_id": str(n + 1),  # the seed opens one thread per case, in order
        "post_id": str(2 * n + 1),
        "kind": "user",
        "principal": "bob",
        "run_id": seed.runs[case] if accession != MISSING else MISSING_RUN,
    }


def _get_paths(client: httpx.Client) -> list[str]:
    doc = client.get("/openapi.json").json()
    prefix = client.base_url.path.rstrip("/")
    out = []
    for path, ops in doc["paths"].items():
        if "get" in ops and ("{accession}" in path or "{run_id}" in path):
            out.append(path.removeprefix(prefix))
    assert len(out) >= 6, out
    return sorted(out)


def _fill(path: str, values: dict[str, str]) -> str:
    def sub(m: re.Match[str]) -> str:
        name = m.group(1).split(":")[0]
        if name not in values:
            pytest.fail(f"the matrix does not know how to fill {{{name}}} in {path}: add it")
        return values[name]

    return re.sub(r"\{([^}]+)\}", sub, path)


def _accession(seed: SeededRepository, case: str) -> str:
    return {"public": seed.public, "granted": seed.granted, "hidden": seed.hidden}[case]


def test_every_get_endpoint_by_role_and_case(service: Any) -> None:
    seed: SeededRepository = service.seed
    with httpx.Client(base_url=service.url, timeout=30) as client:
        paths = _get_paths(client)
        checked = 0
        for path in paths:
            for case in ("public", "granted", "hidden"):
                acc = _accession(seed, case)
                url = _fill(path, _case_values(seed, case, acc))
                missing_url = _fill(path, _case_values(seed, case, MISSING))
                for user in ROLES:
                    h = seed.headers(user)
                    r = client.get(url, headers=h)
                    if user in SEES[case]:
                        if path in RESTRICTED and user not in RESTRICTED[path]:
                            # seen but not allowed: says why (401 to sign in, else 403)
                            expect = 401 if user == "anonymous" else 403
                            assert r.status_code == expect, (user, url, r.text)
                            continue
                        assert r.status_code == 200, (user, url, r.status_code, r.text[:300])
                        continue
                    m = client.get(missing_url, headers=h)
                    assert r.status_code == m.status_code == 404, (user, url, r.status_code)
                    text = r.text.replace(acc, MISSING).replace(seed.runs[case], MISSING_RUN)
                    assert text == m.text, (user, url)
                    assert r.headers.get("content-length") == m.headers.get("content-length")
                    assert r.headers.get("etag") is None
                    checked += 1
        # 404 checks made: (granted: 3 outsiders) + (hidden: 5 outsiders) per path
        assert checked == len(paths) * (3 + 5)


def test_lists_search_and_counts_never_show_what_the_caller_cannot_see(service: Any) -> None:
    seed: SeededRepository = service.seed
    with httpx.Client(base_url=service.url, timeout=30) as client:
        for user in ROLES:
            h = seed.headers(user)
            for q in ("", SECRET_WORD, "pores", "access:embargoed", f"accession:{seed.hidden}"):
                r = client.get("/datasets", params={"q": q}, headers=h)
                assert r.status_code == 200, r.text
                body = r.json()
                seen = {d["accession"] for d in body["items"]}
                expect = {
                    _accession(seed, c) for c in ("public", "granted", "hidden") if user in SEES[c]
                }
                assert seen <= expect, (user, q, seen)
                assert body["total"] == len(seen) or body["total"] <= len(expect)
                if user not in SEES["hidden"]:
                    assert SECRET_WORD not in r.text.lower()
                    assert seed.hidden not in r.text
                    if q in {SECRET_WORD, f"accession:{seed.hidden}"}:
                        assert body["total"] == 0 and body["items"] == []
            r = client.get("/datasets", params={"q": ""}, headers=h)
            visible = sum(1 for c in ("public", "granted", "hidden") if user in SEES[c])
            assert r.json()["total"] == visible, user
            # facet counts count only what the caller sees
            f = client.get("/facets", headers=h).json()
            assert sum(e["count"] for e in f["access"]) == visible, (user, f["access"])
            assert sum(e["count"] for e in f["technique"]) == visible
            f = client.get("/facets", params={"q": SECRET_WORD}, headers=h).json()
            expect_hidden = 1 if user in SEES["hidden"] else 0
            assert sum(e["count"] for e in f["access"]) == expect_hidden, user


def _etag_as_owner(client: httpx.Client, seed: SeededRepository, acc: str) -> str:
    r = client.get(f"/datasets/{acc}", headers=seed.headers("alice"))
    assert r.status_code == 200
    return r.headers["etag"]


def test_writes_by_outsiders_change_nothing_and_reveal_nothing(service: Any) -> None:
    seed: SeededRepository = service.seed
    with httpx.Client(base_url=service.url, timeout=30) as client:
        for case in ("granted", "hidden"):
            acc = _accession(seed, case)
            before = _etag_as_owner(client, seed, acc)
            m_before = client.get(f"/datasets/{acc}/mutable", headers=seed.headers("alice"))
            for user in ROLES:
                if user in SEES[case]:
                    continue
                h = {**seed.headers(user), "If-Match": m_before.headers["etag"]}
                attempts = [
                    ("PATCH", f"/datasets/{acc}/mutable",
                     {"changes": {"title": "pwned"}, "reason": "x"}),
                    ("POST", f"/datasets/{acc}/grants", {"kind": "user", "principal": user}),
                    ("DELETE", f"/datasets/{acc}/grants/user/bob", None),
                    ("POST", f"/datasets/{acc}/release", {"reason": "x"}),
                    ("POST", f"/datasets/{acc}/embargo", {"until": "2100-01-01", "reason": "x"}),
                ]  # fmt: skip
                for method, url, body in attempts:
                    r = client.request(method, url, json=body, headers=h)
                    m = client.request(method, url.replace(acc, MISSING), json=body, headers=h)
                    assert r.status_code == m.status_code == 404, (user, method, url, r.text)
                    assert r.text.replace(acc, MISSING) == m.text
            assert _etag_as_owner(client, seed, acc) == before


def test_seen_but_not_allowed_is_403_with_a_reason(service: Any) -> None:
    seed: SeededRepository = service.seed
    with httpx.Client(base_url=service.url, timeout=30) as client:
        acc = seed.granted
        tag = client.get(f"/datasets/{acc}/mutable", headers=seed.headers("alice")).headers["etag"]
        r = client.patch(
            f"/datasets/{acc}/mutable",
            json={"changes": {"title": "x"}, "reason": "x"},
            headers={**seed.headers("bob"), "If-Match": tag},
        )
        assert r.status_code == 403
        assert r.headers["content-type"] == "application/problem+json"
        assert "bob may not edit" in r.json()["detail"]
        # anonymous on public data: reading is fine, writing asks to sign in (401)
        r = client.patch(
            f"/datasets/{seed.public}/mutable",
            json={"changes": {"title": "x"}, "reason": "x"},
            headers={"If-Match": tag},
        )
        assert r.status_code == 401
        assert "signing in" in r.json()["detail"]


def test_grant_and_release_take_effect_at_once_and_are_recorded(service: Any) -> None:
    seed: SeededRepository = service.seed
    acc = seed.hidden
    with httpx.Client(base_url=service.url, timeout=30) as client:
        assert client.get(f"/datasets/{acc}", headers=seed.headers("carol")).status_code == 404
        r = client.post(
            f"/datasets/{acc}/grants",
            json={"kind": "user", "principal": "carol"},
            headers=seed.headers("alice"),
        )
        assert r.status_code == 201, r.text
        assert client.get(f"/datasets/{acc}", headers=seed.headers("carol")).status_code == 200
        assert client.get(f"/datasets/{acc}").status_code == 404  # still embargoed
        tag = _etag_as_owner(client, seed, acc)
        r = client.post(
            f"/datasets/{acc}/release",
            json={"reason": "paper published"},
            headers={**seed.headers("alice"), "If-Match": tag},
        )
        assert r.status_code == 200, r.text
        assert r.json()["access"] == "public"
        assert client.get(f"/datasets/{acc}").status_code == 200
        assert (service.repo.layout.dataset_dir(acc, "public")).is_dir()
        assert not (service.repo.layout.dataset_dir(acc, "embargoed")).exists()
        hist = client.get(f"/datasets/{acc}/history").json()["items"]
        changes = [(h["key"], h["who"]) for h in hist if h["key"] in {"grant", "access"}]
        assert ("grant", "alice") in changes and ("access", "alice") in changes
        release = next(h for h in hist if h["key"] == "access")
        assert release["old"]["access"] == "embargoed" and release["new"]["access"] == "public"
        assert release["reason"] == "paper published"


#: Who sees a run of alice's over each case, by the run's status: while it runs, and for
#: good once interrupted (its inputs may never have been sent), only its owner and the
#: curators; once its inputs are known (failed, succeeded) whoever sees every input.
RUN_SEES = {
    "running": {c: {"alice", "cur", "root"} for c in SEES},
    "interrupted": {c: {"alice", "cur", "root"} for c in SEES},
    "failed": SEES,
}


def _begin_run(client: httpx.Client, seed: SeededRepository, acc: str, secret: str) -> str:
    import hashlib
    import uuid
    from datetime import UTC, datetime

    nb = '{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}'
    run_id = uuid.uuid4().hex
    r = client.post(
        "/runs",
        json={
            "id": run_id,
            "notebook": {"name": "secret-plan.ipynb",
                         "sha256": hashlib.sha256(nb.encode()).hexdigest(), "size": len(nb)},
            "notebook_text": nb,
            "parameters": {"accession": acc, "note": secret},
            "started": datetime.now(UTC).isoformat(),
        },
        headers=seed.headers("alice"),
    )  # fmt: skip
    assert r.status_code == 201, r.text
    return run_id


def _dataset_input(service: Any, acc: str) -> dict[str, Any]:
    from sqlmodel import select

    from nanorepo.catalog.models import Version

    cat = service.repo.catalog
    with cat.session() as s:
        ds = cat.dataset(s, acc)
        v = s.exec(select(Version).where(Version.dataset_id == ds.id)).one()
        return {"kind": "dataset", "accession": acc, "version": 1, "sha256": v.manifest_digest}


def _end_run(client: httpx.Client, service: Any, run_id: str, acc: str, status: str) -> None:
    from datetime import UTC, datetime

    h = service.seed.headers("alice")
    if status == "interrupted":
        r = client.post(f"/runs/{run_id}/interrupt", headers=h)
    elif status == "failed":
        r = client.post(
            f"/runs/{run_id}/finish",
            json={"status": "failed", "ended": datetime.now(UTC).isoformat(),
                  "inputs": [_dataset_input(service, acc)],
                  "error": {"ename": "ValueError", "evalue": "boom"}},
            headers=h,
        )  # fmt: skip
    else:
        return
    assert r.status_code == 200, r.text
    assert r.json()["status"] == status


@pytest.mark.parametrize("status", ["running", "interrupted", "failed"])
def test_runs_in_every_state_are_seen_only_by_those_allowed(service: Any, status: str) -> None:
    """Finding 3 of issue 14: a run over an embargoed dataset, while it runs or after it
    died, showed its parameters and notebook to everyone."""
    seed: SeededRepository = service.seed
    with httpx.Client(base_url=service.url, timeout=30) as client:
        paths = [p for p in _get_paths(client) if "{run_id}" in p]
        ids = {}
        for case in ("public", "granted", "hidden"):
            acc = _accession(seed, case)
            ids[case] = _begin_run(client, seed, acc, f"{SECRET_WORD}-{case}-{status}")
            _end_run(client, service, ids[case], acc, status)
        for case, run_id in ids.items():
            acc = _accession(seed, case)
            values = {**_case_values(seed, case, acc), "run_id": run_id, "name": "x"}
            for user in ROLES:
                h = seed.headers(user)
                sees = user in RUN_SEES[status][case]
                listed = client.get("/runs", params={"limit": 200}, headers=h).json()["items"]
                assert (run_id in {r["id"] for r in listed}) == sees, (status, case, user)
                by_ds = client.get("/runs", params={"dataset": acc}, headers=h).json()["items"]
                if not sees:
                    assert run_id not in {r["id"] for r in by_ds}
                    assert f"{SECRET_WORD}-{case}" not in str(listed) + str(by_ds)
                for path in paths:
                    if path.endswith("/outputs/{name}") or path.endswith("/outputs/{name:path}"):
                        continue  # no outputs: 404 for everyone
                    r = client.get(_fill(path, values), headers=h)
                    if sees:
                        assert r.status_code == 200, (status, case, user, path, r.text[:200])
                    else:
                        assert r.status_code == 404, (status, case, user, path)
                        assert SECRET_WORD not in r.text and run_id not in r.text.replace(
                            f"no run {run_id!r}", ""
                        )
