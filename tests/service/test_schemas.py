"""One wire contract (issue 16 item 3, D21): the JSON the service speaks is defined once, in
:mod:`nanorepo.schemas`, importable by the client without the ``[server]`` extra, and the
OpenAPI document the routes publish is built from those very models."""

from __future__ import annotations

import json
import subprocess
import sys

from nanorepo.settings import Settings

SERVER_ONLY = ("fastapi", "starlette", "sqlmodel", "sqlalchemy", "uvicorn")


def test_schemas_import_without_the_server_stack() -> None:
    """A plain install (no ``[server]`` extra) can import the models: importing them loads
    no part of the service's stack."""
    code = (
        "import json, sys, nanorepo.schemas as s;"
        "print(json.dumps([sorted(s.__all__), sorted({m.split('.')[0] for m in sys.modules})]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    names, loaded = json.loads(out.stdout)
    assert {"DatasetSummary", "ImageInfo", "ThreadOut", "Problem"} <= set(names)
    assert not set(SERVER_ONLY) & set(loaded), set(SERVER_ONLY) & set(loaded)


def test_openapi_components_are_the_shared_models(sqlite_settings: Settings) -> None:
    """Every response model the document names that :mod:`nanorepo.schemas` defines is
    published exactly as that model's JSON schema: no route keeps its own copy."""
    import nanorepo.schemas as wire
    from nanorepo.service import create_app

    components = create_app(sqlite_settings).openapi()["components"]["schemas"]
    shared = [n for n in wire.__all__ if n in components]
    assert {"DatasetSummary", "DatasetDetail", "ImageInfo", "ThreadOut", "ThreadPage"} <= set(
        shared
    )
    for name in ("DatasetSummary", "ImageInfo", "FileInfo", "PostOut", "Imported"):
        model = getattr(wire, name)
        assert (
            components[name]["properties"].keys() == model.model_json_schema()["properties"].keys()
        ), name
