"""The extension's jest tests (``extension/src/__tests__``): the request layer, the
models and the Provenance tab's model (over the runs :func:`record_provenance` records),
against a real Jupyter Server with nanorepo's server extension in front of a real
service over a seeded repository (as alice, who owns every seeded dataset).

The forwarder does not touch the catalog, so this runs on SQLite only.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.extension._seed import deposit_image_dataset, record_provenance
from tests.extension.conftest import EXTENSION
from tests.jupyter._servers import JUPYTER_TOKEN, jupyter_server


@pytest.mark.slow
@pytest.mark.parametrize("catalog_url", ["sqlite"], indirect=True)
def test_jest(service: Any, tmp_path: Path, jest: list[str]) -> None:
    seed = service.seed
    images = deposit_image_dataset(service.repo, tmp_path / "images")
    provenance = record_provenance(service.repo, images, seed, tmp_path / "runs")
    env = {
        "NANOREPO_URL": service.url,
        "NANOREPO_TOKEN": seed.tokens["alice"],
        "NANOREPO_STORAGE": str(service.settings.storage),
    }
    with jupyter_server(tmp_path / "jupyter", env) as jp:
        run_env = {k: v for k, v in os.environ.items() if not k.startswith("NANOREPO_")}
        run_env.update(
            NANOREPO_TEST_JUPYTER_URL=jp.url,
            NANOREPO_TEST_JUPYTER_TOKEN=JUPYTER_TOKEN,
            NANOREPO_TEST_SEED=json.dumps(images.seed(seed, provenance)),
            CI="true",  # jest: no watch mode, no interactive output
        )
        proc = subprocess.run(
            [*jest, "--ci", "--runInBand", "--json", f"--outputFile={tmp_path / 'jest.json'}"],
            cwd=EXTENSION, env=run_env, capture_output=True, text=True, timeout=600,
        )  # fmt: skip
    report = tmp_path / "jest.json"
    assert report.exists(), proc.stdout[-3000:] + proc.stderr[-6000:]
    result = json.loads(report.read_text())
    failed = [
        f"{t['fullName']}: {' '.join(t['failureMessages'])[:1500]}"
        for suite in result["testResults"]
        for t in suite["assertionResults"]
        if t["status"] != "passed"
    ]
    assert proc.returncode == 0 and not failed, "\n".join(failed) or proc.stderr[-6000:]
    # both suites ran, every test in them
    suites = {Path(s["name"]).name for s in result["testResults"]}
    assert suites == {
        "request.spec.ts",
        "models.spec.ts",
        "provenance.spec.ts",
        "metadata.spec.ts",
    }, suites
    assert result["numPassedTests"] == result["numTotalTests"] >= 32


def test_sources_follow_the_style() -> None:
    """TypeScript without ``any`` or ``console.log``, interfaces named ``IName``, plugin
    ids ``nanorepo:<name>`` (STYLE.md; the template's eslint rules, checked without eslint)."""
    import re

    sources = sorted((EXTENSION / "src").rglob("*.ts*")) + sorted(
        (EXTENSION / "ui-tests" / "tests").glob("*.ts")
    )
    assert len(sources) > 10
    for path in sources:
        text = path.read_text()
        code = re.sub(r"/\*.*?\*/|//[^\n]*", "", text, flags=re.S)
        assert not re.search(r"(:|<|as)\s*any\b|\bany\[\]", code), f"{path}: explicit any"
        assert "console.log" not in code, f"{path}: console.log"
        for name in re.findall(r"\binterface\s+(\w+)", code):
            assert re.fullmatch(r"I[A-Z]\w*", name), f"{path}: interface {name} is not IName"
    index = (EXTENSION / "src" / "index.ts").read_text()
    ids = re.findall(r"\bid:\s*'([^']+)'|PLUGIN_ID = '([^']+)'", index)
    assert ids and all(re.fullmatch(r"nanorepo:[a-z-]+", a or b) for a, b in ids), ids
    schema = json.loads((EXTENSION / "schema" / "repository.json").read_text())
    assert schema["properties"]["pageSize"]["default"] == 20
