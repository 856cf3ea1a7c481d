"""``nanorepo.compute.cluster()``: a Dask cluster next to the data, sized to where it runs.

Two paths, chosen by the environment the hub gives each user server:

- **Dask Gateway** when ``DASK_GATEWAY__ADDRESS`` is set (Kubernetes deployments): the
  cluster's workers run as pods next to the storage, created through
  ``dask_gateway.Gateway().new_cluster()`` with the user's options (worker cores, memory,
  image ... as the gateway offers them). An unreachable gateway is a
  :class:`~nanorepo.errors.ConfigurationError` naming the address, not a stack of aiohttp
  frames.
- **A local cluster** otherwise (the embedded one-machine default): a
  ``distributed.LocalCluster`` sized to the user's server, i.e. to ``CPU_LIMIT`` and
  ``MEM_LIMIT`` when JupyterHub's spawner set them, else to what Dask itself detects (CPU
  affinity and cgroup quota, cgroup memory limit, rlimit, the machine). Workers get
  :data:`WORKER_MEMORY_FRACTION` of the memory; the rest stays with the kernel that gathers
  the results and the Jupyter server. The scheduler and workers listen on loopback only and
  talk TLS with credentials made for this cluster (``security=True``): on a machine shared
  by several users, another user's process could otherwise connect to this scheduler and
  run code as this user, reading the embargoed data only this user may read.

The dashboard link points through the user's own Jupyter server
(``{JUPYTERHUB_SERVICE_PREFIX}proxy/{port}/status``, served by jupyter-server-proxy), so it
opens in the browser with the hub login and no port is exposed. It is set as Dask's own
``distributed.dashboard.link`` template, so every cluster made in the kernel (also by hand)
gets it, unless the user configured a link of their own.

Why Dask: it is what xarray, dask-image and the OME-Zarr tools already compute with, and
``nanorepo.open(...).to_xarray()`` gives dask-backed arrays; Dask Gateway is the
Kubernetes-native way to give each user a cluster without a home-made scheduler.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal

from nanorepo.errors import ConfigurationError, InvalidInput

if TYPE_CHECKING:
    from distributed import Client

__all__ = [
    "WORKER_MEMORY_FRACTION",
    "ComputeCluster",
    "ComputeSettings",
    "LocalPlan",
    "cluster",
    "dashboard_template",
    "plan_local",
]

#: Share of the server's memory given to the local cluster's workers.
WORKER_MEMORY_FRACTION = 0.75

#: Dask's own default for ``distributed.dashboard.link``; any other value is the user's.
_DASK_DEFAULT_LINK = "{scheme}://{host}:{port}/status"


def _number(env: Mapping[str, str], name: str) -> float | None:
    raw = (env.get(name) or "").strip()
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        raise InvalidInput(
            f"{name}={raw!r} is not a number",
            hint=f"{name} must be a plain number (cores for CPU_LIMIT, bytes for MEM_LIMIT)",
        ) from None
    if not math.isfinite(value) or value <= 0:
        raise InvalidInput(f"{name}={raw!r} must be positive", hint=f"unset {name} or fix it")
    return value


@dataclass(frozen=True)
class ComputeSettings:
    """What the cluster needs from the environment, read once.

    Attributes
    ----------
    cpu_limit:
        Cores the user's server may use (``CPU_LIMIT``, set by JupyterHub's spawner).
    mem_limit_bytes:
        Memory the user's server may use, in bytes (``MEM_LIMIT``).
    gateway_address:
        Dask Gateway to ask for clusters (``DASK_GATEWAY__ADDRESS``); ``None``: local cluster.
    service_prefix:
        URL prefix of the user's Jupyter server (``JUPYTERHUB_SERVICE_PREFIX``, e.g.
        ``/user/bob/``); ``None`` outside a hub.
    """

    cpu_limit: float | None = None
    mem_limit_bytes: int | None = None
    gateway_address: str | None = None
    service_prefix: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ComputeSettings:
        """Read the settings from ``env`` (default ``os.environ``)."""
        env = os.environ if env is None else env
        mem = _number(env, "MEM_LIMIT")
        prefix = (env.get("JUPYTERHUB_SERVICE_PREFIX") or "").strip() or None
        if prefix is not None and not prefix.endswith("/"):
            prefix += "/"
        return cls(
            cpu_limit=_number(env, "CPU_LIMIT"),
            mem_limit_bytes=int(mem) if mem is not None else None,
            gateway_address=(env.get("DASK_GATEWAY__ADDRESS") or "").strip() or None,
            service_prefix=prefix,
        )


@dataclass(frozen=True)
class LocalPlan:
    """How a local cluster is cut: ``n_workers`` × ``threads_per_worker`` cores, each
    worker with ``memory_limit_bytes``."""

    n_workers: int
    threads_per_worker: int
    memory_limit_bytes: int


def plan_local(settings: ComputeSettings) -> LocalPlan:
    """Size a local cluster to the server: its CPU and memory limits, else what Dask detects.

    Cores are rounded down (at least one) and split into processes and threads the way
    Dask splits a machine (``distributed.deploy.utils.nprocesses_nthreads``).
    """
    from dask.system import CPU_COUNT
    from distributed.deploy.utils import nprocesses_nthreads
    from distributed.system import MEMORY_LIMIT

    cores = settings.cpu_limit if settings.cpu_limit is not None else float(CPU_COUNT)
    memory = settings.mem_limit_bytes if settings.mem_limit_bytes is not None else MEMORY_LIMIT
    n_workers, threads = nprocesses_nthreads(max(1, math.floor(cores)))
    per_worker = int(memory * WORKER_MEMORY_FRACTION) // n_workers
    return LocalPlan(n_workers=n_workers, threads_per_worker=threads, memory_limit_bytes=per_worker)


def dashboard_template(prefix: str) -> str:
    """Dask's dashboard link template through jupyter-server-proxy under ``prefix``."""
    escaped = prefix.replace("{", "{{").replace("}", "}}")
    return f"{escaped}proxy/{{port}}/status"


