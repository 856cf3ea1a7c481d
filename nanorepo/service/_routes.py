"""Every router of the service, in the order they are mounted."""

from __future__ import annotations

from nanorepo.service import _annotations, _datasets, _deposits, _images, _runs, _zarr

__all__ = ["ROUTERS"]

ROUTERS = [
    _datasets.router,
    _annotations.router,
    _deposits.router,
    _images.router,
    _runs.router,
    _zarr.router,
]
