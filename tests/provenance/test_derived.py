"""A dataset deposited from a run's outputs: its provenance points to the run, and the
lineage of the input runs through the run to it."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

import nanorepo
from nanorepo.cli import cli
from nanorepo.errors import InvalidInput
from nanorepo.repository import Repository
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