def _use_proxied_dashboard(settings: ComputeSettings) -> None:
    import dask.config

    if settings.service_prefix is None:
        return
    current = dask.config.get("distributed.dashboard.link", default=_DASK_DEFAULT_LINK)
    ours = dashboard_template(settings.service_prefix)
    if current in (_DASK_DEFAULT_LINK, ours):
        dask.config.set({"distributed.dashboard.link": ours})


class ComputeCluster:
    """A Dask cluster and its client; close it (or use ``with``) to free the workers.

    Attributes
    ----------
    kind:
        ``"local"`` or ``"gateway"``.
    cluster:
        The ``distributed.LocalCluster`` or ``dask_gateway.GatewayCluster`` itself.
    """

    def __init__(
        self, kind: Literal["local", "gateway"], cluster: Any, *, gateway: Any = None
    ) -> None:
        self.kind = kind
        self.cluster = cluster
        self._gateway = gateway
        self._client: Client | None = None

    @property
    def client(self) -> Client:
        """The ``distributed.Client`` of this cluster (made on first use, then the default
        client of the kernel, so ``.compute()`` runs on it)."""
        if self._client is None:
            if self.kind == "gateway":
                self._client = self.cluster.get_client()
            else:
                import distributed

                self._client = distributed.Client(self.cluster)
        return self._client

    def get_client(self) -> Client:
        """Same as :attr:`client` (the name Dask Gateway's clusters use)."""
        return self.client

    @property
    def dashboard_link(self) -> str:
        """The dashboard, through the user's Jupyter server when under a hub."""
        return str(self.cluster.dashboard_link)

    def scale(self, n: int) -> None:
        """Ask for ``n`` workers."""
        self.cluster.scale(n)

    def close(self) -> None:
        """Close the client, then the cluster (a gateway cluster is shut down)."""
        if self._client is not None:
            self._client.close()
            self._client = None
        self.cluster.close()
        if self._gateway is not None:
            self._gateway.close()

    def __enter__(self) -> ComputeCluster:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<ComputeCluster {self.kind} {self.cluster!r} dashboard={self.dashboard_link}>"

    def _repr_html_(self) -> str:
        html = getattr(self.cluster, "_repr_html_", None)
        return str(html()) if callable(html) else repr(self)


def _gateway_cluster(address: str, options: dict[str, Any]) -> ComputeCluster:
    from dask_gateway import Gateway

    class _Gateway(Gateway):
        """Closes once: ``Gateway.__del__`` closes again, which fails on the stopped loop."""

        _closed = False

        def close(self) -> Any:
            if not self._closed:
                self._closed = True
                return super().close()
            return None

    gateway = _Gateway(address=address)
    try:
        return ComputeCluster("gateway", gateway.new_cluster(**options), gateway=gateway)
    except (OSError, TimeoutError) as exc:  # aiohttp's connection errors are OSErrors
        gateway.close()
        raise ConfigurationError(
            f"the Dask Gateway at {address} is unreachable: {type(exc).__name__}: {exc}",
            hint="check DASK_GATEWAY__ADDRESS (set by the hub), or unset it to run a local "
            "cluster in this server",
        ) from exc


def cluster(*, settings: ComputeSettings | None = None, **options: Any) -> ComputeCluster:
    """A Dask cluster next to the data: Dask Gateway if configured, else a local one.

    Parameters
    ----------
    settings:
        Default: :meth:`ComputeSettings.from_env`.
    **options:
        For a gateway cluster, its cluster options (``worker_cores=2``, ...; see
        ``dask_gateway.Gateway().cluster_options()``). For a local cluster, arguments of
        ``distributed.LocalCluster`` overriding the sizing (``n_workers``,
        ``threads_per_worker``, ``memory_limit``, ``processes`` ...).

    Returns
    -------
    ComputeCluster
        Use it as a context manager; ``.client`` is its ``distributed.Client``.

    Examples
    --------
    >>> import nanorepo, nanorepo.compute
    >>> with nanorepo.compute.cluster() as c:  # doctest: +SKIP
    ...     image = nanorepo.open("S-NANO1").images[0].to_xarray()
    ...     total = c.client.compute(image.sum()).result()
    """
    settings = settings or ComputeSettings.from_env()
    _use_proxied_dashboard(settings)
    if settings.gateway_address is not None:
        return _gateway_cluster(settings.gateway_address, options)
    from distributed import LocalCluster

    plan = plan_local(settings)
    kwargs: dict[str, Any] = {
        "n_workers": plan.n_workers,
        "threads_per_worker": plan.threads_per_worker,
        "memory_limit": plan.memory_limit_bytes,
        "host": "127.0.0.1",
        "dashboard_address": "127.0.0.1:0",
        "security": True,
    }
    kwargs.update(options)
    return ComputeCluster("local", LocalCluster(**kwargs))
