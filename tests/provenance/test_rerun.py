"""``nanorepo rerun``: the same notebook, parameters and input versions, executed again, and
a report that tells identical, equal within tolerance and different results apart."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

import nanorepo
from nanorepo.cli import cli
from nanorepo.connection import rerun
from nanorepo.provenance import REPORT_NAME
from nanorepo.repository import Repository
from nanorepo.testing._service import _METADATA as SEED_METADATA
from nanorepo.testing._service import SeededRepository

pytestmark = pytest.mark.slow

# The mean of the image, plus an offset read from a file outside the repository: changing
# that file between the run and the re-run changes the result by as much as we choose.
BODY = """
import nanorepo, pathlib
ds = nanorepo.open(accession)
x = ds.images[0].to_xarray(dask=False).values.astype(float)
mean = float(x.mean()) + float(pathlib.Path(offset_file).read_text())
nanorepo.record("mean", mean)
nanorepo.record("version", ds.version)
pathlib.Path(output_dir, "mean.txt").write_text(f"{mean:.15f}")
"""


@pytest.fixture
def original(sqlite_repo: Repository, seeded: SeededRepository, notebook, tmp_path: Path):
    offset = tmp_path / "offset.txt"
    offset.write_text("0")
    nb = notebook(BODY, accession=seeded.public, offset_file=str(offset), output_dir="x")
    rec = nanorepo.run(nb, output_dir=tmp_path / "first", settings=sqlite_repo.settings)
    assert rec.status == "succeeded", rec.error
    return rec, offset


def test_an_unchanged_rerun_is_identical_and_reads_the_same_versions(
    sqlite_repo: Repository, seeded: SeededRepository, original, tmp_path: Path
) -> None:
    rec, _ = original
    # A newer version appears; the re-run must still read v1, as the original did.
    sqlite_repo.set_metadata(seeded.public, {"title": "Public pores, retitled"}, reason="test")
    meta = tmp_path / "meta.yaml"
    changed = {**SEED_METADATA, "study": {**SEED_METADATA["study"], "description": "Version 2."}}
    meta.write_text(yaml.safe_dump(changed))
    sqlite_repo.revise(seeded.public, metadata=meta, note="v2 for the test")
    with sqlite_repo.catalog.session() as s:
        assert sqlite_repo.catalog.dataset(s, seeded.public).latest_version == 2

    again, report = rerun(rec.id, output_dir=tmp_path / "again", settings=sqlite_repo.settings)
    assert report.verdict == "identical", report.to_json()
    assert again.rerun_of == rec.id and again.status == "succeeded"
    assert {i.ref for i in again.inputs} == {i.ref for i in rec.inputs}
    assert again.values["version"] == 1
    assert report.files["identical"] == ["mean.txt"]
    assert report.inputs["differ"] == [] and report.inputs["missing"] == []
    assert report.environment == {}
    # the report is one of the re-run's recorded outputs, and says the same
    stored = json.loads((sqlite_repo.layout.run_dir(again.id) / REPORT_NAME).read_text())
    assert stored["verdict"] == "identical" and stored["original"] == rec.id
    assert REPORT_NAME in {o.name for o in again.outputs}


def test_a_tiny_numerical_change_is_equal_within_tolerance(
    sqlite_repo: Repository, original, tmp_path: Path
) -> None:
    rec, offset = original
    offset.write_text("1e-9")  # the mean changes in its 12th significant digit
    _, report = rerun(rec.id, output_dir=tmp_path / "again", settings=sqlite_repo.settings)
    assert report.verdict == "equal within tolerance", report.to_json()
    assert report.files["differ"] == ["mean.txt"]
    old, new = report.values["within_tolerance"]["mean"]
    assert new - old == pytest.approx(1e-9, rel=1e-3)
    assert report.values["equal"] == ["version"]
    # a tolerance tighter than the change makes it different
    _, strict = rerun(rec.id, output_dir=tmp_path / "strict", rtol=1e-15,
                      settings=sqlite_repo.settings)  # fmt: skip
    assert strict.verdict == "different"
    assert "mean" in strict.values["differ"]


def test_a_changed_result_is_different_and_the_cli_says_so(
    sqlite_repo: Repository, original, tmp_path: Path, cli_env: dict[str, str]
) -> None:
    rec, offset = original
    offset.write_text("5")
    env = {**cli_env, "NANOREPO_HOME": str(sqlite_repo.settings.home)}
    r = CliRunner().invoke(
        cli, ["rerun", rec.id[:10], "--output-dir", str(tmp_path / "again")], env=env
    )
    assert r.exit_code == 1, r.output
    assert f"of {rec.id}: different" in r.output
    assert "value differs" in r.output and "mean" in r.output
    runs = sqlite_repo.runs.find(status="succeeded", limit=1)
    assert runs[0].rerun_of == rec.id
    report = json.loads((sqlite_repo.layout.run_dir(runs[0].id) / REPORT_NAME).read_text())
    old, new = report["values"]["differ"]["mean"]
    assert new - old == pytest.approx(5)
