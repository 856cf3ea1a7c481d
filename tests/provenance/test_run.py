"""``nanorepo.run``: real papermill runs of small notebooks on a seeded repository.

What a run reads is recorded automatically (not what its parameters declare), with the
digests the catalog holds; a failed notebook is recorded with its error and partial
notebook; a killed run is marked interrupted by the next command; bad input changes nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy
import pytest
from sqlmodel import select

import nanorepo
from nanorepo.catalog.models import Image, Run, Version
from nanorepo.errors import InvalidInput
from nanorepo.provenance import Input, Output, RunRecord, load_notebook
from nanorepo.repository import Repository
from nanorepo.testing._service import SeededRepository

pytestmark = pytest.mark.slow


def _digests(repo: Repository, accession: str) -> tuple[str, str, str]:
    """(version manifest digest, image name, image manifest digest) from the catalog."""
    with repo.catalog.session() as s:
        ds = repo.catalog.dataset(s, accession)
        v = s.exec(select(Version).where(Version.dataset_id == ds.id)).one()
        im = s.exec(select(Image).where(Image.version_id == v.id)).one()
        return v.manifest_digest, im.name, im.manifest_digest


def test_a_run_records_what_the_notebook_actually_read_and_wrote(
    sqlite_repo: Repository, seeded: SeededRepository, notebook, tmp_path: Path
) -> None:
    # The parameters name one dataset; the notebook also opens another one it computes,
    # reading only its metadata. Both must be in the record, the pixels read only for one.
    other = seeded.granted
    nb = notebook(
        f"""
import nanorepo, pathlib
ds = nanorepo.open(accession)
img = ds.images[0]
region = img.to_xarray(dask=False)[0, :16, :16].values
mean = nanorepo.record("mean_counts", region.mean())
meta = nanorepo.open("{other[:-1]}" + "{other[-1]}").metadata
pathlib.Path(output_dir, "tables").mkdir()
pathlib.Path(output_dir, "tables", "mean.csv").write_text(f"mean\\n{{mean}}\\n")
print(region.shape)
""",
        accession=seeded.public,
        output_dir="placeholder",
    )
    out = tmp_path / "results"
    rec = nanorepo.run(
        nb, {"accession": seeded.public}, output_dir=out, settings=sqlite_repo.settings
    )

    assert rec.status == "succeeded", rec.error
    assert rec.agent == "alice"
    assert rec.ended is not None and rec.ended >= rec.started
    assert rec.parameters == {"accession": seeded.public, "output_dir": str(out.resolve())}
    v_digest, image, im_digest = _digests(sqlite_repo, seeded.public)
    other_digest, _, _ = _digests(sqlite_repo, other)
    assert set(rec.inputs) == {
        Input("dataset", seeded.public, 1, v_digest),
        Input("image", seeded.public, 1, im_digest, image),
        Input("dataset", other, 1, other_digest),
    }
    assert "mean_counts" in rec.values and rec.values["mean_counts"] > 0
    # outputs: exactly the files in the output dir, with their real digests
    on_disk = {p.relative_to(out).as_posix(): p for p in out.rglob("*") if p.is_file()}
    assert {o.name for o in rec.outputs} == set(on_disk) == {"tables/mean.csv", nb.name}
    for o in rec.outputs:
        assert o.sha256 == hashlib.sha256(on_disk[o.name].read_bytes()).hexdigest()
        stored = sqlite_repo.layout.run_dir(rec.id) / o.name
        assert stored.read_bytes() == on_disk[o.name].read_bytes()
    executed = next(o for o in rec.outputs if o.role == "executed-notebook")
    assert "(16, 16)" in on_disk[executed.name].read_text()
    # the notebook as it was, by digest; the environment of this interpreter
    _, data, _ = load_notebook(nb)
    assert rec.notebook.sha256 == hashlib.sha256(data).hexdigest()
    assert sqlite_repo.runs.notebook(rec.id) == data
    assert rec.environment is not None
    assert rec.environment.packages["numpy"] == numpy.__version__
    assert rec.environment.kernel["name"] == "python3"
    assert rec.environment.python == ".".join(map(str, sys.version_info[:3]))
    # what is stored reads back as what was returned
    assert sqlite_repo.runs.get(rec.id) == rec
    # newest first: this run, then the seeded one that read the same dataset
    assert [r.id for r in sqlite_repo.runs.find(dataset=other)] == [rec.id, seeded.runs["granted"]]


def test_a_failed_notebook_is_recorded_with_its_error_and_partial_notebook(
    sqlite_repo: Repository, seeded: SeededRepository, notebook, tmp_path: Path
) -> None:
    nb = notebook(
        """
