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
