"""Compute next to the data: a Dask cluster sized to the user's server, or from Dask Gateway.

>>> import nanorepo.compute
>>> with nanorepo.compute.cluster() as c:  # doctest: +SKIP
...     c.client  # a distributed.Client; c.dashboard_link opens through Jupyter
"""

from __future__ import annotations

from nanorepo.compute._cluster import (
    WORKER_MEMORY_FRACTION,
    ComputeCluster,
    ComputeSettings,
    LocalPlan,
    cluster,
    dashboard_template,
    plan_local,
)

__all__ = [
    "WORKER_MEMORY_FRACTION",
    "ComputeCluster",
    "ComputeSettings",
    "LocalPlan",
    "cluster",
    "dashboard_template",
    "plan_local",
]
