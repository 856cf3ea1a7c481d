"""Issue 14, finding 3, end to end: a real ``nanorepo.run`` of a notebook recorded by the
service (a user server: ``NANOREPO_URL`` + token) reports each input as its journal records
it, so other users are judged on it while the notebook still runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import nbformat
import pytest

import nanorepo
from nanorepo.settings import Settings

pytestmark = pytest.mark.slow

# opens the dataset, says so, then waits for the test to let it end
BODY = """
import nanorepo, pathlib, time
ds = nanorepo.open(accession)
pathlib.Path(signal, "opened").write_text(ds.ref)
for _ in range(600):
    if pathlib.Path(signal, "go").exists():
        break
    time.sleep(0.1)
"""


def _notebook(path: Path, **parameters: Any) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    p = nbformat.v4.new_code_cell("\n".join(f"{k} = {v!r}" for k, v in parameters.items()))
    p.metadata["tags"] = ["parameters"]
    nb.cells = [p, nbformat.v4.new_code_cell(BODY)]
    nbformat.write(nb, path)
    return path


def _start(
    service: Any, user: str, accession: str, tmp: Path
) -> tuple[Path, subprocess.Popen[str], str]:
    """``nanorepo run`` the notebook as ``user``; wait until it has opened the dataset."""
    signal = tmp / f"signal-{user}"
    signal.mkdir()
    nb = _notebook(tmp / f"{user}.ipynb", accession=accession, signal=str(signal))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NANOREPO_", "JUPYTERHUB_"))}
    env.update(
        NANOREPO_URL=service.url,
        NANOREPO_TOKEN=service.seed.tokens[user],
        NANOREPO_HOME=str(tmp / f"home-{user}"),
    )
    cmd = [str(Path(sys.executable).with_name("nanorepo")), "run", str(nb), "--json",
           "--output-dir", str(tmp / f"out-{user}")]  # fmt: skip
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (signal / "opened").exists():
        if proc.poll() is not None:
            pytest.fail(f"nanorepo run ended early: {proc.communicate()}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("the notebook never opened the dataset")
        time.sleep(0.2)
    return signal, proc, _running_id(service, user)


def _running_id(service: Any, user: str) -> str:
    """The id of ``user``'s one running run, as the service lists it to them."""
    items = httpx.get(
        f"{service.url}/runs", params={"status": "running"}, headers=service.seed.headers(user)
    ).json()["items"]
    assert len(items) == 1, items
    return str(items[0]["id"])


def _finish(signal: Path, proc: subprocess.Popen[str]) -> dict[str, Any]:
    (signal / "go").write_text("")
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    return dict(json.loads(out))


def test_a_live_run_is_seen_only_by_those_who_may_see_what_it_read(
    service: Any, tmp_path: Path
) -> None:
    seed = service.seed
    signal, proc, run_id = _start(service, "alice", seed.granted, tmp_path)
    with httpx.Client(base_url=service.url, timeout=30) as c:
        # the input is on the service before the notebook got the data
        mine = c.get(f"/runs/{run_id}", headers=seed.headers("alice")).json()
        assert [i["ref"] for i in mine["inputs"]] == [f"{seed.granted}@v1"]
        for user in ("anonymous", "carol", "erin"):
            h = seed.headers(user)
            for tail in ("", "/notebook", "/lineage"):
                assert c.get(f"/runs/{run_id}{tail}", headers=h).status_code == 404, (user, tail)
            assert run_id not in c.get("/runs", params={"limit": 200}, headers=h).text
        for user in ("bob", "dave"):  # granted: they may see what it reads
            assert c.get(f"/runs/{run_id}", headers=seed.headers(user)).status_code == 200
        rec = _finish(signal, proc)
        assert rec["status"] == "succeeded" and rec["id"] == run_id, rec["error"]
        assert [i["ref"] for i in rec["inputs"]] == [f"{seed.granted}@v1"]  # reported once
        assert c.get(f"/runs/{run_id}", headers=seed.headers("carol")).status_code == 404

        # over public data: public as soon as its input is known, while it still runs
        signal, proc, run_id = _start(service, "bob", seed.public, tmp_path)
        for user in ("anonymous", "carol"):
            h = seed.headers(user)
            r = c.get(f"/runs/{run_id}", headers=h)
            assert r.status_code == 200 and r.json()["status"] == "running"
            listed = c.get("/runs", params={"dataset": seed.public}, headers=h)
            assert run_id in listed.text
        assert _finish(signal, proc)["status"] == "succeeded"


def test_a_read_the_service_does_not_record_returns_no_data(service: Any, tmp_path: Path) -> None:
    """The kernel's token lost the right to record (here: the run ended under it), so
    the read fails with nanorepo's error and the notebook gets nothing."""
    seed = service.seed
    nb = _notebook(
        tmp_path / "late.ipynb", accession=seed.public, signal=str(tmp_path)
    )  # never executed
    settings = Settings.from_env(
        tmp_path / "home",
        env={"NANOREPO_URL": service.url, "NANOREPO_TOKEN": seed.tokens["carol"]},
    )
    from nanorepo.access._journal import InputNotRecorded, Journal

    rec = nanorepo.run(nb, output_dir=tmp_path / "out", settings=settings, execute=False)
    journal = Journal(tmp_path / f"{rec.id}.journal", url=service.url, token=seed.tokens["carol"])
    with pytest.raises(InputNotRecorded, match="was not read: the service refused") as exc:
        journal.note_input("dataset", seed.public, 1, "0" * 64)
    assert "409" in str(exc.value) and not journal.path.exists()
