"""The nanorepo REST service (FastAPI): standalone or as a JupyterHub managed service."""

from __future__ import annotations

from nanorepo.service._app import ServiceState, create_app

__all__ = ["ServiceState", "create_app"]
