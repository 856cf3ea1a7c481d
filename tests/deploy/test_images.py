"""images/: the service, hub and single-user images build with podman from the committed
locks (images/build.py, on a Debian base bootstrapped with mmdebstrap: this machine cannot
pull images) and pass their smoke checks; the single-user image reads a dataset of a live
service over HTTP with a user's token.

Builds are cached by the digest of their inputs (Dockerfile, install script, lock,
nanorepo's wheel of HEAD, the base image), so an unchanged image is not rebuilt; the
build times and sizes are printed (``-s``) for the CI budget.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

import nanorepo

ROOT = Path(__file__).resolve().parents[2]


def _build_module() -> Any:
    spec = importlib.util.spec_from_file_location(
        "nanorepo_images_build", ROOT / "images" / "build.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


build = _build_module()


@pytest.fixture(scope="module")
def images() -> dict[str, Any]:
    missing = [t for t in ("podman", "mmdebstrap", "runc") if shutil.which(t) is None]
    if missing:
        pytest.fail(f"the image tests need {', '.join(missing)}: ./dev install installs them")
    base = build.debian_base()
    out = {name: build.build(name, base) for name in build.LOCKS}
    for b in out.values():
        state = f"built in {b.seconds:.0f} s" if b.built else "cached"
        print(f"\n{b.tag}: {b.size_bytes() / 1e9:.2f} GB, {state}")
    return out


def _run(tag: str, *cmd: str, network: str = "none", env: dict[str, str] | None = None) -> str:
    args = ["run", "--rm", "--network", network]
    for k, v in (env or {}).items():
        args += ["--env", f"{k}={v}"]
    return str(build.podman(*args, tag, *cmd))


def _pins(text: str) -> dict[str, str]:
    """name -> version of ``name==version`` lines (names normalised as pip does)."""
    out = {}
    for m in re.finditer(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s\\;]+)", text, re.M):
        out[re.sub(r"[-_.]+", "-", m.group(1)).lower()] = m.group(2)
    return out


@pytest.mark.parametrize("name", ["service", "hub", "singleuser"])
def test_image_holds_exactly_its_lock_and_nanorepo(images: dict[str, Any], name: str) -> None:
    tag = images[name].tag
    assert _run(tag, "nanorepo", "--version") == f"nanorepo, version {nanorepo.__version__}"
    assert _run(tag, "id", "-u") == "1000"  # not root
    freeze = _run(tag, "pip", "freeze", "--all", "--exclude", "pip")
    assert re.search(r"^nanorepo @ file:///tmp/nanorepo/dist/nanorepo-\S+\.whl", freeze, re.M)
    frozen = _pins(freeze)
    frozen.pop("setuptools", None)  # the venv's own, when the Python brings one
    assert frozen == _pins((ROOT / "requirements" / build.LOCKS[name]).read_text())


def test_hub_image_runs_the_charts_hub_and_gateway(images: dict[str, Any]) -> None:
    tag = images["hub"].tag
    code = "import kubespawner, pycurl, jupyterhub_idle_culler, dask_gateway_server, nanorepo.hub"
    _run(tag, "python", "-c", code)
    assert _run(tag, "jupyterhub", "--version").split(".")[0].isdigit()


def test_singleuser_image_has_the_repository_panel(images: dict[str, Any]) -> None:
    tag = images["singleuser"].tag
    listing = re.sub(r"\x1b\[[0-9;]*m", "", _run(tag, "sh", "-c", "jupyter labextension list 2>&1"))
    assert re.search(r"nanorepo v\S+ enabled\s+OK", listing), listing
    _run(tag, "python", "-c", "import dask_gateway, distributed, jupyter_server_proxy, papermill")
    _run(tag, "jupyterhub-singleuser", "--version")


def test_singleuser_image_reads_a_dataset_over_http(images: dict[str, Any], service: Any) -> None:
    """In the single-user image, with only the service's URL and bob's token (no storage,
    no catalog), a notebook's code opens the embargoed dataset bob is granted and reads
    the same pixels as the repository holds."""
    seed = service.seed
    expected = int(
        nanorepo.open(seed.granted, settings=service.settings).images[0]
        .to_xarray(dask=False).values.astype("int64").sum()
    )  # fmt: skip
    code = (
        "import sys, nanorepo; ds = nanorepo.open(sys.argv[1]);"
        "print(int(ds.images[0].to_xarray(dask=False).values.astype('int64').sum()))"
    )
    env = {"NANOREPO_URL": service.url, "NANOREPO_TOKEN": seed.tokens["bob"]}
    got = _run(
        images["singleuser"].tag, "python", "-c", code, seed.granted, network="host", env=env
    )
    assert int(got.splitlines()[-1]) == expected
