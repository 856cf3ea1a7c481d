"""The JSON the service speaks, defined once as pydantic models (docs/architecture.md D21).

Importable without the ``[server]`` extra: the client and the CLI's remote path use the
same models the FastAPI routes declare, and the extension's TypeScript types are generated
from the OpenAPI document those routes publish.
"""

from __future__ import annotations

from nanorepo.schemas._wire import *  # noqa: F403
from nanorepo.schemas._wire import __all__ as __all__
