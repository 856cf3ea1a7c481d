"""Dask Gateway for real: ``dask-gateway-server`` (its local backend) authenticating users
through a live JupyterHub, next to the nanorepo service; from a user's hub token,
``nanorepo.compute.cluster()`` in a user-server-like process returns a Gateway cluster
whose worker computes on a repository image.

The Gateway gives each cluster the user's storage view when it starts (its options
handler reads the user's grants from the catalog, as the hub's spawn hook does). With the
local backend that view is the hub's local one, a directory of links: the worker finds the
user's granted embargoed dataset there and no other. It is not a security boundary (the
local backend runs every cluster as the Gateway's own Unix user, which can read the whole
storage): on Kubernetes the boundary is the read-only per-grant mounts of the worker
pods, tested on the rendered chart in tests/deploy.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from nanorepo.hub._local import free_ports
from nanorepo.testing._hub import live_hub

BIN = Path(sys.executable).parent

_GATEWAY_CONFIG = """\
# dask-gateway-server for one test run: local backend, users from the hub
from pathlib import Path

from dask_gateway_server.options import Integer, Options
from traitlets.config import Config
from nanorepo.hub import NanorepoHub, build_local_view
from nanorepo.hub._spawner import readable_for

# the public address (API and schedulers' TLS, multiplexed) and the API server behind it
c.Proxy.address = "127.0.0.1:{port}"
c.DaskGateway.address = "127.0.0.1:{api_port}"
c.DaskGateway.backend_class = "dask_gateway_server.backends.local.UnsafeLocalBackend"
c.DaskGateway.authenticator_class = "dask_gateway_server.auth.JupyterHubAuthenticator"
c.JupyterHubAuthenticator.jupyterhub_api_url = "{hub_url}/hub/api"
c.JupyterHubAuthenticator.jupyterhub_api_token = "{token}"
c.JupyterHubAuthenticator.jupyterhub_service_name = "dask-gateway"
c.ClusterConfig.scheduler_cmd = ["{bin}/dask", "scheduler"]
c.ClusterConfig.worker_cmd = ["{bin}/dask", "worker"]
c.UnsafeLocalBackend.cluster_start_timeout = 120
c.UnsafeLocalBackend.worker_start_timeout = 120

_config = Config()
_config.NanorepoHub.home = "{home}"
_config.NanorepoHub.database_url = "{database_url}"
_hub = NanorepoHub(config=_config)

def _view(options, user):
    # the user's grants now, as the hub's spawn hook reads them; the view the hub makes
    accessions = readable_for(_hub, user.name, admin=user.admin, groups=sorted(user.groups))
    view = build_local_view(Path("{views}") / user.name, Path("{storage}"), accessions)
    return {{"worker_cores": options.worker_cores,
            "environment": {{"NANOREPO_STORAGE": str(view)}}}}

c.Backend.cluster_options = Options(Integer("worker_cores", 1, min=1, max=1), handler=_view)
"""

_HUB_CONFIG = """
# Dask Gateway as a hub service (as helm/nanorepo registers it), usable by all hub users
c.JupyterHub.services = [*c.JupyterHub.services,
    {{"name": "dask-gateway", "api_token": {token!r}, "url": "http://127.0.0.1:{port}"}}]
c.JupyterHub.load_roles = [*c.JupyterHub.load_roles,
    {{"name": "dask-gateway-users", "scopes": ["access:services!service=dask-gateway"],
      "users": ["bob", "carol"]}}]
"""

# What a notebook in the user's server runs (its own process, the server's environment).
_USER_CODE = """\
import json, os, sys
import nanorepo, nanorepo.compute

granted, hidden = sys.argv[1:]
with nanorepo.compute.cluster(worker_cores=1) as c:
    c.scale(1)
    client = c.get_client()
    client.wait_for_workers(1, timeout=180)

    def look(acc):
        import os
        return os.path.isdir(os.path.join(os.environ["NANOREPO_STORAGE"], "embargoed", acc))

    seen = {a: client.submit(look, a, pure=False).result() for a in (granted, hidden)}
    out = {"kind": c.kind, "seen": seen}
    if seen[granted]:
        lazy = nanorepo.open(granted).images[0].to_xarray().astype("int64").sum()
        out["sum_on_gateway"] = int(client.compute(lazy).result())
        out["sum_here"] = int(lazy.compute(scheduler="synchronous"))
