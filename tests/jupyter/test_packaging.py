"""The wheel enables the extension and ships the notebooks where the extension looks."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

import nanorepo
from nanorepo.errors import ConfigurationError
from nanorepo.jupyter import _jupyter_server_extension_points, bundled_notebooks

ROOT = Path(__file__).resolve().parents[2]


def test_wheel_enables_the_extension_and_ships_the_notebooks() -> None:
    wheel = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["hatch"]["build"][
        "targets"
    ]["wheel"]
    (src, dst), *_ = wheel["shared-data"].items()
    assert dst == "etc/jupyter/jupyter_server_config.d/nanorepo.json"
    config = json.loads((ROOT / src).read_text())
    assert config == {"ServerApp": {"jpserver_extensions": {"nanorepo.jupyter": True}}}
    assert _jupyter_server_extension_points() == [{"module": "nanorepo.jupyter"}]
    assert wheel["force-include"] == {"notebooks": "nanorepo/_notebooks"}


def test_installed_copy_wins_over_the_checkout(tmp_path: Path) -> None:
    """Installed: ``nanorepo/_notebooks``; a checkout: ``notebooks/`` beside the package."""
    package = tmp_path / "site" / "nanorepo"
    (package / "_notebooks" / "training").mkdir(parents=True)
    (tmp_path / "site" / "notebooks" / "training").mkdir(parents=True)
    assert bundled_notebooks(package) == package / "_notebooks"
    checkout = Path(nanorepo.__file__).resolve().parent
    assert bundled_notebooks(checkout) == ROOT / "notebooks"
    with pytest.raises(ConfigurationError, match="no notebooks"):
        bundled_notebooks(tmp_path / "empty" / "nanorepo")


def test_wheel_ships_the_prebuilt_lab_extension() -> None:
    """The labextension built from extension/ goes to share/jupyter/labextensions/nanorepo,
    where JupyterLab finds prebuilt extensions, and this environment has it installed (so
    ``pip install`` alone gives users the Repository panel)."""
    import sys

    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    build = pyproject["tool"]["hatch"]["build"]
    shared = build["targets"]["wheel"]["shared-data"]
    assert shared["extension/labextension"] == "share/jupyter/labextensions/nanorepo"
    assert shared["extension/install.json"] == "share/jupyter/labextensions/nanorepo/install.json"
    hook = build["hooks"]["jupyter-builder"]
    assert hook["build-function"] == "hatch_jupyter_builder.npm_builder"
    assert "extension/labextension/package.json" in hook["ensured-targets"]
    assert "hatch-jupyter-builder>=0.9,<0.11" in pyproject["build-system"]["requires"]
    package = json.loads((ROOT / "extension" / "package.json").read_text())
    assert package["name"] == "nanorepo"
    assert package["jupyterlab"]["outputDir"] == "labextension"
    assert (
        json.loads((ROOT / "extension" / "install.json").read_text())["packageName"] == "nanorepo"
    )
    installed = Path(sys.prefix) / "share" / "jupyter" / "labextensions" / "nanorepo"
    meta = json.loads((installed / "package.json").read_text())
    assert meta["name"] == "nanorepo" and meta["jupyterlab"]["_build"]["load"].startswith("static/")
    assert (installed / meta["jupyterlab"]["_build"]["load"]).is_file()
    assert (installed / "schemas" / "nanorepo" / "repository.json").is_file()
