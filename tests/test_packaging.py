"""How nanorepo installs: the locks match pyproject, the plain install is the library and
client only (no server, hub or viewer), the Python and the npm package share one version,
and the Lab extension is compatible with the JupyterLab the wheel requires.

The clean-virtualenv test builds the wheel once and installs it, from the lock, into a new
environment: it is ``slow`` (a minute or two), the rest takes well under a second.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
import time
import tomllib
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import nanorepo

ROOT = Path(__file__).resolve().parents[1]
LOCKS = ROOT / "requirements"
#: What a scientist reading data on a laptop must not get with ``pip install nanorepo``.
NOT_IN_PLAIN_INSTALL = {"jupyterhub", "jupyterlab", "jupyter-server", "fastapi", "napari",
                        "uvicorn", "sqlmodel", "pyqt6", "dask-gateway"}  # fmt: skip
_NAME = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;\\]+)")


def _lock_tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("_nanorepo_lock", LOCKS / "lock.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _pins(lock: Path) -> dict[str, str]:
    """``{normalised name: version}`` of a lock file."""
    pins = {}
    for line in lock.read_text().splitlines():
        m = _NAME.match(line)
        if m:
            pins[_normal(m.group(1))] = m.group(2)
    return pins


def _pyproject() -> dict[str, Any]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _requirement_names(reqs: list[str]) -> set[str]:
    return {_normal(re.split(r"[\s\[<>=!~;]", r, maxsplit=1)[0]) for r in reqs}


def test_every_lock_matches_pyproject() -> None:
    """A dependency changed in pyproject.toml without ``./dev lock`` fails here, naming
    the stale locks."""
    lock = _lock_tool()
    want = lock.dependency_digest()
    stale = [f for f in lock.FLAVOURS if lock.recorded_digest(LOCKS / f"{f}.txt") != want]
    assert not stale, f"stale locks {stale}: pyproject.toml changed, run ./dev lock"


def test_the_digest_sees_dependency_changes_not_comments(tmp_path: Path) -> None:
    lock = _lock_tool()
    text = (ROOT / "pyproject.toml").read_text()
    base = tmp_path / "pyproject.toml"
    base.write_text(text)
    digest = lock.dependency_digest(base)
    base.write_text(text.replace('"numpy>=2.0,<3",', '"numpy>=2.0,<3",  # a new comment'))
    assert lock.dependency_digest(base) == digest
    base.write_text(text.replace('"numpy>=2.0,<3",', '"numpy>=2.1,<3",'))
    assert lock.dependency_digest(base) != digest


def test_locks_pin_every_package_with_hashes_and_agree_with_the_test_lock() -> None:
    """Every flavour pins exact versions with hashes, and the same version of a package as
    ``test.txt`` (what the suite runs with), so a plain install runs tested code."""
    test = _pins(LOCKS / "test.txt")
    for flavour in ("base", "server", "hub", "napari", "test"):
        text = (LOCKS / f"{flavour}.txt").read_text()
        pins = _pins(LOCKS / f"{flavour}.txt")
        assert pins, flavour
        assert text.count("--hash=sha256:") >= len(pins), f"{flavour}.txt lacks hashes"
        differ = {n: (v, test.get(n)) for n, v in pins.items() if test.get(n) != v}
        assert not differ, f"{flavour}.txt and test.txt pin different versions: {differ}"


def test_plain_install_is_the_library_and_client_only() -> None:
    """``pip install nanorepo`` (the base lock is its full closure) carries no hub, server
    or viewer; the extras carry them, and lxml is declared."""
    project = _pyproject()["project"]
    base = _requirement_names(project["dependencies"])
    assert "lxml" in base
    assert {"numpy", "zarr", "tensorstore", "xarray", "dask", "ome-types", "httpx"} <= base
    plain = set(_pins(LOCKS / "base.txt"))
    assert not plain & NOT_IN_PLAIN_INSTALL, sorted(plain & NOT_IN_PLAIN_INSTALL)
    extras = project["optional-dependencies"]
    assert {"fastapi", "sqlmodel", "jupyterhub"} <= _requirement_names(extras["server"])
    assert {"jupyterlab", "nanorepo"} <= _requirement_names(extras["hub"])
    assert {"jupyterhub", "jupyterlab", "fastapi"} <= set(_pins(LOCKS / "hub.txt"))
    assert "napari" in set(_pins(LOCKS / "napari.txt"))


def test_one_version_for_the_python_and_the_npm_package() -> None:
    from importlib.metadata import version

    package = json.loads((ROOT / "extension" / "package.json").read_text())
    assert _pyproject()["tool"]["hatch"]["version"] == {
        "source": "nodejs",
        "path": "extension/package.json",
    }
    assert nanorepo.__version__ == package["version"] == version("nanorepo")


def test_extension_depends_on_ranges_of_the_jupyterlab_the_wheel_requires() -> None:
    """``@jupyterlab/*`` dependencies are ranges (not exact pins) that JupyterLab's own
    packages satisfy, and JupyterLab lists the installed extension as enabled and OK."""
    import jupyterlab

    package = json.loads((ROOT / "extension" / "package.json").read_text())
    staging = Path(jupyterlab.__file__).parent / "staging" / "package.json"
    core = json.loads(staging.read_text())["resolutions"]
    lab = {k: v for k, v in package["dependencies"].items() if k.startswith("@jupyterlab/")}
    assert lab
    for name, spec in lab.items():
        assert spec.startswith("^"), f"{name} {spec}: a range of the JupyterLab 4 line"
        have = tuple(int(x) for x in core[name].lstrip("~^").split("."))
        floor = tuple(int(x) for x in spec[1:].split("."))
        assert have[0] == floor[0] and have >= floor, f"{name}: {spec} excludes {core[name]}"
    out = subprocess.run(
        [sys.executable, "-m", "jupyter", "labextension", "list"],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    listing = out.stdout + out.stderr
    line = next((li for li in listing.splitlines() if li.strip().startswith("nanorepo ")), "")
    assert "enabled" in line and "OK" in line, listing
    assert "not compatible" not in listing.split("nanorepo v", 1)[-1].split("\n\n")[0]


@pytest.mark.slow
def test_clean_virtualenv_installs_the_plain_wheel_from_the_lock(tmp_path: Path) -> None:
    """The wheel built from this tree, installed into a new virtualenv next to the base
    lock and nothing else (``--no-index``: every requirement must come from the lock),
    imports and reads through the client, with no hub, server or viewer installed."""
    dist = tmp_path / "dist"
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    pip = [sys.executable, "-m", "pip"]
    subprocess.run(
        [*pip, "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w", str(dist),
         str(ROOT)],
        check=True, env=env, timeout=600, capture_output=True,
    )  # fmt: skip
    (wheel,) = dist.glob("nanorepo-*.whl")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = str(venv / "bin" / "python")
    vpip = [python, "-m", "pip", "--quiet"]
    subprocess.run(
        [*vpip, "install", "--require-hashes", "--no-deps", "-r", str(LOCKS / "base.txt")],
        check=True, env=env, timeout=900, capture_output=True,
    )  # fmt: skip
    subprocess.run(
        [*vpip, "install", "--no-index", str(wheel)],
        check=True, env=env, timeout=300, capture_output=True,
    )  # fmt: skip
    listed = subprocess.run(
        [python, "-m", "pip", "list", "--format=json"],
        check=True, env=env, capture_output=True, text=True, timeout=120,
    ).stdout  # fmt: skip
    installed = {_normal(p["name"]) for p in json.loads(listed)}
    assert "nanorepo" in installed
    assert not installed & NOT_IN_PLAIN_INSTALL, sorted(installed & NOT_IN_PLAIN_INSTALL)
    # What a scientist does first: import, then open a dataset of a running service
    # (NANOREPO_URL) and read pixels, with no server extra installed.
    from nanorepo.repository import Repository
    from nanorepo.settings import Settings
    from nanorepo.testing._service import live_service, seed_repository

    settings = Settings.from_env(tmp_path / "home", env={"NANOREPO_USER": "alice"})
    with Repository(settings, create=True) as repo:
        seed = seed_repository(repo, tmp_path / "seed")
        code = (
            "import time; t = time.perf_counter(); import nanorepo; "
            "dt = time.perf_counter() - t; "
            f"ds = nanorepo.open({seed.public!r}); img = ds.images[0]; "
            "print(nanorepo.__version__, round(dt * 1000, 1), "
            "int(img.to_xarray(0).isel(c=0).sum().values))"
        )
        plain = {k: v for k, v in env.items() if not k.startswith(("NANOREPO_", "JUPYTERHUB_"))}
        with live_service(settings, repo=repo) as live:
            t0 = time.perf_counter()
            out = subprocess.run(
                [python, "-c", code], capture_output=True, text=True, timeout=300,
                cwd=tmp_path, env={**plain, "NANOREPO_URL": live.url},
            )  # fmt: skip
            elapsed_s = time.perf_counter() - t0
            local = int(_first_channel_sum(repo, seed.public))
    assert out.returncode == 0, out.stderr[-3000:]
    version, import_ms, total = out.stdout.split()
    assert version == nanorepo.__version__
    assert int(total) == local > 0  # the same pixels as read next to the storage
    site = venv / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}"
    size_mb = sum(f.stat().st_size for f in site.rglob("*") if f.is_file()) / 1e6
    print(
        f"\nplain install: {len(installed)} packages, {size_mb:.0f} MB; import nanorepo "
        f"{import_ms} ms; interpreter start, import, open and read over HTTP {elapsed_s:.1f} s"
    )


def _first_channel_sum(repo: Any, accession: str) -> float:
    """The sum of the first channel of the dataset's first image, read from storage."""
    from nanorepo.access import open_version

    ds = open_version(repo.layout, accession, None, catalog=repo.catalog)
    return float(ds.images[0].to_xarray(0).isel(c=0).sum().values)
