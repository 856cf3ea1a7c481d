"""Imported first by the parts that need the ``[hub]`` extra (the hub hooks, the Jupyter
server extension): importing them without it raises :class:`~nanorepo.errors.MissingExtra`."""

from __future__ import annotations

from nanorepo._extras import require

require(
    "nanorepo's research environment (nanorepo.hub, nanorepo.jupyter)",
    "hub",
    "jupyter_server",
)
