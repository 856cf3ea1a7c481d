"""The Jupyter server extension of nanorepo, for each user's Jupyter server.

It forwards ``{base_url}nanorepo/api/...`` to the nanorepo service with the user's token (so
the JupyterLab extension needs no second login and Jupyter's XSRF protection holds), answers
``nanorepo/api/_config`` and ``nanorepo/api/_napari`` ("View in napari" on the server's
desktop) itself, and keeps the shared training notebooks in the user's home up to date.
See :mod:`nanorepo.jupyter._forward`, :mod:`nanorepo.jupyter._napari` and
:mod:`nanorepo.jupyter._notebooks`.
"""

from __future__ import annotations

from typing import Any

import nanorepo._hub_extra  # noqa: F401  (a clear error if the extra is missing)
from nanorepo.jupyter._extension import NanorepoExtension
from nanorepo.jupyter._forward import setup_route_handlers
from nanorepo.jupyter._notebooks import SyncReport, bundled_notebooks, sync_notebooks

__all__ = [
    "NanorepoExtension",
    "SyncReport",
    "bundled_notebooks",
    "setup_route_handlers",
    "sync_notebooks",
]


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    """Where Jupyter Server finds the extension (this module)."""
    return [{"module": "nanorepo.jupyter"}]


def _load_jupyter_server_extension(serverapp: Any) -> None:
    """Called by Jupyter Server once the web application exists."""
    from nanorepo.jupyter._extension import load_extension

    load_extension(serverapp)
