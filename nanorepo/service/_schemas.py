"""The service's request and response bodies: the wire contract of :mod:`nanorepo.schemas`.

The models live in :mod:`nanorepo.schemas` (D21), importable without the ``[server]``
extra; this module keeps the names routers import, including the private helpers.
"""

from __future__ import annotations

from nanorepo.schemas._wire import *  # noqa: F403
from nanorepo.schemas._wire import __all__ as __all__
from nanorepo.schemas._wire import _In as _In
from nanorepo.schemas._wire import _no_nul as _no_nul
from nanorepo.schemas._wire import _problem as _problem
