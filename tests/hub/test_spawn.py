"""User servers of a real JupyterHub (one per module and catalog backend): a scientist
logs in, starts JupyterLab, and in a real kernel opens a dataset from their storage view,
reads a region and posts an annotation as themselves; users see embargoed data in their
view exactly when the service lets them.

The hub is configured like ``nanorepo up`` (``nanorepo.testing._hub``): the same spawn
hook, roles and service; only the login is the DummyAuthenticator's.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable, Iterator

import httpx
import pytest

from nanorepo.repository import Repository
from nanorepo.testing._hub import LiveHub, kernel_session

pytestmark = pytest.mark.slow

GIB = 1024**3


def _form_action(page: httpx.Response) -> str:
    """Where the hub's spawn form posts to (its URL carries the ``_xsrf`` token)."""
    m = re.search(r'id="spawn_form"\s+action="([^"]+)"', page.text)
    assert m is not None, page.text[:500]
    return html.unescape(m.group(1))


@pytest.fixture(scope="module")
def browser(jupyterhub: LiveHub) -> Iterator[httpx.Client]:
    """bob in a browser: signed in to the hub, his server started through the spawn form
    (the small size), JupyterLab loaded (which signs him in to his server by OAuth)."""
    hub = jupyterhub
    with httpx.Client(timeout=60) as client:
        hub.browser_login(client, "bob")
        form = client.get(f"{hub.url}/hub/spawn/bob")
        assert form.status_code == 200
        assert 'name="profile" value="small"' in form.text
        assert 'value="large"' in form.text
        action = _form_action(form)
        assert "_xsrf=" in action
        started = client.post(f"{hub.url}{action}", data={"profile": "small"})
        assert started.status_code in (200, 302), started.text[:500]
        hub.wait_server("bob")
        lab = client.get(f"{hub.server_url('bob')}lab", follow_redirects=True)
        assert lab.status_code == 200 and "JupyterLab" in lab.text
        assert str(lab.url).startswith(hub.server_url("bob"))
        yield client
    hub.stop_server("bob")


def test_scientist_reads_a_region_and_annotates_as_themselves(
    jupyterhub: LiveHub, browser: httpx.Client
) -> None:
    hub, granted = jupyterhub, jupyterhub.seed.granted
    code = f"""
import json, os, nanorepo
ds = nanorepo.open({granted!r})
im = ds.images[0]
region = im.to_xarray(dask=False).isel(y=slice(8, 24), x=slice(4, 20)).values
thread = nanorepo.Client().create_thread(
    {granted!r}, "Ring seen from a notebook", "The ring at the edge is complete.",
    anchor={{"kind": "region", "unit": "nanometer", "shape": "box",
             "x": [80.0, 400.0], "y": [160.0, 480.0]}}, image=im.name)
print(json.dumps({{"path": str(ds.path), "storage": os.environ["NANOREPO_STORAGE"],
                  "shape": region.shape, "sum": int(region.sum()), "thread": thread["id"],
                  "mem": os.environ.get("MEM_LIMIT"), "cpu": os.environ.get("CPU_LIMIT")}}))
"""
    with kernel_session(hub.server_url("bob"), client=browser) as kernel:  # cookie + XSRF
        out = json.loads(kernel.run(code).strip().splitlines()[-1])
    # read in place from bob's storage view, the same pixels as in the repository
    assert out["storage"] == str(hub.view_dir("bob"))
    assert out["path"].startswith(out["storage"] + "/embargoed/")
    with Repository(hub.settings) as repo:
        im = repo.open(granted).images[0]
        expected = im.to_xarray(dask=False).isel(y=slice(8, 24), x=slice(4, 20)).values
    assert tuple(out["shape"]) == expected.shape and out["sum"] == int(expected.sum())
    # the size chosen in the form reached the server (nanorepo.compute sizes Dask by it)
    assert (out["mem"], out["cpu"]) == (str(4 * GIB), "1.0")
    # the annotation's author is the hub user, as the service records it
    r = httpx.get(
        f"{hub.service_url}/datasets/{granted}/threads/{out['thread']}",
        headers={"Authorization": f"token {hub.user_token('alice')}"},
        timeout=30,
    )
    assert r.status_code == 200
    assert r.json()["created_by"] == "bob"
    assert [p["author"] for p in r.json()["posts"]] == ["bob"]
    # the Lab extension's way in: bob's own server forwards to the service as bob
    base = hub.server_url("bob").rstrip("/")
    r = browser.get(f"{base}/nanorepo/api/health")
    assert r.status_code == 200, r.text[:300]
    assert r.json()["user"] == "bob"
    r = browser.get(f"{base}/nanorepo/api/datasets/{jupyterhub.seed.hidden}")
    assert r.status_code == 404  # bob has no grant on the hidden one
    r = httpx.get(f"{base}/nanorepo/api/health", timeout=30)  # no session: not forwarded
    assert r.status_code in {302, 401, 403}


