"""The Python client of the nanorepo REST service: ``nanorepo.Client``."""

from __future__ import annotations

from nanorepo.client._base import Pages
from nanorepo.client._client import Client
from nanorepo.client._errors import NotFound, ServiceError
from nanorepo.client._runs import RemoteRuns

__all__ = ["Client", "NotFound", "Pages", "RemoteRuns", "ServiceError"]
