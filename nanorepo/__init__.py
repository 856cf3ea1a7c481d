"""nanorepo: an open reference data repository for nanoscopy.

The public face of the package is small: :func:`open` gives lazy, physical-unit
access to any dataset version, wherever the data lives; :func:`run` executes a notebook
and records its provenance; :func:`record` names a result value inside such a run. Heavy
modules load on first use, so ``import nanorepo`` (and the CLI) start fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

# The __future__ import binds the name `annotations`, which would shadow the
# nanorepo.annotations subpackage in `from nanorepo import annotations`.
del annotations

__version__ = "0.1.0"

__all__ = ["Client", "Dataset", "Image", "__version__", "open", "record", "run"]

if TYPE_CHECKING:
    from nanorepo.access import Dataset, Image, open, record
    from nanorepo.client import Client
    from nanorepo.provenance import run


def __getattr__(name: str) -> Any:
    if name in {"Dataset", "Image", "open", "record"}:
        from nanorepo import access

        return getattr(access, name)
    if name == "run":
        from nanorepo.provenance import run

        return run
    if name == "Client":
        from nanorepo.client import Client

        return Client
    raise AttributeError(f"module 'nanorepo' has no attribute {name!r}")
