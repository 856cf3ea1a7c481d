"""The analysis templates run under papermill on the demo data and reach the known answers.

Each template is run as a user would run it (``papermill.execute_notebook`` with parameters)
on a demo dataset of the right kind, and its written results are checked against the
ground truth; on a dataset of the wrong kind it must stop with a message that names the
dataset and what it lacks.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Any

import nbformat
import pandas as pd
import pytest

import nanorepo
from nanorepo.settings import Settings
from tests.notebooks.conftest import NOTEBOOKS, DemoRepository

TEMPLATES = sorted((NOTEBOOKS / "analyses").glob("*.ipynb"))


def run(name: str, out: Path, **parameters: Any) -> Path:
    """Execute template ``name`` with ``parameters``; results go to ``out``, returned."""
    import papermill

    out.mkdir(parents=True, exist_ok=True)
    papermill.execute_notebook(
        NOTEBOOKS / "analyses" / f"{name}.ipynb",
        out / f"{name}.ipynb",
        parameters={**parameters, "output_dir": str(out / "results")},
        kernel_name="python3",
        cwd=str(out),
        progress_bar=False,
    )
    return out / "results"


def failure(name: str, out: Path, **parameters: Any) -> tuple[str, str]:
    """Run a template expected to fail; the error's class name and message."""
    from papermill.exceptions import PapermillExecutionError

    with pytest.raises(PapermillExecutionError) as info:
        run(name, out, **parameters)
    assert not (out / "results").exists(), "a failed analysis must not write results"
    return info.value.ename, info.value.evalue


def ground_truth(demo: DemoRepository, accession: str) -> dict[str, Any]:
    """The ground truth stored with a demo dataset (its supporting JSON file)."""
    ds = nanorepo.open(accession, settings=Settings.from_env(demo.home))
    entry = next(f for f in ds.files if f["role"] == "supporting")
    return dict(json.loads((ds.path / entry["path"]).read_text()))


def _parameters_cell(path: Path) -> str:
    nb = nbformat.read(path, as_version=4)
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, f"{path.name}: exactly one cell tagged 'parameters'"
    return str(tagged[0].source)


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: p.stem)
def test_every_parameter_is_documented(path: Path) -> None:
    """Each parameter is a literal with a ``# type: meaning`` comment; output_dir exists."""
    source = _parameters_cell(path)
    lines = source.splitlines()
    names = []
    for node in ast.parse(source).body:
        assert isinstance(node, ast.Assign), f"{path.name}: only assignments in parameters"
        (target,) = node.targets
        assert isinstance(target, ast.Name)
        ast.literal_eval(node.value)
        assert node.end_lineno == node.lineno, f"{path.name}: keep {target.id} on one line"
        comment = lines[node.lineno - 1].partition("#")[2]
        assert ":" in comment and len(comment) > 20, f"{path.name}: document {target.id}"
        names.append(target.id)
    assert "accession" in names
    assert "output_dir" in names
    # papermill must read every parameter too (else `-p NAME VALUE` warns "unknown parameter"
    # and the injected value is still used, but `papermill --help-notebook` and
    # `nanorepo run` cannot show it): its parser is stricter than Python's.
    import papermill

    assert list(papermill.inspect_notebook(path)) == names, f"{path.name}: papermill misreads"


@pytest.mark.slow
@pytest.mark.usefixtures("kernel_env")
def test_npc_rings_finds_107_nm(demo_repository: DemoRepository, tmp_path: Path) -> None:
    results = run("npc_rings", tmp_path, accession=demo_repository.accessions["npc_sted"])
    summary = json.loads((results / "summary.json").read_text())
    assert summary["dataset"] == f"{demo_repository.accessions['npc_sted']}@v1"
    assert summary["image"] == "npc_sted"  # the finest image that can resolve rings
    assert summary["accepted"] > 700
    assert abs(summary["diameter_nm"]["median"] - 107.0) < 0.05 * 107.0
    assert abs(summary["blur_fwhm_nm_median"] - 40.0) < 0.15 * 40.0  # the STED PSF
    rings = pd.read_csv(results / "rings.csv")
    assert len(rings) == summary["fitted"]
    assert rings.accepted.sum() == summary["accepted"]


