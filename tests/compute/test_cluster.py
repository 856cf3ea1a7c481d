"""``nanorepo.compute.cluster()``: sized to the server, computing on repository images,
the dashboard through the user's Jupyter server, Dask Gateway when configured."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dask.config
import httpx
import pytest
from distributed.utils import format_dashboard_link

import nanorepo
from nanorepo.compute import (
    WORKER_MEMORY_FRACTION,
    ComputeSettings,
    LocalPlan,
    cluster,
    dashboard_template,
    plan_local,
)
from nanorepo.errors import ConfigurationError, InvalidInput
from nanorepo.testing._service import seed_repository
from tests.jupyter._servers import jupyter_server

GIB = 2**30


def test_settings_from_the_hub_environment() -> None:
    s = ComputeSettings.from_env(
        {"CPU_LIMIT": "1.5", "MEM_LIMIT": str(4 * GIB), "JUPYTERHUB_SERVICE_PREFIX": "/user/bob",
         "DASK_GATEWAY__ADDRESS": " "}
    )  # fmt: skip
    assert s == ComputeSettings(cpu_limit=1.5, mem_limit_bytes=4 * GIB, service_prefix="/user/bob/")


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"CPU_LIMIT": "1.5", "MEM_LIMIT": str(4 * GIB)}, LocalPlan(1, 1, int(4 * GIB * 0.75))),
        ({"CPU_LIMIT": "0.25", "MEM_LIMIT": str(GIB)}, LocalPlan(1, 1, int(GIB * 0.75))),
        (
            {"CPU_LIMIT": "8", "MEM_LIMIT": str(16 * GIB)},
            LocalPlan(4, 2, int(16 * GIB * 0.75) // 4),
        ),
    ],
)
def test_local_cluster_is_sized_to_the_limits(env: dict[str, str], expected: LocalPlan) -> None:
    assert WORKER_MEMORY_FRACTION == 0.75
    assert plan_local(ComputeSettings.from_env(env)) == expected


def test_without_limits_dask_detection_decides() -> None:
    from dask.system import CPU_COUNT
    from distributed.system import MEMORY_LIMIT

    plan = plan_local(ComputeSettings.from_env({}))
    assert plan.n_workers * plan.threads_per_worker == CPU_COUNT
    assert plan.memory_limit_bytes == int(MEMORY_LIMIT * WORKER_MEMORY_FRACTION) // plan.n_workers


@pytest.mark.parametrize("bad", [{"CPU_LIMIT": "two"}, {"MEM_LIMIT": "-1"}, {"CPU_LIMIT": "nan"}])
def test_bad_limits_are_named(bad: dict[str, str]) -> None:
    (name,) = bad
    with pytest.raises(InvalidInput, match=name):
        ComputeSettings.from_env(bad)


def test_dashboard_template_goes_through_jupyter_server_proxy() -> None:
    assert dashboard_template("/user/bob/") == "/user/bob/proxy/{port}/status"
    assert dashboard_template("/user/{odd}/").format(port=1) == "/user/{odd}/proxy/1/status"


def test_gateway_address_switches_to_dask_gateway(tmp_path: Path) -> None:
    """With DASK_GATEWAY__ADDRESS set no local cluster starts; a gateway that cannot be
    reached is a clear error naming the address and the setting."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    address = f"http://127.0.0.1:{port}/services/dask-gateway"
    settings = ComputeSettings.from_env({"DASK_GATEWAY__ADDRESS": address})
    with (
        dask.config.set(
            {"distributed.dashboard.link": dask.config.get("distributed.dashboard.link")}
        ),
        pytest.raises(ConfigurationError) as err,
    ):
        cluster(settings=settings, worker_cores=1)
    assert address in str(err.value) and "unreachable" in str(err.value)
    assert "DASK_GATEWAY__ADDRESS" in str(err.value)


def test_local_cluster_reduces_a_repository_image(sqlite_repo: Any, tmp_path: Path) -> None:
    """The local path computes over ``nanorepo.open(...)``'s dask array on its own workers,
    and its dashboard link is formed from the server's prefix."""
    seed = seed_repository(sqlite_repo, tmp_path / "seed")
    image = nanorepo.open(seed.public, settings=sqlite_repo.settings).images[0]
    lazy = image.to_xarray()
    assert lazy.chunks is not None  # dask-backed
    expected = int(image.to_xarray(dask=False).values.astype("int64").sum())
    settings = ComputeSettings(cpu_limit=2, mem_limit_bytes=2 * GIB, service_prefix="/user/bob/")
    link = dask.config.get("distributed.dashboard.link")
    with dask.config.set({"distributed.dashboard.link": link}), cluster(settings=settings) as c:
        assert c.kind == "local"
        info = c.client.scheduler_info()
        assert len(info["workers"]) == 2
        assert c.client.scheduler.address.startswith("tls://127.0.0.1:")
        assert {w["memory_limit"] for w in info["workers"].values()} == {int(2 * GIB * 0.75) // 2}
        total = c.client.compute(lazy.astype("int64").sum()).result()
        assert int(total) == expected
        port = info["services"]["dashboard"]
        assert c.dashboard_link == f"/user/bob/proxy/{port}/status"
        assert format_dashboard_link("127.0.0.1", 1234) == "/user/bob/proxy/1234/status"
    assert c.cluster.status.name == "closed"
    assert dask.config.get("distributed.dashboard.link") == link


def test_dashboard_opens_through_the_users_server(tmp_path: Path) -> None:
    """The link works: bob's Jupyter server (base URL ``/user/bob/``, jupyter-server-proxy
    enabled as in the single-user image) reaches the scheduler's web server, which listens
    on loopback only."""
    settings = ComputeSettings(cpu_limit=1, mem_limit_bytes=GIB, service_prefix="/user/bob/")
    link = dask.config.get("distributed.dashboard.link")
    with (
        dask.config.set({"distributed.dashboard.link": link}),
        cluster(settings=settings, processes=False) as c,
        jupyter_server(
            tmp_path / "j", {}, enable=("jupyter_server_proxy",), base_url="/user/bob/"
        ) as jp,
    ):
        assert c.dashboard_link.startswith("/user/bob/proxy/")
        origin = jp.url.removesuffix("/user/bob/")
        health = origin + c.dashboard_link.removesuffix("/status") + "/health"
        assert httpx.get(health, timeout=30).status_code in {302, 403}  # needs the login
        r = httpx.get(health, headers=jp.headers, timeout=30)
        assert r.status_code == 200 and r.text == "ok"
