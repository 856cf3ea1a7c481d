"""``nanorepo.open`` over HTTP: a machine with nothing but NANOREPO_URL and a token opens
datasets through the service, reads the same values as the local open, region by region,
and sees exactly what its user may see."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
import yaml

import nanorepo
from nanorepo.access._remote import NotOnThisMachine, RemoteDataset
from nanorepo.errors import DatasetNotFound, RepositoryNotFound
from tests.conftest import METADATA, write_ome_tiff


@pytest.fixture
def remote_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, service: Any) -> Path:
    """A fresh environment: an EMPTY home, the service's URL, no token yet."""
    for k in list(os.environ):
        if k.startswith(("NANOREPO_", "JUPYTERHUB_")):
            monkeypatch.delenv(k)
    home = tmp_path / "empty-home"
    home.mkdir()
    monkeypatch.setenv("NANOREPO_HOME", str(home))
    monkeypatch.setenv("NANOREPO_URL", service.url)
    return home


def test_open_over_http_reads_what_the_local_open_reads(
    service: Any, remote_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed = service.seed
    monkeypatch.setenv("NANOREPO_TOKEN", seed.tokens["bob"])
    ds = nanorepo.open(seed.granted)
    local = service.repo.open(seed.granted)
    assert isinstance(ds, RemoteDataset)
    assert ds.ref == local.ref and ds.latest_version == local.latest_version
    assert ds.metadata == local.metadata
    assert ds.mutable == local.mutable and ds.title == "Granted embargoed pores"
    assert [i.name for i in ds] == [i.name for i in local]
    im, lim = ds.images[0], local.images[0]
    assert (im.dims, im.shape, im.pixel_sizes) == (lim.dims, lim.shape, lim.pixel_sizes)
    assert im.url.startswith(service.url + "/zarr/")
    # whole image, lazily through dask, then a region in physical units (nm)
    remote_da, local_da = im.to_xarray(), lim.to_xarray()
    np.testing.assert_array_equal(remote_da.values, local_da.values)
    np.testing.assert_array_equal(remote_da.coords["x"], local_da.coords["x"])
    region = {"x": slice(200.0, 600.0), "y": slice(100.0, 500.0)}
    got = im.to_xarray(dask=False).sel(region).values
    np.testing.assert_array_equal(got, local_da.sel(region).values)
    assert 0 < got.size < remote_da.size // 4  # a region, not the image
    np.testing.assert_array_equal(
        im.zarr.read_region(0, {"y": slice(3, 9), "x": slice(5, 20)}),
        local_da.values[..., 3:9, 5:20],
    )
    # stored files: no local path, but a checked download
    name = ds.files[0]["name"]
    with pytest.raises(NotOnThisMachine, match="download") as exc:
        ds.file_path(name)
    assert isinstance(exc.value, FileNotFoundError)
    got_file = ds.download(name, remote_env.parent)
    assert got_file.read_bytes() == local.file_path(name).read_bytes()
    # the home stayed empty: nothing was created or copied there
    assert list(remote_env.iterdir()) == []


def test_open_over_http_sees_what_the_user_may_see(
    service: Any, remote_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed = service.seed
    monkeypatch.setenv("NANOREPO_TOKEN", seed.tokens["bob"])
    with pytest.raises(DatasetNotFound) as exc:
        nanorepo.open(seed.hidden)
    served = httpx.get(f"{service.url}/datasets/{seed.hidden}", headers=seed.headers("bob"))
    assert served.status_code == 404
    assert exc.value.message == served.json()["detail"]
    assert exc.value.hint == served.json()["hint"]
    # anonymous: public only
    monkeypatch.delenv("NANOREPO_TOKEN")
    assert nanorepo.open(seed.public).images[0].to_xarray().shape == (2, 64, 48)
    for acc in (seed.granted, seed.hidden):
        with pytest.raises(DatasetNotFound, match="no dataset"):
            nanorepo.open(acc)
    # without NANOREPO_URL, an empty home is no repository: a clear error, nothing created
    monkeypatch.delenv("NANOREPO_URL")
    with pytest.raises(RepositoryNotFound, match="there is no nanorepo repository at"):
        nanorepo.open(seed.public)
    assert list(remote_env.iterdir()) == []


def test_localisation_tables_are_read_over_http(
    service: Any, remote_env: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    seed = service.seed
    src = tmp_path / "in"
    src.mkdir()
    write_ome_tiff(src / "cell.ome.tif", shape=(2, 32, 32))
    rng = np.random.default_rng(1)
    table = pd.DataFrame(
        {"x_nm": rng.uniform(0, 5000, 300), "y_nm": rng.uniform(0, 5000, 300),
         "frame": np.arange(300), "photons": rng.uniform(500, 3000, 300)}
    )  # fmt: skip
    table.to_csv(src / "locs.csv", index=False)
    (src / "metadata.yaml").write_text(yaml.safe_dump(METADATA))
    client = nanorepo.Client(service.url, seed.tokens["erin"])
    with client:
        acc = client.deposit(
            [src / "cell.ome.tif", src / "locs.csv"], "With a table", src / "metadata.yaml"
        )["accession"]
    monkeypatch.setenv("NANOREPO_TOKEN", seed.tokens["erin"])
    ds = nanorepo.open(acc)
    remote = ds.localisations("locs")
    pd.testing.assert_frame_equal(remote, service.repo.open(acc).localisations("locs"))
    np.testing.assert_allclose(remote["x_nm"], table["x_nm"])
    assert list(remote_env.iterdir()) == []


#: What ``pip install nanorepo`` (no extras) lacks: the catalog, the service, the hub.
NOT_IN_THE_PLAIN_INSTALL = (
    "fastapi", "uvicorn", "sqlmodel", "sqlalchemy", "alembic", "psycopg", "jupyterhub",
    "jupyterlab", "jupyter_server", "notebook", "napari", "papermill",
)  # fmt: skip

PLAIN = """
import sys
for name in {blocked!r}:
    sys.modules[name] = None  # as if not installed: importing it raises ImportError
import nanorepo
ds = nanorepo.open({acc!r})
print("opened", ds.ref, ds.images[0].to_xarray().shape)
print("found", [d["accession"] for d in nanorepo.search("")])
with nanorepo.Client() as c:
    print("client", c.dataset({acc!r})["accession"])
from nanorepo.cli._main import main
main(["show", {acc!r}, "--json"])
"""


def test_the_plain_install_reads_and_discusses_over_http(
    service: Any, remote_env: Path, tmp_path: Path
) -> None:
    """``pip install nanorepo`` without [server] or [hub]: with NANOREPO_URL, ``import
    nanorepo``, ``nanorepo.open``, ``nanorepo.search``, the client and the CLI's remote
    commands work (the packages of the extras are made unimportable in the child)."""
    seed = service.seed
    home = tmp_path / "laptop-home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NANOREPO_", "JUPYTERHUB_"))}
    env |= {"NANOREPO_URL": service.url, "NANOREPO_TOKEN": seed.tokens["bob"],
            "HOME": str(home)}  # fmt: skip
    code = PLAIN.format(blocked=NOT_IN_THE_PLAIN_INSTALL, acc=seed.public)
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    lines = proc.stdout.splitlines()
    assert lines[0] == f"opened {seed.public}@v1 (2, 64, 48)"
    assert seed.public in lines[1] and seed.granted in lines[1] and seed.hidden not in lines[1]
    assert lines[2] == f"client {seed.public}"
    assert json.loads("\n".join(lines[3:]))["ref"] == f"{seed.public}@v1"
    assert list(home.rglob("*.sqlite")) == []
