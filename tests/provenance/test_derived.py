"""A dataset deposited from a run's outputs: its provenance points to the run, and the
lineage of the input runs through the run to it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

import nanorepo
from nanorepo.cli import cli
from nanorepo.client import Client
from nanorepo.errors import InvalidInput
from nanorepo.provenance import Lineage
from nanorepo.repository import Repository
from nanorepo.settings import Settings
from nanorepo.testing._service import _METADATA as SEED_METADATA
from nanorepo.testing._service import SeededRepository, _tiny_ome_tiff

pytestmark = pytest.mark.slow

BODY = """
import nanorepo, pathlib, numpy as np, tifffile
ds = nanorepo.open(accession)
x = ds.images[0].to_xarray(dask=False).values
smoothed = (x.astype(np.float32) * 0.5).astype(np.uint16)  # a stand-in for a real filter
tifffile.imwrite(pathlib.Path(output_dir, "smoothed.ome.tif"), smoothed, ome=True,
                 photometric="minisblack", metadata={"axes": "CYX", "PhysicalSizeX": 0.02,
                 "PhysicalSizeXUnit": "µm", "PhysicalSizeY": 0.02, "PhysicalSizeYUnit": "µm"})
"""


def test_a_dataset_deposited_from_run_outputs_points_to_the_run(
    sqlite_repo: Repository, seeded: SeededRepository, notebook, tmp_path: Path,
    cli_env: dict[str, str],
) -> None:  # fmt: skip
    nb = notebook(BODY, accession=seeded.public, output_dir="x")
    out = tmp_path / "out"
    rec = nanorepo.run(nb, output_dir=out, settings=sqlite_repo.settings)
    assert rec.status == "succeeded", rec.error
    meta = tmp_path / "meta.yaml"
    meta.write_text(yaml.safe_dump(SEED_METADATA))
    env = {**cli_env, "NANOREPO_HOME": str(sqlite_repo.settings.home)}

    # a file the run did not write is refused before anything is deposited
    stranger = tmp_path / "stranger.ome.tif"
    _tiny_ome_tiff(stranger, 99)
    with sqlite_repo.catalog.session() as s:
        before = len(sqlite_repo.catalog.all_datasets(s))
    with pytest.raises(InvalidInput, match="is not an output of run"):
        sqlite_repo.deposit([stranger], title="Not derived", metadata=meta, derived_from=rec.id)
    with sqlite_repo.catalog.session() as s:
        assert len(sqlite_repo.catalog.all_datasets(s)) == before

    r = CliRunner().invoke(cli, ["deposit", str(out / "smoothed.ome.tif"), "--title",
                                 "Smoothed pores", "--metadata", str(meta),
                                 "--derived-from", rec.id[:12]], env=env)  # fmt: skip
    assert r.exit_code == 0, r.output
    derived = r.output.strip().splitlines()[-1]
    assert sqlite_repo.runs.get(rec.id).derived == (derived,)
    lineage = sqlite_repo.runs.lineage(seeded.public)
    ids = {n.id for n in lineage.nodes}
    assert f"run:{rec.id}" in ids and any(i.startswith(derived) for i in ids)
    assert any(e.relation == "wasDerivedFrom" for e in lineage.edges)
    upstream = sqlite_repo.runs.lineage(derived)  # and back from the derived dataset
    assert rec.id in {r.id for r in upstream.runs}


def test_a_dataset_uploaded_from_a_remote_runs_outputs_points_to_the_run(
    service: Any, notebook, tmp_path: Path, cli_env: dict[str, str]
) -> None:
    """On a user server (NANOREPO_URL + token) the run is recorded by the service and its
    outputs uploaded as a derived dataset; the service checks the run is one the depositor
    may see and that every file is one of its outputs, before anything is written."""
    seed = service.seed
    remote = {"NANOREPO_URL": service.url, "NANOREPO_TOKEN": seed.tokens["alice"]}
    settings = Settings.from_env(tmp_path / "alice", env=remote)
    nb = notebook(BODY, accession=seed.public, output_dir="x")
    out = tmp_path / "out"
    rec = nanorepo.run(nb, output_dir=out, settings=settings)
    assert rec.status == "succeeded", rec.error
    meta = tmp_path / "meta.yaml"
    meta.write_text(yaml.safe_dump(SEED_METADATA))
    with (
        Client(service.url, token=seed.tokens["alice"]) as alice,
        Client(service.url, token=seed.tokens["erin"]) as erin,
    ):
        before = {d["accession"] for d in alice.datasets()}

        # a file the run did not write: refused, named as uploaded, nothing deposited
        stranger = tmp_path / "stranger.ome.tif"
        _tiny_ome_tiff(stranger, 99)
        with pytest.raises(InvalidInput, match=r"stranger\.ome\.tif is not an output of run") as e:
            alice.deposit([stranger], "Not derived", meta, derived_from=rec.id)
        assert str(tmp_path) not in str(e.value)
        # a run the depositor may not see is "not found", exactly like a missing one
        hidden = nanorepo.run(
            notebook(BODY, name="hidden.ipynb", accession=seed.granted, output_dir="x"),
            output_dir=tmp_path / "bob-out",
            settings=Settings.from_env(
                tmp_path / "bob", env={**remote, "NANOREPO_TOKEN": seed.tokens["bob"]}
            ),
        )
        assert hidden.status == "succeeded", hidden.error
        answers = []
        for run_id in (hidden.id, "0" * 32):
            with pytest.raises(LookupError) as missing:  # a 404
                erin.deposit(
                    [tmp_path / "bob-out" / "smoothed.ome.tif"], "Bob's", meta, derived_from=run_id
                )
            answers.append(str(missing.value).replace(run_id, "RUN"))
        assert answers[0] == answers[1] and seed.granted not in answers[0]
        assert {d["accession"] for d in alice.datasets()} == before

        # the run's output, through the CLI as on a user server: linked to the run
        r = CliRunner().invoke(
            cli,
            ["deposit", str(out / "smoothed.ome.tif"), "--title", "Smoothed pores", "--metadata",
             str(meta), "--derived-from", rec.id[:12]],
            env={**cli_env, "NANOREPO_HOME": str(tmp_path / "alice"), **remote},
        )  # fmt: skip
        assert r.exit_code == 0, r.output
        derived = r.output.strip().splitlines()[-1]
        assert derived not in before
        assert alice.run_record(rec.id).derived == (derived,)
        lineage = alice.lineage(derived)
        assert isinstance(lineage, Lineage)
        assert rec.id in {r.id for r in lineage.runs}
