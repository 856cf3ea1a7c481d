"""RO-Crate export: Workflow/Process Run Crates that pass roc-validator's required checks.

The validator runs offline and in its own virtualenv (it pins ``rich < 14``, napari needs
``rich >= 14``): see ``_roc_validate.py``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from nanorepo.errors import IntegrityError, InvalidInput
from nanorepo.provenance._crate import write_crate
from nanorepo.provenance._prov import lineage_of
from nanorepo.testing._hub import cache_dir
from tests.provenance.lineage_samples import (
    BATCH,
    ENV,
    HISTOGRAM_PNG,
    HOSTILE_AGENT,
    HOSTILE_IMAGE,
    HOSTILE_OUTPUT,
    HOSTILE_TITLE,
    MANIFEST_V2,
    NOTEBOOK,
    RINGS_CSV,
    RUN_A,
    RUN_B,
    UNSAFE_OUTPUT,
    sample,
)

CONTEXT_URL = "https://w3id.org/ro/crate/1.1/context"
CONTEXT = Path(__file__).parent / "data" / "ro-crate-1.1-context.jsonld"
SCRIPT = Path(__file__).parent / "_roc_validate.py"
#: The validator, pinned; installed (with its dependencies) into its own virtualenv.
ROC_VALIDATOR = "roc-validator==0.13.0"


def validator_python() -> Path:
    """The python of a virtualenv holding roc-validator (built once, then reused)."""
    path = cache_dir() / "roc-validator-venv"
    python = path / "bin" / "python"
    stamp = path / ".nanorepo-validator"
    if python.exists() and stamp.exists() and stamp.read_text() == ROC_VALIDATOR:
        return python
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(path)], check=True)
    pip = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         ROC_VALIDATOR],
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    if pip.returncode != 0:
        raise RuntimeError(f"installing {ROC_VALIDATOR} failed:\n{pip.stderr[-3000:]}")
    stamp.write_text(ROC_VALIDATOR)
    return python


@pytest.fixture(scope="module")
def validator_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    validator_python()  # build it once, outside the timed checks
    return tmp_path_factory.mktemp("roc-validator")


def validate(crate: Path, profile: str, cache: Path, severity: str = "REQUIRED") -> list[str]:
    """roc-validator's issues at ``severity`` and above for ``profile`` (empty: valid)."""
    r = subprocess.run(
        [str(validator_python()), str(SCRIPT), str(crate), profile, severity, str(CONTEXT),
         str(cache)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    issues: list[str] = json.loads(r.stdout)
    return issues


def graph(crate: Path) -> dict[str, dict[str, Any]]:
    meta = json.loads((crate / "ro-crate-metadata.json").read_text())
    assert meta["@context"] == CONTEXT_URL
    return {e["@id"]: e for e in meta["@graph"]}


def ids(value: Any) -> list[str]:
    items = value if isinstance(value, list) else [value]
    return [x["@id"] for x in items]


def test_batch_is_a_workflow_run_crate(tmp_path: Path, validator_cache: Path) -> None:
    s = sample()
    lin = lineage_of(s.runs[:2], s.batches)
    crate = write_crate(lin, tmp_path / "crate", files=s.files(tmp_path / "store"))
    assert validate(crate, "workflow-run-crate", validator_cache) == []
    assert validate(crate, "process-run-crate", validator_cache) == []

    g = graph(crate)
    root = g["./"]
    assert set(ids(root["conformsTo"])) == {
        "https://w3id.org/ro/wfrun/process/0.5",
        "https://w3id.org/ro/wfrun/workflow/0.5",
        "https://w3id.org/workflowhub/workflow-ro-crate/1.0",
    }
    main = g[root["mainEntity"]["@id"]]
    assert set(main["@type"]) == {"File", "SoftwareSourceCode", "ComputationalWorkflow"}
    assert (crate / main["@id"]).read_bytes() == NOTEBOOK
    # the environment: interpreter and packages as versioned SoftwareApplications
    reqs = set(ids(main["softwareRequirements"]))
    assert "https://pypi.org/project/numpy/2.2.6/" in reqs
    assert f"https://www.python.org/downloads/release/python-{ENV.python.replace('.', '')}/" in reqs
    assert len(reqs) == len(ENV.packages) + 1

    a, b = g[f"urn:nanorepo:runs/{RUN_A}"], g[f"urn:nanorepo:runs/{RUN_B}"]
    for action in (a, b):
        assert action["@type"] == "CreateAction"
        assert action["instrument"] == {"@id": main["@id"]}
        assert g[action["agent"]["@id"]] == {
            "@id": "urn:nanorepo:users/carol",
            "@type": "Person",
            "name": "carol",
        }
        assert ENV.sha256 in action["description"] and ENV.image in action["description"]
    assert a["startTime"] == "2025-03-14T09:26:53.000+00:00"
    assert a["endTime"] == "2025-03-14T09:28:16.250+00:00"
    assert a["actionStatus"] == "http://schema.org/CompletedActionStatus"
    assert b["actionStatus"] == "http://schema.org/FailedActionStatus"
    assert b["error"] == "ZeroDivisionError: division by zero" and "error" not in a

    # inputs referenced with their citable reference and digest, never copied
    objects = ids(a["object"])
    version = g["urn:nanorepo:datasets/S-NANO1/versions/2"]
    assert version["@id"] in objects
    assert set(version["identifier"]) == {"S-NANO1@v2", f"sha256:{MANIFEST_V2}"}
    image = g["urn:nanorepo:datasets/S-NANO1/versions/2/images/npc_sted"]
    assert image["isPartOf"] == {"@id": version["@id"]} and image["@id"] in objects
    # parameters: PropertyValues realising the notebook's FormalParameters
    pvs = {g[i]["name"]: g[i] for i in objects if g[i]["@type"] == "PropertyValue"}
    assert pvs["threshold"]["value"] == 0.35 and json.loads(pvs["channels"]["value"]) == [0, 1]
    fp = g[pvs["min_points"]["exampleOfWork"]["@id"]]
    assert fp["@type"] == "FormalParameter" and fp["additionalType"] == "Integer"
    assert fp["@id"] in ids(main["input"])

    # outputs included byte for byte
    results = {g[i]["name"]: i for i in ids(a["result"])}
    assert (crate / f"runs/{RUN_A}/rings.csv").read_bytes() == RINGS_CSV
    assert results["figures/diameter histogram.png"] == (
        f"runs/{RUN_A}/figures/diameter%20histogram.png"
    )
    assert (crate / f"runs/{RUN_A}/figures/diameter histogram.png").read_bytes() == HISTOGRAM_PNG
    batch = g[f"urn:nanorepo:batches/{BATCH}"]
    assert batch["@type"] == "OrganizeAction"
    assert set(ids(batch["result"])) == {a["@id"], b["@id"]}
    assert set(ids(root["mentions"])) >= {a["@id"], b["@id"], batch["@id"]}
    assert "Run `3f2a9c0d4b6e48f1a7c2d5e8f0b1c3d4`" in (crate / "README.md").read_text()


def test_lineage_with_two_notebooks_is_a_process_run_crate(
    tmp_path: Path, validator_cache: Path
) -> None:
    s = sample()
    lin = lineage_of(s.runs, s.batches, focus="S-NANO5@v1")
    zipped = write_crate(
        lin, tmp_path / "lineage.crate.zip", files=s.files(tmp_path / "s"), zip=True
    )
    with zipfile.ZipFile(zipped) as z:
        assert z.read(f"runs/{RUN_A}/rings.csv") == RINGS_CSV
        z.extractall(tmp_path / "unzipped")
    assert validate(zipped, "process-run-crate", validator_cache) == []
    # two notebooks: no single main workflow, so it does not claim Workflow Run Crate,
    # and the validator indeed finds it is not one
    g = graph(tmp_path / "unzipped")
    assert ids(g["./"]["conformsTo"]) == ["https://w3id.org/ro/wfrun/process/0.5"]
    issues = validate(zipped, "workflow-run-crate", validator_cache)
    assert any("mainEntity" in i for i in issues)
    derived = g["urn:nanorepo:datasets/S-NANO5/versions/1"]
    assert f"runs/{RUN_A}/rings.csv" in ids(derived["isBasedOn"])


def test_hostile_names_and_nothing_stored(tmp_path: Path, validator_cache: Path) -> None:
    s = sample(
        image_name=HOSTILE_IMAGE,
        output_name=HOSTILE_OUTPUT,
        agent=HOSTILE_AGENT,
        title=HOSTILE_TITLE,
    )
    lin = lineage_of(s.runs[:2], s.batches)
    crate = write_crate(
        lin,
        tmp_path / "hostile",
        files=s.files(tmp_path / "store"),
        namespace="https://repo.example.org/nanorepo/",
    )
    assert (crate / f"runs/{RUN_A}" / HOSTILE_OUTPUT).read_bytes() == RINGS_CSV
    assert validate(crate, "workflow-run-crate", validator_cache) == []
    g = graph(crate)
    people = [e for e in g.values() if e.get("@type") == "Person"]
    assert [p["name"] for p in people] == [HOSTILE_AGENT]
    pv = g[f"#run-{RUN_A}-parameter-label"]
    assert "\x1b" not in pv["value"] and pv["value"].startswith('He said "hi" \\ then\nleft')
    assert f"https://repo.example.org/nanorepo/runs/{RUN_A}" in g

    # with no stored files the crate references everything by URI and is a process crate
    bare = write_crate(lin, tmp_path / "bare", files=lambda run_id, name: None)
    assert sorted(p.name for p in bare.iterdir()) == ["README.md", "ro-crate-metadata.json"]
    assert validate(bare, "process-run-crate", validator_cache) == []
    g = graph(bare)
    hist = g[f"urn:nanorepo:runs/{RUN_A}/outputs/figures/diameter%20histogram.png"]
    assert hist["@type"] == "File" and hist["identifier"].startswith("sha256:")


def test_the_validator_is_not_vacuous(tmp_path: Path, validator_cache: Path) -> None:
    s = sample()
    crate = write_crate(lineage_of(s.runs[:1]), tmp_path / "c", files=s.files(tmp_path / "s"))
    assert validate(crate, "workflow-run-crate", validator_cache) == []
    (crate / f"runs/{RUN_A}/rings.csv").unlink()
    issues = validate(crate, "workflow-run-crate", validator_cache)
    assert any("rings.csv" in i for i in issues)


def test_bad_input_changes_nothing(tmp_path: Path) -> None:
    s = sample()
    store = tmp_path / "store"
    files = s.files(store)

    def tampered(run_id: str, name: str) -> Path | None:
        path = files(run_id, name)
        if path is not None and name == "rings.csv":
            path.write_bytes(RINGS_CSV + b"3,0,0,1\n")
        return path

    with pytest.raises(IntegrityError, match=r"rings\.csv"):
        write_crate(lineage_of(s.runs[:1]), tmp_path / "t", files=tampered)
    unsafe = sample(output_name=UNSAFE_OUTPUT)
    with pytest.raises(InvalidInput, match="not a plain relative path"):
        write_crate(lineage_of(unsafe.runs[:1]), tmp_path / "u", files=unsafe.files(store))
    with pytest.raises(InvalidInput, match="no run record"):
        write_crate(lineage_of([], s.batches), tmp_path / "v", files=files)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("keep me")
    with pytest.raises(InvalidInput, match="not an empty directory"):
        write_crate(lineage_of(s.runs[:1]), tmp_path / "full", files=files)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["full", "store"]
    assert (tmp_path / "full" / "x").read_text() == "keep me"
