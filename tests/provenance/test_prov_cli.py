"""``nanorepo prov``: upstream and downstream of a dataset, a run or a file, as a tree, W3C
PROV, Graphviz and an RO-Crate, on the local repository and through the service."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import httpx
import jsonschema
from click.testing import CliRunner
from prov.model import ProvDocument

from nanorepo.cli import cli
from nanorepo.provenance import prov_jsonschema
from nanorepo.repository import Repository
from nanorepo.testing._service import SeededRepository


def _invoke(env: dict[str, str], *args: str) -> Any:
    r = CliRunner().invoke(cli, list(args), env=env)
    assert r.exit_code == 0, r.output
    return r


def test_prov_shows_and_exports_lineage_of_datasets_runs_and_files(
    sqlite_repo: Repository, seeded: SeededRepository, cli_env: dict[str, str], tmp_path: Path
) -> None:
    env = {**cli_env, "NANOREPO_HOME": str(sqlite_repo.settings.home)}
    run_id = seeded.runs["public"]
    tree = _invoke(env, "prov", seeded.public).output
    assert run_id[:8] in tree and "cell0" in tree
    # a file, found by its digest: the seeded run's output copied anywhere
    copy = tmp_path / "found-on-a-laptop.txt"
    copy.write_bytes((sqlite_repo.layout.run_dir(run_id) / "cell0").read_bytes())
    assert run_id[:8] in _invoke(env, "prov", str(copy)).output
    # W3C PROV-JSON that prov parses and its schema accepts
    out = tmp_path / "lineage.json"
    _invoke(env, "prov", run_id[:10], "--format", "prov-json", "-o", str(out))
    doc = json.loads(out.read_text())
    jsonschema.validate(doc, prov_jsonschema())
    parsed = ProvDocument.deserialize(content=out.read_text(), format="json")
    assert any(run_id in str(r.identifier) for r in parsed.get_records())
    assert "wasAssociatedWith" in _invoke(env, "prov", run_id, "--format", "provn").output
    svg = tmp_path / "lineage.svg"
    _invoke(env, "prov", seeded.public, "--format", "svg", "-o", str(svg))
    assert b"<svg" in svg.read_bytes()[:400]
    crate = tmp_path / "run.zip"
    _invoke(env, "prov", run_id, "--format", "crate", "-o", str(crate))
    with zipfile.ZipFile(crate) as z:
        meta = json.loads(z.read("ro-crate-metadata.json"))
        assert any(e.get("@type") == "CreateAction" for e in meta["@graph"])
    r = CliRunner().invoke(cli, ["prov", "S-NANO77"], env=env)
    assert r.exit_code != 0 and "no dataset 'S-NANO77'" in str(r.exception)


def test_prov_through_the_service_shows_only_what_the_caller_may_see(
    service: Any, tmp_path: Path
) -> None:
    seed = service.seed
    with httpx.Client(base_url=service.url, timeout=60) as c:
        r = c.get(f"/datasets/{seed.public}/lineage", params={"format": "provn"})
        assert r.status_code == 200 and seed.runs["public"] in r.text
        r = c.get(f"/runs/{seed.runs['public']}/lineage", params={"format": "svg"})
        assert r.headers["content-type"] == "image/svg+xml" and b"<svg" in r.content[:400]
        for fmt in ("json", "prov-json", "provn", "dot", "svg"):
            r = c.get(f"/datasets/{seed.hidden}/lineage", params={"format": fmt})
            assert r.status_code == 404, fmt
    env = {"NANOREPO_URL": service.url, "NANOREPO_TOKEN": seed.tokens["carol"],
           "NANOREPO_HOME": str(tmp_path / "h"), "COLUMNS": "200"}  # fmt: skip
    tree = _invoke(env, "prov", seed.public).output
    assert seed.runs["public"][:8] in tree and seed.hidden not in tree
    r = CliRunner().invoke(cli, ["prov", seed.runs["hidden"]], env=env)
    assert r.exit_code != 0 and "no run" in str(r.exception)
    crate = tmp_path / "c.zip"
    _invoke(env, "prov", seed.runs["public"], "--format", "crate", "-o", str(crate))
    assert zipfile.is_zipfile(crate)
