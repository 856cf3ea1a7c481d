"""nanorepo: an open reference data repository for nanoscopy.

The public face of the package is small: :func:`open` gives lazy, physical-unit
access to any dataset version, wherever the data lives; :func:`search` finds datasets;
:func:`run` executes a notebook and records its provenance; :func:`record` names a result
value inside such a run; :func:`connect` says how this process reaches the repository (the
front door all of them go through, :mod:`nanorepo.connection`). Heavy modules load on first
use, so ``import nanorepo`` (and the CLI) start fast, and ``pip install nanorepo`` without
extras is enough to read and discuss data through a service (``NANOREPO_URL``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from nanorepo._version import __version__

# The __future__ import binds the name `annotations`, which would shadow the
# nanorepo.annotations subpackage in `from nanorepo import annotations`.
del annotations

__all__ = [
    "Client",
    "Connection",
    "Dataset",
    "Image",
    "__version__",
    "connect",
    "open",
    "record",
    "run",
    "search",
]

if TYPE_CHECKING:
    from nanorepo.access import Dataset, Image, record
    from nanorepo.client import Client
    from nanorepo.connection import Connection, connect, open, run, search


def __getattr__(name: str) -> Any:
    if name in {"Dataset", "Image", "record"}:
        from nanorepo import access

        return getattr(access, name)
    if name in {"Connection", "connect", "open", "run", "search"}:
        from nanorepo import connection

        return getattr(connection, name)
    if name == "Client":
        from nanorepo.client import Client

        return Client
    raise AttributeError(f"module 'nanorepo' has no attribute {name!r}")