@pytest.mark.slow
@pytest.mark.usefixtures("kernel_env")
def test_npc_rings_refuses_what_it_cannot_measure(
    demo_repository: DemoRepository, tmp_path: Path
) -> None:
    sim = demo_repository.accessions["sim"]
    ename, evalue = failure("npc_rings", tmp_path / "sim", accession=sim)
    assert ename == "InvalidInput"
    assert f"{sim}@v1 is not a nuclear pore dataset" in evalue
    assert "alpha-tubulin" in evalue

    npc = demo_repository.accessions["npc_sted"]
    ename, evalue = failure("npc_rings", tmp_path / "confocal", accession=npc, image="npc_confocal")
    assert ename == "InvalidInput"
    assert f"{npc}@v1 image npc_confocal" in evalue
    assert "cannot resolve 107 nm rings" in evalue


@pytest.mark.slow
@pytest.mark.usefixtures("kernel_env")
def test_smlm_clustering_finds_the_pores(demo_repository: DemoRepository, tmp_path: Path) -> None:
    accession = demo_repository.accessions["npc_smlm"]
    results = run("smlm_clustering", tmp_path, accession=accession, eps_nm=45.0, min_samples=15)
    summary = json.loads((results / "summary.json").read_text())
    truth = ground_truth(demo_repository, accession)
    assert summary["table"] == "npc_dstorm_localisations.parquet"
    assert summary["localisations"] == truth["localisations"]["count"]
    # One cluster per pore, give or take merged neighbours and split pores.
    assert abs(summary["clusters"] - truth["count"]) <= 0.15 * truth["count"]
    assert summary["noise_fraction"] < 0.1
    clusters = pd.read_csv(results / "clusters.csv")
    assert len(clusters) == summary["clusters"]
    clustered = round((1 - summary["noise_fraction"]) * summary["localisations"])
    assert clusters.localisations.sum() == clustered
    # Most clusters are single rings: radius of gyration close to the 53.5 nm radius.
    single = clusters.gyration_nm.between(45, 62).mean()
    assert single > 0.75, single


@pytest.mark.slow
@pytest.mark.usefixtures("kernel_env")
def test_smlm_clustering_needs_a_localisation_table(
    demo_repository: DemoRepository, tmp_path: Path
) -> None:
    npc = demo_repository.accessions["npc_sted"]
    ename, evalue = failure("smlm_clustering", tmp_path, accession=npc)
    assert ename == "InvalidInput"
    assert f"{npc}@v1 has no localisation table" in evalue


@pytest.mark.slow
@pytest.mark.usefixtures("kernel_env")
def test_intensity_statistics(demo_repository: DemoRepository, tmp_path: Path) -> None:
    accession = demo_repository.accessions["sim"]
    results = run("intensity_statistics", tmp_path, accession=accession, level=0)
    table = pd.read_csv(results / "statistics.csv")
    # Two cells, two channels each, in full: every pixel counted.
    assert len(table) == 4
    assert set(table.channel) == {"H2B-SNAP-AF568", "alpha-tubulin-AF488"}
    assert (table.pixels == 16 * 256 * 256).all()
    assert (table["min"] <= table.p01).all() and (table.p01 <= table.p50).all()
    assert (table.p50 <= table.p99).all() and (table.p99 <= table["max"]).all()
    assert (table.saturated_fraction == 0).all()
    # The sCMOS offset of the synthetic SIM camera (100 ADU) sits under the background.
    assert table.p01.between(95, 110).all()
    summary = json.loads((results / "summary.json").read_text())
    assert summary["dataset"] == f"{accession}@v1"
    assert len(summary["rows"]) == 4


@pytest.mark.slow
@pytest.mark.usefixtures("kernel_env")
def test_intensity_statistics_names_a_missing_level(
    demo_repository: DemoRepository, tmp_path: Path
) -> None:
    npc = demo_repository.accessions["npc_sted"]
    ename, evalue = failure("intensity_statistics", tmp_path, accession=npc, level=1)
    assert ename == "InvalidInput"
    assert f"{npc}@v1 image npc_confocal has no pyramid level 1" in evalue