def test_granted_by_hub_group_sees_it_in_view_and_service(
    jupyterhub: LiveHub, hub_servers: Callable[..., str]
) -> None:
    """frank's grant comes only through the hub group ``lab``."""
    hub, seed = jupyterhub, jupyterhub.seed
    url = hub_servers("frank")
    view = hub.view_dir("frank")
    assert sorted(p.name for p in (view / "embargoed").iterdir()) == [seed.granted]
    code = f"""
import nanorepo
print(nanorepo.open({seed.granted!r}).ref)
print(nanorepo.Client().dataset({seed.granted!r})["accession"])
"""
    with kernel_session(url, token=hub.user_token("frank")) as kernel:
        assert kernel.run(code).split() == [f"{seed.granted}@v1", seed.granted]


def test_without_grant_neither_view_nor_service_shows_it(
    jupyterhub: LiveHub, hub_servers: Callable[..., str]
) -> None:
    """carol, granted nothing, on a named server of the large size."""
    hub, seed = jupyterhub, jupyterhub.seed
    url = hub_servers("carol", "big", options={"profile": "large"})
    view = hub.view_dir("carol")
    assert list((view / "embargoed").iterdir()) == []
    assert (view / "public" / seed.public).is_dir()
    code = f"""
import os, nanorepo
print(os.environ["MEM_LIMIT"], nanorepo.open({seed.public!r}).ref)
for acc in ({seed.granted!r}, {seed.hidden!r}):
    try:
        nanorepo.open(acc)  # not in the view; the service is asked and says 404
    except LookupError as exc:
        print("not found", type(exc).__name__)
    print(sorted(d["accession"] for d in nanorepo.Client().datasets()))
"""
    with kernel_session(url, token=hub.user_token("carol")) as kernel:
        lines = kernel.run(code).strip().splitlines()
    assert lines[0] == f"{16 * GIB} {seed.public}@v1"
    assert lines[1::2] == ["not found NotFound"] * 2
    assert lines[2] == lines[4] == str(sorted([seed.public]))


def test_depositor_deposits_from_their_home(
    jupyterhub: LiveHub, hub_servers: Callable[..., str]
) -> None:
    """erin's home is her staging area: a dataset written there is deposited by the
    service (the server itself never writes to the repository) and appears in her view."""
    hub = jupyterhub
    url = hub_servers("erin")
    code = """
import json, os, numpy as np, tifffile, yaml, nanorepo
os.makedirs("incoming", exist_ok=True)
data = (np.arange(2 * 32 * 24) % 500).astype("uint16").reshape(2, 32, 24)
tifffile.imwrite("incoming/cell.ome.tif", data, ome=True, photometric="minisblack",
                 metadata={"axes": "CYX", "PhysicalSizeX": 0.02, "PhysicalSizeXUnit": "µm",
                           "PhysicalSizeY": 0.02, "PhysicalSizeYUnit": "µm"})
meta = {"study": {"description": "From a notebook.", "authors": [{"name": "Erin"}],
                  "license": "CC-BY-4.0"},
        "biosample": {"organism": "Homo sapiens"}, "image_acquisition": {"technique": "STED"}}
open("incoming/metadata.yaml", "w").write(yaml.safe_dump(meta))
c = nanorepo.Client()
d = c.deposit_staged(["incoming/cell.ome.tif"], "Deposited from a notebook",
                     "incoming/metadata.yaml")
ds = nanorepo.open(d["accession"])
pixels = ds.images[0].to_xarray(dask=False).values
print(json.dumps({"acc": d["accession"], "path": str(ds.path),
                  "owner": c.dataset(d["accession"])["owner"],
                  "same": bool((pixels == data).all())}))
"""
    with kernel_session(url, token=hub.user_token("erin")) as kernel:
        out = json.loads(kernel.run(code).strip().splitlines()[-1])
    assert out["owner"] == "erin" and out["same"] is True
    assert out["path"] == f"{hub.view_dir('erin')}/public/{out['acc']}"  # read in place
    assert (hub.settings.storage / "public" / out["acc"]).is_dir()


def test_unknown_server_size_is_refused_clearly(jupyterhub: LiveHub) -> None:
    with jupyterhub.api() as api:
        r = api.post("/users/dave/server", json={"profile": "huge"})
        assert r.status_code == 400
        assert "there is no server size 'huge'; choose one of: small, large" in r.text
        assert not api.get("/users/dave").json()["servers"]
