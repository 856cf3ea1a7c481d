"""Write helm/nanorepo/values.schema.json: nanorepo's own schema (values.schema.yaml beside
it) with the dependency charts' schemas locking their subtrees.

zero-to-jupyterhub and dask-gateway keep their values' schemas as values.schema.yaml and
generate the JSON Helm reads when they publish (their ``required`` lists are dropped here:
their defaults fill those keys); the packed charts in charts/ carry only
the YAML, so Helm would not check the ``jupyterhub:`` and ``dask-gateway:`` values at
all. Embedding their schemas here locks every key of the release, theirs included (the
way z2jh locks its own). ``enabled`` is added to each: it is the parent's condition key.

Usage: python helm/generate_schema.py [--check]   (the charts must be in charts/, as
``helm dependency build`` or the tests put them there)
"""

from __future__ import annotations

import json
import sys
import tarfile
from pathlib import Path
from typing import Any

import yaml

CHART = Path(__file__).resolve().parent / "nanorepo"
SUBCHARTS = {"jupyterhub": "jupyterhub-4.4.0.tgz", "dask-gateway": "dask-gateway-2026.3.0.tgz"}


def _without_required(node: Any) -> Any:
    """``node`` without its ``required`` lists: Helm checks the parent's schema against the
    values as given (``helm lint``) before the subchart's defaults fill them in."""
    if isinstance(node, dict):
        return {
            k: (
                {p: _without_required(s) for p, s in v.items()}
                if k == "properties"
                else _without_required(v)
            )
            for k, v in node.items()
            if k != "required" or not isinstance(v, list)
        }
    if isinstance(node, list):
        return [_without_required(v) for v in node]
    return node


def _subchart_schema(name: str, archive: Path) -> dict[str, Any]:
    with tarfile.open(archive) as tar:
        f = tar.extractfile(f"{name}/values.schema.yaml")
        if f is None:
            raise SystemExit(f"{archive} has no {name}/values.schema.yaml")
        schema: dict[str, Any] = yaml.safe_load(f)
    schema = _without_required({k: v for k, v in schema.items() if not k.startswith("$")})
    schema["properties"].setdefault(
        "enabled", {"type": "boolean", "description": "Whether the chart is installed."}
    )
    return schema


def schema() -> dict[str, Any]:
    """The combined schema."""
    ours: dict[str, Any] = yaml.safe_load((CHART / "values.schema.yaml").read_text())
    for name, archive in SUBCHARTS.items():
        sub = _subchart_schema(name, CHART / "charts" / archive)
        ours["properties"][name] = {**sub, "description": ours["properties"][name]["description"]}
    return ours


def main(argv: list[str]) -> int:
    text = json.dumps(schema(), indent=1, sort_keys=True) + "\n"
    target = CHART / "values.schema.json"
    if "--check" in argv:
        if not target.exists() or target.read_text() != text:
            print(f"{target} is stale: run python helm/generate_schema.py", file=sys.stderr)
            return 1
        return 0
    target.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