import nanorepo, pathlib
ds = nanorepo.open(accession)
pathlib.Path(output_dir, "partial.txt").write_text("written before the failure")
raise ValueError("no pores found in " + ds.ref)
""",
        accession=seeded.public,
        output_dir="x",
    )
    rec = nanorepo.run(nb, output_dir=tmp_path / "out", settings=sqlite_repo.settings)
    assert rec.status == "failed"
    assert rec.error is not None
    assert rec.error.ename == "ValueError"
    assert rec.error.evalue == f"no pores found in {seeded.public}@v1"
    assert any("raise ValueError" in line for line in rec.error.traceback)
    assert not any("\x1b[" in line for line in rec.error.traceback)  # readable, no ANSI
    names = {o.name: o for o in rec.outputs}
    assert set(names) == {"partial.txt", nb.name}
    partial_nb = json.loads((sqlite_repo.layout.run_dir(rec.id) / nb.name).read_text())
    outputs = [o for c in partial_nb["cells"] for o in c.get("outputs", ())]
    assert any(o.get("ename") == "ValueError" for o in outputs)
    assert [i.kind for i in rec.inputs] == ["dataset"]
    assert sqlite_repo.runs.find(status="failed") == [rec]  # the seeded runs all succeeded


def test_a_killed_run_is_marked_interrupted_by_the_next_command(
    sqlite_repo: Repository, seeded: SeededRepository, notebook, tmp_path: Path, cli_env
) -> None:
    nb = notebook(
        "import nanorepo, time\nnanorepo.open(accession)\ntime.sleep(300)", accession=seeded.public
    )
    env = {**cli_env, "NANOREPO_HOME": str(sqlite_repo.settings.home)}
    log = (tmp_path / "run.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "nanorepo", "run", str(nb), "--output-dir", str(tmp_path / "o")],
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    try:
        active = sqlite_repo.settings.home / "runs-active"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            journal = next(active.glob("*.journal"), None) if active.is_dir() else None
            if journal is not None and journal.stat().st_size > 0:  # the kernel is in the cell
                break
            assert proc.poll() is None, (tmp_path / "run.log").read_text()
            time.sleep(0.2)
        else:
            pytest.fail("the run never reached its cell")
        run_id = journal.stem
        assert sqlite_repo.runs.get(run_id).status == "running"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the runner and its kernel, no clean-up
        proc.wait()
        log.close()
    assert sqlite_repo.runs.get(run_id).status == "running"  # nobody has looked yet
    r = subprocess.run(
        [sys.executable, "-m", "nanorepo", "runs", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    assert f"run {run_id} was interrupted" in r.stderr
    listed = {d["id"]: d for d in json.loads(r.stdout)}
    assert listed[run_id]["status"] == "interrupted"
    rec = sqlite_repo.runs.get(run_id)
    assert rec.status == "interrupted" and rec.outputs == () and rec.ended is not None
    # it keeps what its journal noted, so it is judged on what it read (issue 14 item 3)
    assert [i.ref for i in rec.inputs] == [f"{seeded.public}@v1"]
    assert not sqlite_repo.layout.run_dir(run_id).exists()  # no half-registered outputs
    assert not any(active.iterdir())


def _runs_count(repo: Repository) -> int:
    with repo.catalog.session() as s:
        return len(s.exec(select(Run.id)).all())


def test_bad_input_gets_a_clear_error_and_changes_nothing(
    sqlite_repo: Repository, seeded: SeededRepository, notebook, tmp_path: Path
) -> None:
    before = _runs_count(sqlite_repo)
    nb = notebook("print(1)", accession=seeded.public)
    full = tmp_path / "full"
    full.mkdir()
    (full / "old.txt").write_text("someone's results")
    with pytest.raises(InvalidInput, match="not empty"):
        nanorepo.run(nb, output_dir=full, settings=sqlite_repo.settings)
    bad = tmp_path / "bad.ipynb"
    bad.write_text('{"cells": "not a list"}')
    with pytest.raises(InvalidInput, match="not a valid Jupyter notebook"):
        nanorepo.run(bad, settings=sqlite_repo.settings)
    with pytest.raises(InvalidInput, match="no notebook"):
        nanorepo.run(tmp_path / "missing.ipynb", settings=sqlite_repo.settings)
    assert _runs_count(sqlite_repo) == before
    assert (full / "old.txt").read_text() == "someone's results"

    # A record whose output or input digests do not match is refused, nothing registered.
    runs = sqlite_repo.runs
    seeded_run = runs.get(seeded.runs["public"])
    data = runs.notebook(seeded_run.id)
    fresh = seeded_run.with_(id="a" * 32, status="running", outputs=(), inputs=(), values={})
    runs.begin(fresh, data)
    f = tmp_path / "result.txt"
    f.write_text("42")
    lying = fresh.with_(status="succeeded", outputs=(Output("result.txt", "0" * 64, 2),))
    with pytest.raises(InvalidInput, match="does not match its digest"):
        runs.finish(lying, {"result.txt": f})
    wrong_input = fresh.with_(
        status="succeeded", inputs=(Input("dataset", seeded.public, 1, "1" * 64),)
    )
    with pytest.raises(InvalidInput, match="is not the stored"):
        runs.finish(wrong_input, {})
    with pytest.raises(InvalidInput, match="no version 7"):
        runs.finish(
            fresh.with_(status="succeeded", inputs=(Input("dataset", seeded.public, 7, "1" * 64),)),
            {},
        )
    assert runs.get(fresh.id).status == "running"
    assert not sqlite_repo.layout.run_dir(fresh.id).exists()
    with pytest.raises(InvalidInput, match="not match its digest"):
        runs.begin(fresh.with_(id="b" * 32), b"other bytes")


def test_record_takes_json_data_and_numpy_values(tmp_path: Path) -> None:
    from nanorepo.access import read_journal, record
    from nanorepo.settings import Settings

    st = Settings.from_env(tmp_path, env={"NANOREPO_RUN_JOURNAL": str(tmp_path / "j")})
    assert record("n", numpy.int64(3), settings=st) == 3
    record("v", numpy.array([1.5, float("nan")]), settings=st)
    record("d", {"a": [True, None, "x"]}, settings=st)
    got = read_journal(tmp_path / "j").values
    assert got == {"n": 3, "v": [1.5, "NaN"], "d": {"a": [True, None, "x"]}}
    for bad_name in ("", "1x", "a b", "x" * 200):
        with pytest.raises(InvalidInput, match="not a value name"):
            record(bad_name, 1, settings=st)
    with pytest.raises(InvalidInput, match="cannot record a object"):
        record("o", object(), settings=st)
    # outside a run: returned, nothing written anywhere
    assert record("x", 1.0, settings=Settings.from_env(tmp_path / "h", env={})) == 1.0


def test_records_round_trip_through_json(sqlite_repo: Repository, seeded: SeededRepository) -> None:
    rec = sqlite_repo.runs.get(seeded.runs["hidden"])
    assert RunRecord.from_json(json.loads(json.dumps(rec.to_json()))) == rec
