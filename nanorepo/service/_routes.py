"""Every router of the service, in the order they are mounted."""

from __future__ import annotations

from nanorepo.service import _datasets

__all__ = ["ROUTERS"]

ROUTERS = [_datasets.router]
