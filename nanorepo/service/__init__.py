"""The nanorepo REST service (FastAPI): standalone or as a JupyterHub managed service."""

from __future__ import annotations

import nanorepo._server_extra  # noqa: F401  (a clear error if the extra is missing)
from nanorepo.service._app import ServiceState, create_app

__all__ = ["ServiceState", "create_app"]