print("RESULT " + json.dumps(out))
"""


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A live hub with Dask Gateway registered as a service, and the Gateway running."""
    workdir = tmp_path_factory.mktemp("gateway")
    port, api_port = free_ports(2)
    token = secrets.token_hex(24)
    hub_config = _HUB_CONFIG.format(token=token, port=port)
    with live_hub(workdir / "hub", extra_config=hub_config) as hub:
        settings = hub.settings
        config = workdir / "dask_gateway_config.py"
        config.write_text(
            _GATEWAY_CONFIG.format(
                port=port,
                api_port=api_port,
                hub_url=hub.url,
                token=token,
                bin=BIN,
                home=settings.home,
                database_url=settings.database_url,
                views=workdir / "views",
                storage=settings.storage,
            )
        )
        log = (workdir / "gateway.log").open("wb")
        env = {
            k: v for k, v in os.environ.items() if not k.startswith(("JUPYTERHUB_", "NANOREPO_"))
        }
        proc = subprocess.Popen(
            [str(BIN / "dask-gateway-server"), "-f", str(config)], cwd=workdir, env=env,
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(f"{url}/api/health", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        "dask-gateway-server did not start: "
                        + (workdir / "gateway.log").read_text()[-3000:]
                    )
                time.sleep(0.3)
            hub.gateway_url = url  # type: ignore[attr-defined]
            hub.gateway_log = workdir / "gateway.log"  # type: ignore[attr-defined]
            yield hub
        finally:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            log.close()


def _as_user(hub: Any, user: str, tmp_path: Path) -> dict[str, Any]:
    """Run the notebook code as ``user``'s server would: the hub's environment for it
    (its token, the service's URL, its storage view) and the Gateway's address."""
    token = hub.user_token(user)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTERHUB_", "NANOREPO_"))}
    env |= {
        "JUPYTERHUB_API_TOKEN": token,
        "NANOREPO_URL": hub.service_url,
        "NANOREPO_STORAGE": str(Path(hub.gateway_log).parent / "views" / user),
        "DASK_GATEWAY__ADDRESS": hub.gateway_url,
        "DASK_GATEWAY__AUTH__TYPE": "jupyterhub",
        "HOME": str(tmp_path),
    }
    seed = hub.seed
    r = subprocess.run(
        [sys.executable, "-c", _USER_CODE, seed.granted, seed.hidden],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith("RESULT ")]
    assert r.returncode == 0 and lines, (
        f"{user}: {r.stderr[-3000:]}\n--- gateway log ---\n"
        + Path(hub.gateway_log).read_text()[-3000:]
    )
    result: dict[str, Any] = json.loads(lines[-1].removeprefix("RESULT "))
    return result


def test_a_users_gateway_cluster_computes_on_their_granted_dataset(
    gateway: Any, tmp_path: Path
) -> None:
    bob = _as_user(gateway, "bob", tmp_path)
    assert bob["kind"] == "gateway"
    seed = gateway.seed
    assert bob["seen"] == {seed.granted: True, seed.hidden: False}
    assert bob["sum_on_gateway"] == bob["sum_here"] > 0


def test_a_user_without_the_grant_gets_a_cluster_without_it(gateway: Any, tmp_path: Path) -> None:
    carol = _as_user(gateway, "carol", tmp_path)
    seed = gateway.seed
    assert carol["kind"] == "gateway"
    assert carol["seen"] == {seed.granted: False, seed.hidden: False}


def test_the_gateway_refuses_tokens_without_access_to_it(gateway: Any) -> None:
    """A hub token without ``access:services!service=dask-gateway`` (eve has none) and no
    token at all are refused by the Gateway's API."""
    r = httpx.get(f"{gateway.gateway_url}/api/v1/clusters/", timeout=30)
    assert r.status_code == 401
    eve = gateway.user_token("eve")
    r = httpx.get(
        f"{gateway.gateway_url}/api/v1/clusters/",
        headers={"Authorization": f"jupyterhub {eve}"},
        timeout=30,
    )
    assert r.status_code in (401, 403)
    bob = gateway.user_token("bob")
    r = httpx.get(
        f"{gateway.gateway_url}/api/v1/clusters/",
        headers={"Authorization": f"jupyterhub {bob}"},
        timeout=30,
    )
    assert r.status_code == 200
